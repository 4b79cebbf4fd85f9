"""Altair charts for the metric row shapes (see ``metrics/builtin``): pure functions of rows."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from metrics.api import Metric

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
#: bars shown at most in a ranking (files, authors, languages)
TOP = 15
HEIGHT = 260
_LABEL_LIMIT = 320


def frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    return pd.DataFrame(rows or [])


def axis_title(m: Metric, what: str | None = None) -> str:
    """An axis title with the metric's unit: "lines added (lines)", or just the unit."""
    what = what or m.name.replace("_", " ")
    return what if what == m.unit else f"{what} ({m.unit})"


def period_frame(rows: list[dict[str, Any]] | None) -> pd.DataFrame:
    """Series rows with a datetime ``date`` column (day, Monday of the week, or month)."""
    df = frame(rows)
    if df.empty or "period" not in df:
        return pd.DataFrame(columns=["period", "date", "value"])
    df = df[df["period"].notna()].copy()
    df["date"] = pd.to_datetime(df["period"], format="mixed")
    return df


def _count_axis(**kwargs: Any) -> alt.Axis:
    """Counts: whole ticks only."""
    return alt.Axis(format="d", tickMinStep=1, **kwargs)


def _band_height(rows: int, extra: int = 70, step: int = 26) -> alt.Step:
    """One band of ``step`` pixels per row: the chart grows with its rows (axes and legend
    come on top), and no label is dropped for lack of room."""
    return alt.Step(step)


def _with_end(df: pd.DataFrame, period: str) -> pd.DataFrame:
    """An ``end`` column: where each period's bar stops on a time axis."""
    step = {"day": pd.DateOffset(days=1), "week": pd.DateOffset(days=7)}.get(
        period, pd.DateOffset(months=1)
    )
    df = df.copy()
    df["end"] = df["date"] + step if not df.empty else df.get("date")
    return df


def _time_axis(period: str) -> alt.X:
    fmt = {"month": "%b %Y", "week": "%d %b %Y", "day": "%d %b %Y"}.get(period, "%d %b %Y")
    return alt.X("date:T", title=None, axis=alt.Axis(format=fmt, labelAngle=0, labelOverlap=True))


def _tooltip_date(period: str) -> alt.Tooltip:
    title = {"month": "month", "week": "week of"}.get(period, "day")
    fmt = "%B %Y" if period == "month" else "%Y-%m-%d"
    return alt.Tooltip("date:T", title=title, format=fmt)


def activity(m: Metric, rows: list[dict[str, Any]] | None, period: str) -> alt.Chart:
    """Commits per period: bars for weeks and months, an area for days."""
    df = _with_end(period_frame(rows), period)
    return (
        alt.Chart(df)
        .mark_bar(stroke="white", strokeWidth=1)
        .encode(
            x=_time_axis(period),
            x2="end:T",
            y=alt.Y("value:Q", title=axis_title(m, "commits"), axis=_count_axis()),
            y2=alt.datum(0),
            tooltip=[_tooltip_date(period), alt.Tooltip("value:Q", title=m.unit)],
        )
        .properties(height=HEIGHT)
    )


def lines_changed(m: Metric, rows: list[dict[str, Any]] | None, period: str) -> alt.Chart:
    """Lines added (up) and deleted (down) per period."""
    df = _with_end(period_frame(rows), period)
    if df.empty:
        long = pd.DataFrame(columns=["date", "end", "kind", "lines"])
    else:
        long = pd.DataFrame({
            "date": list(df["date"]) * 2, "end": list(df["end"]) * 2,
            "kind": ["added"] * len(df) + ["deleted"] * len(df),
            "lines": list(df["added"]) + [-v for v in df["deleted"]],
        })  # fmt: skip
    return alt.Chart(long).mark_bar(stroke="white", strokeWidth=1).encode(
        x=_time_axis(period), x2="end:T",
        y=alt.Y("lines:Q", title=axis_title(m, "lines added / deleted")), y2=alt.datum(0),
        color=alt.Color("kind:N", title=None, legend=alt.Legend(orient="top"),
                        scale=alt.Scale(domain=["added", "deleted"], range=["#2ca02c", "#d62728"])),
        tooltip=[_tooltip_date(period), alt.Tooltip("kind:N"), alt.Tooltip("lines:Q", format=",")],
    ).properties(height=HEIGHT)  # fmt: skip


