"""People: who contributes, who arrives and leaves, how concentrated the work is.

Authors are identified by their email after ``.mailmap`` (git's ``%aE``) and shown by their
mailmapped name.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any

import pandas as pd

from metrics.api import Period, Shape, metric
from metrics.builtin._common import period_column, series, smallest_group_reaching

_AUTHOR_COLUMNS = ["mailmap_email", "mailmap_name", "author_day"]


def _period_of(day: str, period: Period) -> str:
    if period == "day":
        return day
    if period == "month":
        return day[:7]
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def _names(df: pd.DataFrame) -> pd.Series:
    """The most recent mailmapped name of each author email."""
    latest = df.sort_values("author_day", kind="stable").groupby("mailmap_email")["mailmap_name"]
    return latest.last()


@metric(version=1, unit="authors", shape=Shape.SERIES)
def contributors(
    ctx, *, period: Period = "month", exclude_bots: bool = False
) -> list[dict[str, Any]]:
    """Contributors: distinct authors with at least one commit in each period."""
    column = period_column(period)
    df = ctx.aggregate([column], count_distinct="mailmap_email", exclude_bots=exclude_bots)
    return series(df, column, value="distinct", commits="commits")


@metric(version=1, unit="authors", shape=Shape.SERIES)
def new_contributors(
    ctx, *, period: Period = "month", exclude_bots: bool = False
) -> list[dict[str, Any]]:
    """New Contributors: authors whose first commit falls in each period."""
    df = ctx.commits(_AUTHOR_COLUMNS, exclude_bots=exclude_bots).dropna(subset=["author_day"])
    first = df.groupby("mailmap_email")["author_day"].min()
    names = _names(df)
    rows: dict[str, dict[str, Any]] = {}
    for email, day in first.sort_values(kind="stable").items():
        row = rows.setdefault(_period_of(day, period), {"value": 0, "authors": []})
        row["value"] += 1
        row["authors"].append(names[email])
    return [{"period": p, **row} for p, row in sorted(rows.items())]


@metric(version=1, unit="authors", shape=Shape.SERIES)
def inactive_contributors(
    ctx, *, period: Period = "month", inactive_days: int = 180, exclude_bots: bool = False
) -> list[dict[str, Any]]:
    """Inactive Contributors: authors who went inactive in each period (no commit for N days).

    An author goes inactive ``inactive_days`` after their last commit, counted only when that
    moment is not later than the newest commit read.
    """
    df = ctx.commits(_AUTHOR_COLUMNS, exclude_bots=exclude_bots).dropna(subset=["author_day"])
    if df.empty:
        return []
    newest = date.fromisoformat(df["author_day"].max())
    last = df.groupby("mailmap_email")["author_day"].max()
    names = _names(df)
    rows: dict[str, dict[str, Any]] = {}
    for email, day in last.sort_values(kind="stable").items():
        gone = date.fromisoformat(day) + timedelta(days=inactive_days)
        if gone <= newest:
            row = rows.setdefault(_period_of(gone.isoformat(), period), {"value": 0, "authors": []})
            row["value"] += 1
            row["authors"].append(names[email])
    return [{"period": p, **row} for p, row in sorted(rows.items())]


def _author_commits(ctx, exclude_bots: bool) -> tuple[pd.Series, pd.Series]:
    df = ctx.commits(_AUTHOR_COLUMNS, exclude_bots=exclude_bots)
    counts = df.groupby("mailmap_email").size().sort_values(ascending=False, kind="stable")
    return counts, _names(df)


@metric(version=1, unit="commits", shape=Shape.TABLE, entity="author")
def occasional_contributors(
    ctx, *, core_share: float = 0.8, regular_share: float = 0.15, exclude_bots: bool = False
) -> list[dict[str, Any]]:
    """Occasional Contributors (onion): core authors make the first 80 % of commits, regular
    ones the next 15 %, casual ones the rest."""
    counts, names = _author_commits(ctx, exclude_bots)
    total = int(counts.sum())
    rows, before = [], 0
    for email, n in counts.items():
        # an author belongs to the layer where their first commit of the ranking falls
        position = before / total
        layer = (
            "core" if position < core_share
            else "regular" if position < core_share + regular_share
            else "casual"
        )  # fmt: skip
        rows.append({"author": names[email], "email": email, "commits": int(n),
                     "share": n / total, "category": layer})  # fmt: skip
        before += int(n)
    return rows


@metric(version=1, unit="authors", shape=Shape.SCALAR)
def contributor_absence_factor(
    ctx, *, share: float = 0.5, exclude_bots: bool = False
) -> dict[str, Any]:
    """Contributor Absence Factor (bus factor): fewest authors making 50 % of the commits."""
    counts, names = _author_commits(ctx, exclude_bots)
    n, emails = smallest_group_reaching(counts, share)
    return {"value": n, "authors": [names[e] for e in emails], "total_authors": len(counts)}


@metric(version=1, unit="share", shape=Shape.SERIES)
def bot_activity(ctx, *, period: Period = "month") -> list[dict[str, Any]]:
    """Bot Activity: commits by automation accounts per period, and their share."""
    column = period_column(period)
    df = ctx.commits([column, "is_bot"])
    grouped = df.groupby(column, dropna=False)["is_bot"].agg(["sum", "count"]).reset_index()
    grouped["share"] = grouped["sum"] / grouped["count"]
    return series(grouped, column, value="share", bot_commits="sum", commits="count")


_TRAILER = re.compile(
    r"^(co-authored-by|signed-off-by):[ \t]*(.*?)[ \t]*<([^<>\s]+)>[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)


@metric(version=1, unit="commits", shape=Shape.TABLE, entity="person")
def contribution_attribution(ctx, *, exclude_bots: bool = False) -> list[dict[str, Any]]:
    """Contribution Attribution: commits authored, co-authored (Co-authored-by) and signed off
    (Signed-off-by) by each person."""
    df = ctx.commits(["mailmap_email", "mailmap_name", "author_day", "message"],
                     exclude_bots=exclude_bots)  # fmt: skip
    people: dict[str, dict[str, Any]] = {}

    def person(email: str, name: str) -> dict[str, Any]:
        key = email.lower()
        entry = people.setdefault(key, {"person": name, "email": key, "authored": 0,
                                        "co_authored": 0, "signed_off": 0})  # fmt: skip
        entry["person"] = entry["person"] or name
        return entry

    for email, name, message in df[["mailmap_email", "mailmap_name", "message"]].itertuples(
        index=False
    ):
        person(email or "", name or "")["authored"] += 1
        seen: set[tuple[str, str]] = set()
        for kind, trailer_name, trailer_email in _TRAILER.findall(message or ""):
            key = (kind.lower(), trailer_email.lower())
            if key in seen:
                continue
            seen.add(key)
            column = "co_authored" if key[0] == "co-authored-by" else "signed_off"
            person(trailer_email, trailer_name)[column] += 1
    return sorted(people.values(), key=lambda p: (-p["authored"] - p["co_authored"], p["email"]))


@metric(version=1, unit="commits", shape=Shape.TABLE, entity="domain")
def email_domains(ctx, *, exclude_bots: bool = False) -> list[dict[str, Any]]:
    """Commits and authors by author email domain."""
    df = ctx.aggregate(["email_domain"], count_distinct="mailmap_email", exclude_bots=exclude_bots)
    total = df["commits"].sum()
    rows = [{"domain": r["email_domain"], "value": int(r["commits"]), "authors": int(r["distinct"]),
             "share": r["commits"] / total if total else 0.0}
            for r in df.to_dict(orient="records")]  # fmt: skip
    return sorted(rows, key=lambda r: (-r["value"], r["domain"] or ""))
