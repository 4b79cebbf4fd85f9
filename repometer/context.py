"""``StoreContext``: the ``metrics.MetricContext`` over the store and the repository's objects."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from functools import cached_property, lru_cache, partial
from pathlib import Path
from typing import Any

import pandas as pd
import pygit2

from metrics.context import RepositoryInfo, Tag, TreeEntry
from repometer.settings import DEFAULT_MAX_BLOB_SIZE
from repometer.storage import RepositoryRecord, Store
from repometer.storage.store import HistoryFilter

#: Below this many files, starting worker processes costs more than it saves.
_PARALLEL_THRESHOLD = 400

_FILE_MODES = (pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.BLOB_EXECUTABLE)

#: Columns read once per context and shared by every metric (free text such as messages is
#: read on demand only).
_SHARED_COLUMNS = {
    "commits": (
        "sha", "is_merge", "is_bot", "author_name", "author_email", "author_time",
        "author_offset", "committer_time", "committer_offset", "mailmap_name", "mailmap_email",
        "email_domain", "author_day", "author_week", "author_month", "author_local_hour",
        "author_local_weekday", "files_changed", "lines_added", "lines_deleted",
    ),
    "file_changes": (
        "sha", "seq", "path", "old_path", "change_type", "lines_added", "lines_deleted",
        "is_binary", "is_merge", "is_bot", "mailmap_name", "mailmap_email", "author_day",
        "author_week", "author_month", "author_time",
    ),
}  # fmt: skip

#: How a context spreads per-file work: ``fan_out(apply_batch, git_dir, fn, batches)`` returns
#: one result list per batch. The default uses a local process pool; a Dask worker hands
#: the batches to its cluster instead.
FanOut = Callable[..., list[list[Any]]]


@lru_cache(maxsize=4)
def _object_database(git_dir: str) -> pygit2.Odb:
    return pygit2.Repository(git_dir).odb


def _content(odb: pygit2.Odb, oid: str, max_blob_size: int) -> bytes | None:
    """A blob's content, or None when it is larger than ``max_blob_size`` (judged by its
    header, so such a blob is never loaded)."""
    if odb.read_header(oid)[1] > max_blob_size:
        return None
    return odb.read(oid)[1]


def _apply(
    odb: pygit2.Odb, fn: Callable[[str, bytes], Any], items: Sequence[tuple[str, str]], cap: int
) -> list[Any]:
    results = []
    for path, oid in items:
        content = _content(odb, oid, cap)
        results.append(None if content is None else fn(path, content))
    return results


def apply_batch(
    git_dir: str,
    fn: Callable[[str, bytes], Any],
    batch: Sequence[tuple[str, str]],
    max_blob_size: int = DEFAULT_MAX_BLOB_SIZE,
) -> list[Any]:
    """``fn(path, content)`` for each ``(path, blob id)``; runs in whichever process gets it.

    A blob larger than ``max_blob_size`` is not read: its result is None, as for a file
    ``fn`` has nothing to say about.
    """
    return _apply(_object_database(git_dir), fn, batch, max_blob_size)


class ProcessPoolFanOut:
    """Fans batches out over local worker processes, started on first use and then reused
    (starting them costs more than many a metric)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def __call__(
        self, apply: Callable[..., list[Any]], git_dir: str, fn: Callable[..., Any], batches: list
    ) -> list[list[Any]]:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        n = len(batches)
        return list(self._pool.map(apply, [git_dir] * n, [fn] * n, batches))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


