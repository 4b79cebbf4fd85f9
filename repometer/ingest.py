"""Ingestion: bring a repository's stored history to exactly the commits reachable from its ref.

Incremental and restartable: each run compares the reachable commits with the stored ones,
writes what is missing in batches, deletes what is no longer reachable (force-push, rebase),
and only then advances the repository's watermark (its ingested head and generation).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pygit2

from repometer import git
from repometer.errors import GitCommandError, RepometerError
from repometer.history import (
    LOG_ARGS,
    commit_row,
    file_rows,
    parse_commit_object,
    parse_log,
)
from repometer.registry import ensure_mirror, git_dir_of, repository_lock
from repometer.settings import Settings
from repometer.storage import RepositoryRecord, Store

#: Called with (commits written so far, commits to write in this run).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class IngestResult:
    repo_id: str
    head: str | None
    added: int
    removed: int
    up_to_date: bool
    """True when nothing had changed since the last ingestion (no git or database work)."""
    seconds: float


def ingest_commits(
    store: Store,
    repo_id: str,
    git_dir: Path,
    shas: Sequence[str],
    *,
    batch_size: int,
    progress: Progress | None = None,
) -> int:
    """Extract ``shas`` from the repository at ``git_dir`` and store them in batches."""
    if not shas:
        return 0
    odb = pygit2.Repository(str(git_dir)).odb
    written = 0
    commit_batch: list[dict] = []
    file_batch: list[dict] = []

    def flush() -> None:
        nonlocal written, commit_batch, file_batch
        store.write_history(commit_batch, file_batch)
        written += len(commit_batch)
        commit_batch, file_batch = [], []
        if progress is not None:
            progress(written, len(shas))

    revisions = ("\n".join(shas) + "\n").encode()
    with git.stream_git(LOG_ARGS, git_dir=git_dir, stdin_data=revisions) as output:
        for entry in parse_log(output):
            commit = parse_commit_object(odb.read(entry.sha)[1])
            commit_batch.append(commit_row(repo_id, entry, commit))
            file_batch.extend(file_rows(repo_id, entry))
            if len(commit_batch) >= batch_size:
                flush()
    if commit_batch:
        flush()
    if written != len(shas):
        raise GitCommandError(f"git log returned {written} of the {len(shas)} commits asked for")
    return written


@dataclass(frozen=True)
class IngestPlan:
    """What one ingestion run has to do; only identifiers, so it can cross process lines."""

    repo_id: str
    head: str | None
    previous_head: str | None
    missing: list[str]
    """Commits to extract, newest first."""
    removed: int
    """Commits no longer reachable, already deleted."""
    up_to_date: bool


@contextmanager
def recording_failure(store: Store, repo_id: str) -> Iterator[None]:
    """Store the error of a failing ingestion step on the repository, then re-raise it."""
    try:
        yield
    except RepometerError as exc:
        store.mark_failed(repo_id, str(exc))
        raise
    except Exception as exc:
        store.mark_failed(repo_id, f"{type(exc).__name__}: {exc}")
        raise


def plan_ingestion(
    store: Store, record: RepositoryRecord, settings: Settings, *, fetch: bool = True
) -> IngestPlan:
    """Fetch, then compare the reachable commits with the stored ones.

    Deletes what is no longer reachable and marks the repository as ingesting. Call it with
    the repository lock held, and ``finish_ingestion`` once the missing commits are stored.
    """
    record = store.get_repository(record.id)  # as the previous holder of the lock left it
    with recording_failure(store, record.id):
        git_dir = ensure_mirror(record, settings, fetch=fetch)
        head = git.resolve_commit(git_dir, record.ref)
    if record.status == "ok" and record.head == head:
        return IngestPlan(record.id, head, record.head, [], 0, True)
    if record.status != "ok":
        store.delete_orphan_file_changes(record.id)  # left by a run that died mid-batch
    store.mark_ingesting(record.id)
    with recording_failure(store, record.id):
        reachable = git.rev_list(git_dir, head) if head else []
        stored = store.stored_shas(record.id)
        missing = [sha for sha in reachable if sha not in stored]
        gone = stored.difference(reachable)
        removed = store.delete_commits(record.id, gone) if gone else 0
    return IngestPlan(record.id, head, record.head, missing, removed, False)


def finish_ingestion(store: Store, plan: IngestPlan, added: int) -> None:
    """Advance the watermark: every commit reachable from the planned head is stored."""
    with recording_failure(store, plan.repo_id):
        store.refresh_history()
        # a new head counts as a change even when this run wrote nothing: a run killed
        # after its last batch (before the watermark) left the rows for this one
        changed = bool(added or plan.removed) or plan.head != plan.previous_head
        store.advance_watermark(plan.repo_id, head=plan.head, changed=changed)


def ingest_repository(
    store: Store,
    record: RepositoryRecord,
    settings: Settings,
    *,
    fetch: bool = True,
    progress: Progress | None = None,
) -> IngestResult:
    """Make the stored history of ``record`` equal to the commits reachable from its ref,
    in this process (the flows spread the extraction over workers instead)."""
    started = time.perf_counter()
    with repository_lock(settings, record.id):
        plan = plan_ingestion(store, record, settings, fetch=fetch)
        if plan.up_to_date:
            return IngestResult(record.id, plan.head, 0, 0, True, time.perf_counter() - started)
        with recording_failure(store, record.id):
            added = ingest_commits(
                store, record.id, git_dir_of(record, settings), plan.missing,
                batch_size=settings.batch_size, progress=progress,
            )  # fmt: skip
        finish_ingestion(store, plan, added)
    seconds = time.perf_counter() - started
    return IngestResult(record.id, plan.head, added, plan.removed, False, seconds)
