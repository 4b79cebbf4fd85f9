"""Releases, from the repository's tags."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from metrics.api import Shape, metric


@metric(version=2, unit="days", shape=Shape.TABLE, entity="tag")
def release_frequency(ctx, *, pattern: str = "") -> list[dict[str, Any]]:
    """Release Frequency: each tag (optionally only names containing ``pattern``) with its
    date and the days since the previous one (tags dated in ``since``..``until`` when set)."""
    rows, previous = [], None
    for tag in ctx.tags():
        if pattern and pattern not in tag.name:
            continue
        when = datetime.fromtimestamp(tag.time, UTC) if tag.time is not None else None
        gap = (tag.time - previous) / 86400 if previous is not None and tag.time else None
        rows.append({"tag": tag.name, "sha": tag.sha,
                     "date": when.strftime("%Y-%m-%d") if when else None,
                     "value": gap})  # fmt: skip
        previous = tag.time if tag.time is not None else previous
    return rows