class StoreContext:
    """One repository's ingested history (optionally a date range of it) and its head tree."""

    def __init__(
        self,
        store: Store,
        record: RepositoryRecord,
        git_dir: Path,
        *,
        since: str | None = None,
        until: str | None = None,
        workers: int | None = None,
        fan_out: FanOut | None = None,
        max_blob_size: int = DEFAULT_MAX_BLOB_SIZE,
    ) -> None:
        self.store = store
        self.git_dir = git_dir
        self.since = since or None
        self.until = until or None
        self.workers = workers or os.cpu_count() or 1
        self.fan_out = fan_out or ProcessPoolFanOut(self.workers)
        #: Blobs larger than this are never read (see ``read_blob`` and ``map_files``).
        self.max_blob_size = int(max_blob_size)
        self.repository = RepositoryInfo(record.id, record.name, record.head, record.generation)
        self._frames: dict[tuple[str, str | None, str | None], pd.DataFrame] = {}

    def close(self) -> None:
        """Stop the worker processes this context started, if any."""
        close = getattr(self.fan_out, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> StoreContext:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def scoped(self, since: str | None, until: str | None) -> StoreContext:
        """The same repository over another date range (sharing the head tree)."""
        if (since or None, until or None) == (self.since, self.until):
            return self
        other = object.__new__(StoreContext)
        other.__dict__.update(self.__dict__)
        other.since, other.until = since or None, until or None
        return other

    def _filter(self, *, exclude_bots: bool = False, merges: bool = True) -> HistoryFilter:
        return HistoryFilter(self.since, self.until, exclude_bots, merges)

    def _shared(self, table: str) -> pd.DataFrame:
        """The date range's rows of ``table`` with the shared columns, read once per context.

        A catalogue run asks for these tables many times with different columns; one read
        serves them all.
        """
        key = (table, self.since, self.until)
        if key not in self._frames:
            history = self._filter()
            columns = _SHARED_COLUMNS[table]
            read = self.store.read_commits if table == "commits" else self.store.read_file_changes
            self._frames[key] = read(self.repository.id, columns, history)
        return self._frames[key]

    def _select(
        self, table: str, columns: Sequence[str], exclude_bots: bool, merges: bool = True
    ) -> pd.DataFrame:
        if not set(columns) <= set(_SHARED_COLUMNS[table]):
            history = self._filter(exclude_bots=exclude_bots, merges=merges)
            read = self.store.read_commits if table == "commits" else self.store.read_file_changes
            return read(self.repository.id, columns, history)
        frame = self._shared(table)
        keep = pd.Series(True, index=frame.index)
        if exclude_bots:
            keep &= ~frame["is_bot"].astype(bool)
        if not merges:
            keep &= ~frame["is_merge"].astype(bool)
        return frame.loc[keep, list(columns)].reset_index(drop=True)

    def commits(
        self, columns: Sequence[str], *, exclude_bots: bool = False, merges: bool = True
    ) -> pd.DataFrame:
        return self._select("commits", columns, exclude_bots, merges)

    def file_changes(self, columns: Sequence[str], *, exclude_bots: bool = False) -> pd.DataFrame:
        return self._select("file_changes", columns, exclude_bots)

    def aggregate(
        self,
        group_by: Sequence[str],
        *,
        sums: Sequence[str] = (),
        count_distinct: str | None = None,
        exclude_bots: bool = False,
        merges: bool = True,
    ) -> pd.DataFrame:
        return self.store.aggregate_commits(
            self.repository.id,
            group_by,
            self._filter(exclude_bots=exclude_bots, merges=merges),
            sums=sums,
            count_distinct=count_distinct,
        )

    @cached_property
    def _repository(self) -> pygit2.Repository:
        return pygit2.Repository(str(self.git_dir))

    @cached_property
    def _tree(self) -> list[TreeEntry]:
        if self.repository.head is None:
            return []
        entries: list[TreeEntry] = []
        odb = self._repository.odb

        def walk(tree: pygit2.Tree, prefix: str) -> None:
            for item in tree:
                path = f"{prefix}{item.name}"
                if item.filemode == pygit2.enums.FileMode.TREE:
                    walk(self._repository[item.id], f"{path}/")
                elif item.filemode in _FILE_MODES:
                    entries.append(TreeEntry(path, str(item.id), odb.read_header(item.id)[1]))

        walk(self._repository[self.repository.head].peel(pygit2.Tree), "")
        return entries

    def tree(self) -> list[TreeEntry]:
        return list(self._tree)

    def read_blob(self, oid: str) -> bytes:
        """A blob's content; empty for one larger than ``max_blob_size``, which is not read."""
        content = _content(self._repository.odb, oid, self.max_blob_size)
        return b"" if content is None else content

    def tags(self) -> list[Tag]:
        """Tags of ingested commits, oldest first. Like every read of a scoped context, only
        those dated in the range (the UTC day of ``Tag.time``) when ``since``/``until`` is set."""
        repo = self._repository
        ingested = self.store.stored_shas(self.repository.id)
        tags = []
        for name in repo.references:
            if not name.startswith("refs/tags/"):
                continue
            tagged = repo[repo.references[name].target]
            try:
                commit = tagged.peel(pygit2.Commit)
            except (pygit2.GitError, ValueError, TypeError):
                continue  # a tag of a tree or blob
            if str(commit.id) not in ingested:
                continue
            time = commit.committer.time
            if isinstance(tagged, pygit2.Tag) and tagged.tagger is not None:
                time = tagged.tagger.time
            if (self.since or self.until) and not self._in_range(time):
                continue
            tags.append(Tag(name.removeprefix("refs/tags/"), str(commit.id), time))
        return sorted(tags, key=lambda t: (t.time if t.time is not None else 0, t.name))

    def _in_range(self, time: int | None) -> bool:
        """Whether an epoch time falls on a UTC day in ``since``..``until`` (inclusive)."""
        if time is None:
            return False
        try:
            day = datetime.fromtimestamp(time, UTC).strftime("%Y-%m-%d")
        except (OverflowError, OSError, ValueError):
            return False
        return (self.since is None or day >= self.since) and (
            self.until is None or day <= self.until
        )

    def map_files(self, fn: Callable[[str, bytes], Any], entries: Sequence[TreeEntry]) -> list[Any]:
        """``fn(path, content)`` per entry; None (and no read) for blobs above max_blob_size."""
        items = [(e.path, e.oid) for e in entries]
        if self.workers <= 1 or len(items) < _PARALLEL_THRESHOLD:
            return _apply(self._repository.odb, fn, items, self.max_blob_size)
        apply = partial(apply_batch, max_blob_size=self.max_blob_size)
        # strided batches balance large and small directories across the workers
        n = self.workers * 4
        batches = [items[i::n] for i in range(n)]
        results = self.fan_out(apply, str(self.git_dir), fn, batches)
        ordered: list[Any] = [None] * len(items)
        for start, batch_results in enumerate(results):
            ordered[start::n] = batch_results
        return ordered
