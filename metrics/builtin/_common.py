"""Small helpers shared by the built-in metrics."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pandas as pd

from metrics.api import ParameterError, Period

PERIOD_COLUMNS: dict[str, str] = {
    "day": "author_day",
    "week": "author_week",
    "month": "author_month",
}


def period_column(period: Period) -> str:
    return PERIOD_COLUMNS[period]


def series(df: pd.DataFrame, column: str, **values: str) -> list[dict[str, Any]]:
    """Rows ``{"period": ..., <name>: df[<column>]...}`` ordered by period (unknown dates last)."""
    rows = [
        {"period": row[column], **{name: row[src] for name, src in values.items()}}
        for row in df.to_dict(orient="records")
    ]
    return sorted(rows, key=lambda r: (r["period"] is None, r["period"] or ""))


def exact(value: Any) -> Fraction:
    """A count or a share as an exact fraction: ``0.8`` is 4/5, not the float nearest to it,
    so that shares reached exactly compare equal (``0.28 * 25`` is 7.000000000000001)."""
    return Fraction(str(value))


def flagged_per_period(ctx, period: Period, flag: str) -> pd.DataFrame:
    """Per period: commits with the boolean column ``flag`` set (``flagged``), all commits
    (``commits``) and the share."""
    column = period_column(period)
    df = ctx.commits([column, flag])
    grouped = df.groupby(column, dropna=False)[flag].agg(flagged="sum", commits="count")
    grouped["share"] = grouped["flagged"] / grouped["commits"]
    return grouped.reset_index().rename(columns={column: "period"})


def smallest_group_reaching(counts: pd.Series, share: float) -> tuple[int, list[str]]:
    """How many of the largest entries it takes to reach ``share`` of the total, and which.

    Reaching the share exactly is enough; ties in size keep the order of ``counts``.
    """
    if not 0 < share <= 1:
        raise ParameterError(f"share must be more than 0 and at most 1, not {share!r}")
    ordered = counts.sort_values(ascending=False, kind="stable")
    threshold = exact(share) * sum((exact(v) for v in ordered), Fraction(0))
    if threshold == 0:
        return 0, []
    running = Fraction(0)
    for n, value in enumerate(ordered, start=1):
        running += exact(value)
        if running >= threshold:
            return n, [str(k) for k in ordered.index[:n]]
    raise AssertionError("unreachable: the whole total reaches any share up to 1")


def count_lines(content: bytes) -> int:
    """Lines as ``wc -l`` counts them, plus a last line without a newline."""
    if not content:
        return 0
    return content.count(b"\n") + (0 if content.endswith(b"\n") else 1)


def is_binary(content: bytes) -> bool:
    """git's rule: a NUL byte in the first 8000 bytes."""
    return b"\x00" in content[:8000]
