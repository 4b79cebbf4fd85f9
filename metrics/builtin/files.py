"""Files: where change concentrates, what changes together, who knows what."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from itertools import combinations
from typing import Any, Literal

import pandas as pd

from metrics.api import Shape, metric
from metrics.builtin._common import count_lines, is_binary


def _changes(ctx, columns: list[str], exclude_bots: bool) -> pd.DataFrame:
    return ctx.file_changes(["sha", "path", *columns], exclude_bots=exclude_bots)


@metric(version=1, unit="commits", shape=Shape.TABLE, entity="file")
def change_frequency(ctx, *, exclude_bots: bool = False) -> list[dict[str, Any]]:
    """Commits that touched each file (revisions), most changed first."""
    df = _changes(ctx, [], exclude_bots)
    counts = df.groupby("path")["sha"].nunique().sort_values(ascending=False, kind="stable")
    return [{"path": path, "value": int(n)} for path, n in counts.items()]


@metric(version=2, unit="lines", shape=Shape.TABLE, entity="path")
def churn(
    ctx, *, by: Literal["file", "directory"] = "file", depth: int = 1, exclude_bots: bool = False
) -> list[dict[str, Any]]:
    """Lines added and deleted per file, or per directory ``depth`` levels deep."""
    df = _changes(ctx, ["lines_added", "lines_deleted"], exclude_bots)
    if by == "directory":
        # a plain loop, not .str: an empty range reads a column pandas does not type as text
        parts = [path.split("/") for path in df["path"].tolist()]
        df["path"] = ["/".join(p[: max(0, min(depth, len(p) - 1))]) or "." for p in parts]
    grouped = df.groupby("path").agg(
        added=("lines_added", "sum"), deleted=("lines_deleted", "sum"), commits=("sha", "nunique")
    )
    grouped["value"] = grouped["added"] + grouped["deleted"]
    grouped = grouped.sort_values("value", ascending=False, kind="stable")
    return [
        {"path": path, "added": int(r.added), "deleted": int(r.deleted), "value": int(r.value),
         "commits": int(r.commits)}
        for path, r in grouped.iterrows()
    ]  # fmt: skip


def text_lines(path: str, content: bytes) -> int | None:
    """Lines of a text file (None for binary files); runs in the workers."""
    return None if is_binary(content) else count_lines(content)


@metric(version=1, unit="score", shape=Shape.TABLE, entity="file")
def hotspots(ctx, *, exclude_bots: bool = False) -> list[dict[str, Any]]:
    """Hotspots: files at the head ranked by change frequency x current size in lines."""
    entries = ctx.tree()
    sizes = dict(zip((e.path for e in entries), ctx.map_files(text_lines, entries), strict=True))
    df = _changes(ctx, [], exclude_bots)
    changes = df.groupby("path")["sha"].nunique()
    rows = [
        {"path": path, "changes": int(changes.get(path, 0)), "lines": lines,
         "value": int(changes.get(path, 0)) * lines}
        for path, lines in sizes.items() if lines is not None
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (-r["value"], r["path"]))


@metric(version=1, unit="commits", shape=Shape.TABLE, entity="file_pair")
def temporal_coupling(
    ctx, *, max_files: int = 30, min_support: int = 2, exclude_bots: bool = False
) -> list[dict[str, Any]]:
    """Temporal coupling: files changed in the same commits; support = shared commits,
    confidence = support / commits of ``file``. Commits touching more than ``max_files``
    files are skipped (mass edits say nothing about coupling)."""
    df = _changes(ctx, [], exclude_bots)
    revisions: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    by_commit: defaultdict[str, set[str]] = defaultdict(set)
    for sha, path in zip(df["sha"].tolist(), df["path"].tolist(), strict=True):
        by_commit[sha].add(path)
    for touched in by_commit.values():
        if len(touched) > max_files:
            continue
        paths = sorted(touched)
        revisions.update(paths)
        pairs.update(combinations(paths, 2))
    rows = []
    for (a, b), support in pairs.items():
        if support < min_support:
            continue
        for file, other in ((a, b), (b, a)):
            rows.append(
                {
                    "file": file,
                    "coupled_file": other,
                    "support": support,
                    "confidence": support / revisions[file],
                    "revisions": revisions[file],
                }
            )
    return sorted(
        rows, key=lambda r: (-r["support"], -r["confidence"], r["file"], r["coupled_file"])
    )


def _author_lines(ctx, exclude_bots: bool) -> pd.DataFrame:
    """Lines changed per (file at head, author)."""
    live = {e.path for e in ctx.tree()}
    df = _changes(ctx, ["lines_added", "lines_deleted", "mailmap_email", "mailmap_name"],
                  exclude_bots)  # fmt: skip
    df = df[df["path"].isin(live)].copy()
    df["lines"] = df["lines_added"] + df["lines_deleted"]
    return df


def _owners(df: pd.DataFrame) -> pd.DataFrame:
    """Per file: main author (most lines changed, ties by email), their share, author count."""
    per_author = df.groupby(["path", "mailmap_email"], as_index=False).agg(
        lines=("lines", "sum"), changes=("sha", "nunique"), name=("mailmap_name", "last")
    )
    per_author = per_author.sort_values(
        ["path", "lines", "changes", "mailmap_email"],
        ascending=[True, False, False, True],
        kind="stable",
    )
    totals = per_author.groupby("path").agg(
        total=("lines", "sum"), authors=("mailmap_email", "size")
    )
    owners = per_author.groupby("path").head(1).set_index("path").join(totals)
    owners["share"] = (owners["lines"] / owners["total"]).where(owners["total"] > 0, 1.0)
    return owners


@metric(version=1, unit="share", shape=Shape.TABLE, entity="file")
def ownership(ctx, *, exclude_bots: bool = False) -> list[dict[str, Any]]:
    """Ownership: each file's main author (most lines changed) and their share of its lines."""
    owners = _owners(_author_lines(ctx, exclude_bots))
    rows = [
        {"path": path, "owner": r["name"], "owner_email": r["mailmap_email"],
         "value": float(r["share"]), "authors": int(r["authors"])}
        for path, r in owners.iterrows()
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (-r["value"], r["path"]))


