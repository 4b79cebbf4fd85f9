"""People: who contributes, who arrives and leaves, how concentrated the work is.

Authors are identified by their email after ``.mailmap`` (git's ``%aE``) and shown by their
mailmapped name.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from fractions import Fraction
from typing import Any

import pandas as pd

from metrics.api import ParameterError, Period, Shape, metric
from metrics.builtin._common import (
    exact,
    flagged_per_period,
    period_column,
    series,
    smallest_group_reaching,
)
from metrics.identity import is_bot

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
    # exact fractions: in floats 0.8 + 0.15 > 0.95, which put an author starting at 95 % of
    # the commits in the regular layer instead of the casual one
    core, regular = exact(core_share), exact(core_share) + exact(regular_share)
    if core < 0 or regular < core or regular > 1:
        raise ParameterError("core_share and regular_share must be shares adding up to at most 1")
    counts, names = _author_commits(ctx, exclude_bots)
    total = int(counts.sum())
    rows, before = [], 0
    for email, n in counts.items():
        # an author belongs to the layer where their first commit of the ranking falls
        position = Fraction(before, total)
        layer = "core" if position < core else "regular" if position < regular else "casual"
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
    grouped = flagged_per_period(ctx, period, "is_bot")
    return series(grouped, "period", value="share", bot_commits="flagged", commits="commits")


_TRAILER = re.compile(
    r"^(co-authored-by|signed-off-by):[ \t]*(.*?)[ \t]*<([^<>\s]+)>[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)


def _name_and_email(text: str) -> tuple[str | None, str, str] | None:
    """``Name <email> rest`` -> (name or None, email, rest), as git's mailmap reads it."""
    left = text.find("<")
    right = text.find(">", left + 1) if left >= 0 else -1
    if right < 0:
        return None
    return text[:left].strip() or None, text[left + 1 : right], text[right + 1 :]


class Mailmap:
    """A ``.mailmap`` applied the way git applies it (``git check-mailmap``).

    Each line is ``Proper Name <proper@email>``, ``<proper@email> <commit@email>``,
    ``Proper Name <proper@email> <commit@email>`` or ``Proper Name <proper@email> Commit Name
    <commit@email>``; emails and commit names match without regard to case.
    """

    def __init__(self, text: str = "") -> None:
        # commit email -> (default replacement, {commit name: replacement})
        self._map: dict[str, tuple[list[str | None], dict[str, tuple[str | None, str | None]]]]
        self._map = {}
        for line in text.splitlines():
            if line.startswith("#"):
                continue
            first = _name_and_email(line)
            if first is None or not first[1]:
                continue
            new_name, new_email, rest = first
            second = _name_and_email(rest)
            old_name, old_email = (second[0], second[1]) if second else (None, None)
            if old_email is None:
                old_email, new_email = new_email, None
            default, by_name = self._map.setdefault(old_email.lower(), ([None, None], {}))
            if old_name is None:
                default[0] = new_name or default[0]
                default[1] = new_email or default[1]
            else:
                by_name[old_name.lower()] = (new_name, new_email)

    def __call__(self, name: str, email: str) -> tuple[str, str]:
        found = self._map.get(email.lower())
        if found is None:
            return name, email
        default, by_name = found
        new_name, new_email = by_name.get(name.lower(), tuple(default))
        return new_name or name, new_email or email


def _head_mailmap(ctx) -> Mailmap:
    """The ``.mailmap`` at the ingested head: the one git applied to the authors."""
    for entry in ctx.tree():
        if entry.path == ".mailmap":
            return Mailmap(ctx.read_blob(entry.oid).decode("utf-8", "replace"))
    return Mailmap()


@metric(version=1, unit="commits", shape=Shape.TABLE, entity="person")
def contribution_attribution(ctx, *, exclude_bots: bool = False) -> list[dict[str, Any]]:
    """Contribution Attribution: commits authored, co-authored (Co-authored-by) and signed off
    (Signed-off-by) by each person.

    People are keyed by their email after ``.mailmap`` (lower-cased): git maps commit authors,
    and the same ``.mailmap`` is applied here to the people named in trailers. With
    ``exclude_bots``, bots named in trailers are left out too.
    """
    df = ctx.commits(["mailmap_email", "mailmap_name", "author_day", "message"],
                     exclude_bots=exclude_bots)  # fmt: skip
    # oldest first, so that the latest name of a person is the one shown
    df = df.sort_values("author_day", kind="stable", na_position="first")
    mailmap: Mailmap | None = None
    people: dict[str, dict[str, Any]] = {}
    author_names: dict[str, str] = {}
    trailer_names: dict[str, str] = {}

    def person(key: str) -> dict[str, Any]:
        return people.setdefault(key, {"person": "", "email": key, "authored": 0,
                                       "co_authored": 0, "signed_off": 0})  # fmt: skip

    for email, name, message in df[["mailmap_email", "mailmap_name", "message"]].itertuples(
        index=False
    ):
        key = (email or "").lower()
        person(key)["authored"] += 1
        author_names[key] = name or ""
        seen: set[tuple[str, str]] = set()
        for kind, trailer_name, trailer_email in _TRAILER.findall(message or ""):
            if mailmap is None:
                mailmap = _head_mailmap(ctx)
            trailer_name, trailer_email = mailmap(trailer_name, trailer_email)
            if exclude_bots and is_bot(trailer_name, trailer_email):
                continue
            trailer_key = trailer_email.lower()
            if (kind.lower(), trailer_key) in seen:
                continue
            seen.add((kind.lower(), trailer_key))
            column = "co_authored" if kind.lower() == "co-authored-by" else "signed_off"
            person(trailer_key)[column] += 1
            trailer_names[trailer_key] = trailer_name or trailer_names.get(trailer_key, "")
    for key, entry in people.items():
        # the mailmapped author name when they authored anything, else the trailer's
        entry["person"] = author_names.get(key) or trailer_names.get(key, "")
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
