"""Repository: the built-in catalogue of one repository as charts, with history filters."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.dashboard import charts, data, widgets

record = widgets.repository_selector()
if record is None:
    st.stop()
wanted = widgets.history_filters(record)
period = wanted["period"]

summary = data.overview(record)
st.title(widgets.md(record.name))
st.caption(
    f"{widgets.md(record.url)} · ref {widgets.md(record.ref)} · head {(record.head or 'none')[:12]}"
)
top = st.columns(5)
top[0].metric("Commits", f"{summary['commits']:,}")
top[1].metric("Authors", f"{summary['authors']:,}")
top[2].metric(
    "Lines added / deleted", f"+{summary['lines_added']:,} / -{summary['lines_deleted']:,}"
)
top[3].metric(
    "Last ingest",
    widgets.ago(summary["last_ingested"]),
    help=summary["last_ingested"] or "not ingested yet",
)
top[4].metric("Fresh results", f"{summary['fresh']} / {summary['metrics']}")
if record.status == "failed" and data.is_ingested(record):
    st.error(
        f"The last ingestion failed: {widgets.md(record.error)}. Showing the history stored before it."
    )
notice = st.container()

NAMES = [
    "commits", "lines_changed", "activity_dates_times", "contributors", "new_contributors",
    "inactive_contributors", "contributor_absence_factor", "elephant_factor", "knowledge_loss",
    "occasional_contributors", "hotspots", "temporal_coupling", "ownership",
    "language_distribution", "complexity",
]  # fmt: skip
available = [n for n in NAMES if n in data.registry()]
loaded: dict[str, data.Loaded] = {}
with st.spinner("Loading results"):
    for name in available:
        loaded[name] = data.load(record, name, data.applicable(data.metric(name), wanted))

with notice:
    widgets.stale_notice(record, list(loaded.values()))


def chart(obj: Any) -> None:
    st.altair_chart(obj, width="stretch")


def ranking(name: str, key: str, axis: str, title: str, tooltip: list[str]) -> None:
    """A bar chart ranking the rows of one loaded metric by their value."""
    if name in loaded:
        widgets.framed(
            loaded[name],
            lambda e: chart(charts.ranking(charts.frame(e.rows), key, "value",
                                           charts.axis_title(e.metric, axis), tooltip=tooltip)),
            title=title,
        )  # fmt: skip


def scalar(column: Any, name: str, label: str, fmt: str = "{:,}", help_key: str = "") -> None:
    entry = loaded.get(name)
    if entry is None or not entry.rows or entry.error:
        column.metric(label, "…" if entry is None or entry.error is None else "failed",
                      help=widgets.md(entry.error) if entry is not None and entry.error else None)  # fmt: skip
        return
    row = entry.rows[0]
    who = row.get(help_key) if help_key else None
    text = f"{entry.metric.description} Unit: {entry.metric.unit}."
    if who:
        text += f" {help_key.replace('_', ' ').capitalize()}: {', '.join(map(widgets.md, who))}."
    stale = "" if entry.fresh else " (stale)"
    column.metric(label + stale, fmt.format(row["value"]), help=text)


st.header("Activity")
left, right = st.columns(2)
with left:
    if "commits" in loaded:
        widgets.framed(loaded["commits"], lambda e: chart(charts.activity(e.metric, e.rows, period)),
                       title=f"Commits per {period}")  # fmt: skip
with right:
    if "lines_changed" in loaded:
        widgets.framed(loaded["lines_changed"],
                       lambda e: chart(charts.lines_changed(e.metric, e.rows, period)),
                       title=f"Lines added and deleted per {period}")  # fmt: skip
if "activity_dates_times" in loaded:
    widgets.framed(loaded["activity_dates_times"], lambda e: chart(charts.punchcard(e.metric, e.rows)),
                   title="When commits are made (weekday × hour)")  # fmt: skip

st.header("People")
cols = st.columns(4)
scalar(cols[0], "contributor_absence_factor", "Contributor absence factor", help_key="authors")
scalar(cols[1], "elephant_factor", "Elephant factor", help_key="organizations")
scalar(cols[2], "knowledge_loss", "Knowledge loss", fmt="{:.0%}", help_key="inactive_owners")
if "occasional_contributors" in loaded and loaded["occasional_contributors"].rows:
    layers = [r["category"] for r in loaded["occasional_contributors"].rows]
    cols[3].metric("Core / regular / casual authors",
                   f"{layers.count('core')} / {layers.count('regular')} / {layers.count('casual')}",
                   help="Onion model: core authors make the first 80 % of commits, regular ones "
                   "the next 15 %, casual ones the rest.")  # fmt: skip

left, right = st.columns(2)
with left:
    people = {label: loaded[n] for label, n in (("active", "contributors"), ("new", "new_contributors"),
                                                ("inactive", "inactive_contributors")) if n in loaded}  # fmt: skip
    if people:
        first = next(iter(people.values()))
        combined = data.Loaded(
            first.metric, [r for e in people.values() for r in (e.rows or [])] if any(
                e.rows is not None for e in people.values()) else None,
            all(e.fresh for e in people.values()),
            error="; ".join(e.error for e in people.values() if e.error) or None,
            computed_at=first.computed_at,
        )  # fmt: skip
        widgets.framed(
            combined,
            lambda e: chart(charts.contributors({k: v.rows for k, v in people.items()}, first.metric.unit, period)),
            title=f"Active, new and inactive contributors per {period}",
        )  # fmt: skip
with right:
    if "occasional_contributors" in loaded:
        widgets.framed(loaded["occasional_contributors"], lambda e: chart(charts.onion(e.metric, e.rows)),
                       title="Contributors by commits (onion layers)")  # fmt: skip

st.header("Files")
left, right = st.columns(2)
with left:
    ranking("hotspots", "path", "changes × lines", "Hotspots (change frequency × size)",
            ["changes", "lines"])  # fmt: skip
with right:
    if "ownership" in loaded:
        widgets.framed(loaded["ownership"], lambda e: chart(charts.owners(e.metric, e.rows)),
                       title="Ownership: files per main author")  # fmt: skip
if "temporal_coupling" in loaded:

    def coupling(e: data.Loaded) -> None:
        if not e.rows:
            st.info("No two files changed together often enough (min_support) to be coupled.")
            return
        chart(charts.coupling(e.metric, e.rows))

    widgets.framed(loaded["temporal_coupling"], coupling, title="Temporal coupling")

st.header("Content at the head")
left, right = st.columns(2)
with left:
    ranking("language_distribution", "language", "lines", "Languages", ["files", "share"])
with right:
    ranking("complexity", "path", "total", "Most complex files", ["functions", "max", "average"])
if wanted.get("since") or wanted.get("until"):
    st.caption(
        "Languages and complexity describe the files at the head: the date range does not apply."
    )