@metric(version=1, unit="share", shape=Shape.SCALAR)
def knowledge_loss(ctx, *, inactive_days: int = 180, exclude_bots: bool = False) -> dict[str, Any]:
    """Knowledge loss: share of files at the head whose main author has gone inactive
    (no commit in the ``inactive_days`` before the newest commit)."""
    df = _author_lines(ctx, exclude_bots)
    authors = ctx.commits(["mailmap_email", "author_day"], exclude_bots=exclude_bots)
    authors = authors.dropna(subset=["author_day"])
    if df.empty or authors.empty:
        return {"value": 0.0, "files": 0, "files_lost": 0, "inactive_owners": []}
    newest = date.fromisoformat(authors["author_day"].max())
    cutoff = (newest - timedelta(days=inactive_days)).isoformat()
    last_seen = authors.groupby("mailmap_email")["author_day"].max()
    owners = _owners(df)
    lost = owners[owners["mailmap_email"].map(last_seen) < cutoff]
    return {
        "value": len(lost) / len(owners),
        "files": len(owners),
        "files_lost": len(lost),
        "inactive_owners": sorted(set(lost["name"])),
    }


@metric(version=1, unit="authors", shape=Shape.TABLE, entity="file")
def authors_per_file(
    ctx, *, minor_share: float = 0.05, exclude_bots: bool = False
) -> list[dict[str, Any]]:
    """Distinct authors per file, and minor authors (under 5 % of the file's commits)."""
    df = _changes(ctx, ["mailmap_email"], exclude_bots)
    per_author = df.groupby(["path", "mailmap_email"])["sha"].nunique().reset_index(name="commits")
    per_author["minor"] = (
        per_author["commits"] / per_author.groupby("path")["commits"].transform("sum") < minor_share
    )
    per_file = per_author.groupby("path").agg(
        authors=("commits", "size"), minor=("minor", "sum"), commits=("commits", "sum")
    )
    rows = [
        {"path": path, "value": int(r.authors), "minor_authors": int(r.minor),
         "commits": int(r.commits)}
        for path, r in zip(per_file.index, per_file.itertuples(index=False), strict=True)
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (-r["value"], r["path"]))
