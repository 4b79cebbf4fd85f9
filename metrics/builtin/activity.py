"""Activity: how much changes, when, and in what sizes."""

from __future__ import annotations

from typing import Any

from metrics.api import Period, Shape, metric
from metrics.builtin._common import flagged_per_period, period_column, series


@metric(version=1, unit="commits", shape=Shape.SERIES)
def commits(ctx, *, period: Period = "day", exclude_bots: bool = False) -> list[dict[str, Any]]:
    """Code Changes Commits: commits per period (author date in UTC), merges included."""
    column = period_column(period)
    df = ctx.aggregate([column], exclude_bots=exclude_bots)
    return series(df, column, value="commits")


@metric(version=1, unit="lines", shape=Shape.SERIES)
def lines_changed(
    ctx, *, period: Period = "week", exclude_bots: bool = False
) -> list[dict[str, Any]]:
    """Code Changes Lines: lines added and deleted per period (value = added + deleted)."""
    column = period_column(period)
    df = ctx.aggregate([column], sums=["lines_added", "lines_deleted"], exclude_bots=exclude_bots)
    df["value"] = df["sum_lines_added"] + df["sum_lines_deleted"]
    return series(df, column, added="sum_lines_added", deleted="sum_lines_deleted", value="value")


@metric(version=1, unit="commits", shape=Shape.SERIES)
def merges(ctx, *, period: Period = "month") -> list[dict[str, Any]]:
    """Merge commits per period, with their share of all commits."""
    grouped = flagged_per_period(ctx, period, "is_merge")
    return series(grouped, "period", value="flagged", commits="commits", share="share")


_SIZE_BUCKETS = ((0, 0), (1, 9), (10, 49), (50, 199), (200, 999), (1000, None))


@metric(version=1, unit="commits", shape=Shape.TABLE, entity="size")
def commit_size(ctx, *, exclude_bots: bool = False) -> list[dict[str, Any]]:
    """Distribution of non-merge commit sizes in lines changed (added + deleted)."""
    df = ctx.commits(["lines_added", "lines_deleted", "files_changed"], merges=False,
                     exclude_bots=exclude_bots)  # fmt: skip
    lines = df["lines_added"] + df["lines_deleted"]
    total = len(df)
    rows = []
    for low, high in _SIZE_BUCKETS:
        inside = (lines >= low) if high is None else lines.between(low, high)
        label = f"{low}+" if high is None else (str(low) if low == high else f"{low}-{high}")
        count = int(inside.sum())
        rows.append({
            "size": label, "min_lines": low, "max_lines": high, "commits": count,
            "share": count / total if total else 0.0,
            "median_files": float(df.loc[inside, "files_changed"].median()) if count else None,
        })  # fmt: skip
    return rows


@metric(version=1, unit="hours", shape=Shape.SERIES)
def commit_lag(ctx, *, period: Period = "month") -> list[dict[str, Any]]:
    """Median hours from authoring to committing, per period (a proxy for review delay)."""
    column = period_column(period)
    df = ctx.commits([column, "author_time", "committer_time"], merges=False)
    df = df.dropna(subset=["author_time", "committer_time"])
    df["lag"] = (df["committer_time"] - df["author_time"]) / 3600.0
    grouped = df.groupby(column, dropna=False)["lag"].agg(["median", "max", "count"])
    return series(grouped.reset_index(), column, value="median", max="max", commits="count")


@metric(version=1, unit="commits", shape=Shape.TABLE, entity="weekday_hour")
def activity_dates_times(ctx, *, exclude_bots: bool = False) -> list[dict[str, Any]]:
    """Activity Dates and Times: commits by weekday (0 = Monday) and hour in the author's zone."""
    df = ctx.aggregate(["author_local_weekday", "author_local_hour"], exclude_bots=exclude_bots)
    counts = {
        (int(r["author_local_weekday"]), int(r["author_local_hour"])): int(r["commits"])
        for r in df.dropna().to_dict(orient="records")
    }
    return [
        {"weekday": day, "hour": hour, "value": counts.get((day, hour), 0)}
        for day in range(7)
        for hour in range(24)
    ]


def _format_offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@metric(version=1, unit="commits", shape=Shape.TABLE, entity="timezone")
def timezones(ctx, *, exclude_bots: bool = False) -> list[dict[str, Any]]:
    """Commits and authors by the author's UTC offset (a weak proxy for location)."""
    df = ctx.aggregate(["author_offset"], count_distinct="mailmap_email", exclude_bots=exclude_bots)
    df = df.dropna(subset=["author_offset"])
    total = df["commits"].sum()
    rows = [
        {"timezone": _format_offset(int(r["author_offset"])), "offset_minutes": int(r["author_offset"]),
         "value": int(r["commits"]), "authors": int(r["distinct"]),
         "share": r["commits"] / total if total else 0.0}
        for r in df.to_dict(orient="records")
    ]  # fmt: skip
    return sorted(rows, key=lambda r: r["offset_minutes"])
