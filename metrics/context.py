"""What a metric reads: the ``MetricContext`` protocol that repometer implements.

A context is scoped to one repository, its ingested history and an optional date range
(``since``/``until``, inclusive ``YYYY-MM-DD`` author days in UTC) that applies to every read.
Tables come back as pandas DataFrames with only the columns asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd

#: Columns of the ``commits`` table a metric may ask for.
COMMIT_COLUMNS = (
    "sha", "parents", "is_merge", "is_bot", "author_name", "author_email", "author_time",
    "author_offset", "committer_name", "committer_email", "committer_time", "committer_offset",
    "mailmap_name", "mailmap_email", "email_domain", "author_day", "author_week",
    "author_month", "author_local_hour", "author_local_weekday", "files_changed",
    "lines_added", "lines_deleted", "message",
)  # fmt: skip

#: Columns of the ``file_changes`` table; any commit column can be joined in by name.
FILE_CHANGE_COLUMNS = (
    "sha",
    "seq",
    "path",
    "old_path",
    "change_type",
    "lines_added",
    "lines_deleted",
    "is_binary",
)


@dataclass(frozen=True)
class RepositoryInfo:
    id: str
    name: str
    head: str | None
    generation: int


@dataclass(frozen=True)
class TreeEntry:
    """A file (blob) in the tree at the ingested head."""

    path: str
    oid: str
    size: int


@dataclass(frozen=True)
class Tag:
    name: str
    sha: str
    """The commit the tag points to."""
    time: int | None
    """Tagger time of an annotated tag, else the commit's committer time (epoch seconds)."""


class MetricContext(Protocol):
    repository: RepositoryInfo
    since: str | None
    until: str | None

    def commits(
        self, columns: Sequence[str], *, exclude_bots: bool = False, merges: bool = True
    ) -> pd.DataFrame:
        """Rows of ``commits`` in the date range."""
        ...

    def file_changes(self, columns: Sequence[str], *, exclude_bots: bool = False) -> pd.DataFrame:
        """Rows of ``file_changes`` (commit columns joined in by name) in the date range."""
        ...

    def aggregate(
        self,
        group_by: Sequence[str],
        *,
        sums: Sequence[str] = (),
        count_distinct: str | None = None,
        exclude_bots: bool = False,
        merges: bool = True,
    ) -> pd.DataFrame:
        """``commits`` grouped in the database: the group columns, ``commits`` (the count),
        ``sum_<column>`` for each of ``sums`` and ``distinct`` when ``count_distinct`` is set."""
        ...

    def tree(self) -> list[TreeEntry]:
        """Every file at the ingested head (symlinks and submodules left out)."""
        ...

    def read_blob(self, oid: str) -> bytes: ...

    def tags(self) -> list[Tag]:
        """Tags whose target is a commit in the ingested history, oldest first."""
        ...

    def map_files(self, fn: Callable[[str, bytes], Any], entries: Sequence[TreeEntry]) -> list[Any]:
        """``[fn(path, content) for each entry]``, fanned out over worker processes.

        ``fn`` must be a module-level function (it is sent to the workers by reference).
        """
        ...
