"""Small helpers shared by the built-in metrics."""

from __future__ import annotations

from typing import Any

import pandas as pd

from metrics.api import Period

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


def smallest_group_reaching(counts: pd.Series, share: float) -> tuple[int, list[str]]:
    """How many of the largest entries it takes to reach ``share`` of the total, and which."""
    ordered = counts.sort_values(ascending=False, kind="stable")
    total = ordered.sum()
    if total == 0:
        return 0, []
    reached = ordered.cumsum() >= share * total
    n = int(reached.to_numpy().argmax()) + 1
    return n, [str(k) for k in ordered.index[:n]]


def count_lines(content: bytes) -> int:
    """Lines as ``wc -l`` counts them, plus a last line without a newline."""
    if not content:
        return 0
    return content.count(b"\n") + (0 if content.endswith(b"\n") else 1)


def is_binary(content: bytes) -> bool:
    """git's rule: a NUL byte in the first 8000 bytes."""
    return b"\x00" in content[:8000]