def contributors(
    series: dict[str, list[dict[str, Any]] | None], unit: str, period: str
) -> alt.LayerChart:
    """Active contributors per period (a line), with the new (▲) and the inactive (▼) ones."""
    parts = []
    for label, rows in series.items():
        df = period_frame(rows)
        if not df.empty:
            parts.append(pd.DataFrame({"date": df["date"], "value": df["value"], "kind": label}))
    df = pd.concat(parts) if parts else pd.DataFrame(columns=["date", "value", "kind"])
    kinds = list(series)
    color = alt.Color(
        "kind:N",
        title=None,
        legend=alt.Legend(orient="top"),
        scale=alt.Scale(domain=kinds, range=["#1f77b4", "#2ca02c", "#d62728"][: len(kinds)]),
    )
    shape = alt.Shape(
        "kind:N",
        legend=None,
        scale=alt.Scale(
            domain=kinds, range=["circle", "triangle-up", "triangle-down"][: len(kinds)]
        ),
    )
    tooltip = [_tooltip_date(period), alt.Tooltip("kind:N"), alt.Tooltip("value:Q", title=unit)]
    base = alt.Chart(df).encode(
        x=_time_axis(period),
        y=alt.Y("value:Q", title=f"contributors ({unit})", axis=_count_axis()),
        color=color, tooltip=tooltip,
    )  # fmt: skip
    active = base.transform_filter(alt.datum.kind == kinds[0]).mark_line(point=True)
    others = base.transform_filter(alt.datum.kind != kinds[0]).mark_point(
        size=110, filled=True, opacity=0.9
    )
    return alt.layer(active, others.encode(shape=shape)).properties(height=HEIGHT)


def punchcard(m: Metric, rows: list[dict[str, Any]] | None) -> alt.Chart:
    """Commits by weekday and hour (the author's own time zone)."""
    df = frame(rows)
    if df.empty:
        df = pd.DataFrame(columns=["weekday", "hour", "value"])
    else:
        df["day"] = [WEEKDAYS[int(d)] for d in df["weekday"]]
    return alt.Chart(df).mark_rect(cornerRadius=2).encode(
        x=alt.X("hour:O", title="hour of day (author's time zone)", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("day:O", title=None, sort=WEEKDAYS),
        color=alt.Color("value:Q", title=m.unit, scale=alt.Scale(scheme="greens")),
        tooltip=[alt.Tooltip("day:O"), alt.Tooltip("hour:O"), alt.Tooltip("value:Q", title=m.unit)],
    ).properties(height=_band_height(7, extra=90, step=24))  # fmt: skip


def ranking(
    df: pd.DataFrame,
    label: str,
    value: str,
    title: str,
    *,
    color: str | None = None,
    tooltip: list[str] | None = None,
    top: int = TOP,
    fmt: str = ",.3~f",
    counts: bool = False,
) -> alt.Chart:
    """Horizontal bars of the ``top`` largest ``value`` by ``label``."""
    if not df.empty:
        df = df.sort_values(value, ascending=False, kind="stable").head(top).copy()
    else:
        df = pd.DataFrame(columns=[label, value, *(tooltip or []), *([color] if color else [])])
    encoding: dict[str, Any] = {
        "y": alt.Y(f"{label}:N", title=None, sort="-x", axis=alt.Axis(labelLimit=_LABEL_LIMIT)),
        "x": alt.X(f"{value}:Q", title=title,
                   axis=_count_axis() if counts else alt.Axis(format=fmt)),
        "tooltip": [alt.Tooltip(f"{label}:N"), alt.Tooltip(f"{value}:Q", format=fmt),
                    *(alt.Tooltip(t) for t in (tooltip or []))],
    }  # fmt: skip
    if color:
        encoding["color"] = alt.Color(f"{color}:N", title=None, legend=alt.Legend(orient="top"))
    height = _band_height(len(df), extra=100 if color else 70)
    return alt.Chart(df).mark_bar().encode(**encoding).properties(height=height)


def onion(m: Metric, rows: list[dict[str, Any]] | None) -> alt.Chart:
    """Authors by commits, coloured by onion layer (core, regular, casual)."""
    df = frame(rows)
    if not df.empty:
        df["share"] = df["share"].round(3)
    chart = ranking(df, "author", "commits", axis_title(m, "commits"), color="category",
                    tooltip=["category", "share"], top=20, counts=True)  # fmt: skip
    return chart.encode(
        color=alt.Color(
            "category:N",
            title=None,
            legend=alt.Legend(orient="top"),
            scale=alt.Scale(domain=["core", "regular", "casual"]),
        )
    )


def coupling(m: Metric, rows: list[dict[str, Any]] | None, top: int = 12) -> alt.Chart:
    """Confidence that ``coupled_file`` changes when ``file`` does, for the most coupled files."""
    df = frame(rows)
    if df.empty:
        df = pd.DataFrame(columns=["file", "coupled_file", "support", "confidence"])
    else:
        files = list(dict.fromkeys(df["file"]))[:top]
        df = df[df["file"].isin(files) & df["coupled_file"].isin(files)]
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("coupled_file:N", title="changes together with", axis=alt.Axis(labelLimit=200, labelAngle=-40)),
        y=alt.Y("file:N", title=None, axis=alt.Axis(labelLimit=_LABEL_LIMIT)),
        color=alt.Color("confidence:Q", title="confidence", scale=alt.Scale(scheme="oranges", domain=[0, 1])),
        tooltip=["file", "coupled_file", alt.Tooltip("support:Q", title=f"support ({m.unit})"),
                 alt.Tooltip("confidence:Q", format=".0%")],
    ).properties(height=_band_height(df["file"].nunique() if not df.empty else 1, extra=150))  # fmt: skip


