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
    LogEntry,
    commit_row,
    file_rows,
    join_flags,
    log_args,
    parse_commit_object,
    parse_log,
    renames_skipped,
)
from repometer.registry import ensure_mirror, git_dir_of, repository_lock
from repometer.settings import DEFAULT_MAX_BLOB_SIZE, DEFAULT_RENAME_LIMIT, Settings
from repometer.storage import RepositoryRecord, Store

#: Called with (commits written so far, commits to write in this run).
Progress = Callable[[int, int], None]


def shallow_commits(repository: pygit2.Repository) -> set[str]:
    """The commits whose parents a shallow clone lacks (none in a complete repository).

    git lists them in ``$GIT_DIR/shallow`` (gitrepository-layout); git log treats each as
    a root, so its diff is against the empty tree.
    """
    if not repository.is_shallow:
        return set()
    path = Path(repository.path) / "shallow"
    try:
        return set(path.read_text("ascii").split())
    except FileNotFoundError:
        return set()


def _flag_file_changes(
    odb: pygit2.Odb, entry: LogEntry, max_blob_size: int, rename_limit: int
) -> set[str]:
    """Flag what git did not look into: files above ``max_blob_size`` (which git reports as
    binary, by their size alone) and a commit whose renames it did not search. Returns the
    commit's flags."""
    flags: set[str] = set()
    for change in entry.files:
        if change.is_binary and any(_blob_size(odb, oid) > max_blob_size for oid in change.blobs):
            change.flags.add("too_large")
            flags.add("large_files_skipped")
    if renames_skipped(entry.files, rename_limit):
        flags.add("renames_skipped")
    return flags


def _blob_size(odb: pygit2.Odb, oid: str) -> int:
    try:
        return odb.read_header(oid)[1]  # the object header only, not the content
    except (KeyError, ValueError, pygit2.GitError):
        return 0  # absent (a partial clone): nothing was read either


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
    rename_limit: int = DEFAULT_RENAME_LIMIT,
    max_blob_size: int = DEFAULT_MAX_BLOB_SIZE,
    progress: Progress | None = None,
) -> int:
    """Extract ``shas`` from the repository at ``git_dir`` and store them in batches.

    ``rename_limit`` and ``max_blob_size`` (the settings of the same names) bound what git
    does per commit; what they leave out is flagged on the rows.
    """
    if not shas:
        return 0
    repository = pygit2.Repository(str(git_dir))
    odb = repository.odb
    boundary = shallow_commits(repository)
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
    args = log_args(rename_limit, max_blob_size)
    with git.stream_git(args, git_dir=git_dir, stdin_data=revisions) as output:
        for entry in parse_log(output):
            commit = parse_commit_object(odb.read(entry.sha)[1])
            flags = _flag_file_changes(odb, entry, max_blob_size, rename_limit)
            if entry.sha in boundary:
                flags.add("shallow_boundary")
            commit_batch.append(commit_row(repo_id, entry, commit, flags))
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
    flags: str | None = None
    """The repository's flags once the run is finished."""


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
        boundary = shallow_commits(pygit2.Repository(str(git_dir)))
    flags = join_flags(["shallow"] if boundary else [])
    # a shallow clone can deepen without its head moving: it is compared every time
    unchanged = record.head == head and record.flags == flags and not boundary
    if record.status == "ok" and unchanged:
        return IngestPlan(record.id, head, record.head, [], 0, True, flags)
    if record.status != "ok":
        store.delete_orphan_file_changes(record.id)  # left by a run that died mid-batch
    # a shallow repository's flag is stored at once: it says that boundary commits (diffed
    # against nothing) may be stored, and only a finished run on a deeper clone clears it
    was_shallow = record.flags is not None and "shallow" in record.flags.split()
    store.mark_ingesting(record.id, flags=flags if boundary else None)
    with recording_failure(store, record.id):
        reachable = git.rev_list(git_dir, head) if head else []
        stored = store.stored_shas(record.id)
        stale: set[str] = set()
        if was_shallow:  # boundary commits that have their parents now: their diff is wrong
            stale = store.flagged_shas(record.id, "shallow_boundary") - boundary
        missing = [sha for sha in reachable if sha not in stored or sha in stale]
        gone = stored.difference(reachable) | (stale & stored)
        removed = store.delete_commits(record.id, gone) if gone else 0
    return IngestPlan(record.id, head, record.head, missing, removed, False, flags)


def finish_ingestion(store: Store, plan: IngestPlan, added: int) -> None:
    """Advance the watermark: every commit reachable from the planned head is stored."""
    with recording_failure(store, plan.repo_id):
        store.refresh_history()
        # a new head counts as a change even when this run wrote nothing: a run killed
        # after its last batch (before the watermark) left the rows for this one
        changed = bool(added or plan.removed) or plan.head != plan.previous_head
        store.advance_watermark(plan.repo_id, head=plan.head, changed=changed, flags=plan.flags)


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
                batch_size=settings.batch_size, rename_limit=settings.rename_limit,
                max_blob_size=settings.max_blob_size, progress=progress,
            )  # fmt: skip
        finish_ingestion(store, plan, added)
    seconds = time.perf_counter() - started
    return IngestResult(record.id, plan.head, added, plan.removed, False, seconds)