def owners(m: Metric, rows: list[dict[str, Any]] | None) -> alt.Chart:
    """Files at the head per main author (most lines changed), with the mean share they hold."""
    df = frame(rows)
    if df.empty:
        grouped = pd.DataFrame(columns=["owner", "files", "mean_share"])
    else:
        grouped = df.groupby("owner", as_index=False).agg(
            files=("path", "size"), mean_share=("value", "mean")
        )
        grouped["mean_share"] = grouped["mean_share"].round(3)
    return ranking(
        grouped, "owner", "files", "files owned (main author)", tooltip=["mean_share"], counts=True
    )


def generic_series(m: Metric, rows: list[dict[str, Any]] | None, period: str = "") -> alt.Chart:
    df = period_frame(rows)
    return alt.Chart(df).mark_line(point=True).encode(
        x=_time_axis(period), y=alt.Y("value:Q", title=axis_title(m)),
        tooltip=[_tooltip_date(period), alt.Tooltip("value:Q", title=m.unit)],
    ).properties(height=HEIGHT)  # fmt: skip


def numeric_column(df: pd.DataFrame) -> str | None:
    """``value`` when the rows have it, else their first numeric column."""
    if "value" in df and pd.api.types.is_numeric_dtype(df["value"]):
        return "value"
    for column in df.columns:
        if pd.api.types.is_numeric_dtype(df[column]) and not pd.api.types.is_bool_dtype(df[column]):
            return column
    return None


def label_column(m: Metric, df: pd.DataFrame) -> str | None:
    """The column naming each row: the metric's entity when it is a column, else the first text
    column."""
    if m.entity and m.entity in df:
        return m.entity
    for column in df.columns:
        if df[column].map(lambda v: isinstance(v, str)).all():
            return column
    return None


def generic_table(m: Metric, rows: list[dict[str, Any]] | None) -> alt.Chart | None:
    """Bars of the value (or first numeric) column by row label; None when nothing to draw."""
    df = frame(rows)
    value = numeric_column(df) if not df.empty else None
    if value is None:
        return None
    label = label_column(m, df)
    if label is None:  # rows named by numbers only (weekday and hour, ...): "weekday 0 · hour 10"
        others = [c for c in df.columns if c != value][:3]
        df = df.copy()
        df["row"] = [" · ".join(f"{c} {r[c]}" for c in others) or str(i)
                     for i, r in enumerate(df.to_dict(orient="records"))]  # fmt: skip
        label = "row"
    df = df[[label, value]].dropna()
    return ranking(df, label, value, axis_title(m, value), top=25)


def compare_series(m: Metric, df: pd.DataFrame, period: str) -> alt.Chart:
    """``df`` has date, value, repository."""
    return alt.Chart(df).mark_line(point=True).encode(
        x=_time_axis(period), y=alt.Y("value:Q", title=axis_title(m)),
        color=alt.Color("repository:N", title=None, legend=alt.Legend(orient="top")),
        tooltip=["repository", _tooltip_date(period), alt.Tooltip("value:Q", title=m.unit)],
    ).properties(height=360)  # fmt: skip


def compare_bars(m: Metric, df: pd.DataFrame, label: str | None, value: str) -> alt.Chart:
    """One bar per repository (``label`` None) or grouped bars per entity and repository."""
    if label is None:
        return alt.Chart(df).mark_bar().encode(
            x=alt.X("repository:N", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y(f"{value}:Q", title=axis_title(m, value)),
            color=alt.Color("repository:N", legend=None),
            tooltip=["repository", alt.Tooltip(f"{value}:Q", format=",.3~f")],
        ).properties(height=320)  # fmt: skip
    return alt.Chart(df).mark_bar().encode(
        y=alt.Y(f"{label}:N", title=None, sort="-x", axis=alt.Axis(labelLimit=_LABEL_LIMIT)),
        x=alt.X(f"{value}:Q", title=axis_title(m, value)),
        color=alt.Color("repository:N", title=None, legend=alt.Legend(orient="top")),
        yOffset="repository:N",
        tooltip=["repository", label, alt.Tooltip(f"{value}:Q", format=",.3~f")],
    ).properties(height=_band_height(df[label].nunique(), extra=100, step=14 * df["repository"].nunique() + 8))  # fmt: skip
