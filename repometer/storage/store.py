"""Every query repometer runs, written once in SQLAlchemy Core for all three backends.

Backends differ only in the ``Backend`` flags declared in ``repometer.storage.backends``;
this module is the one place that branches on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from repometer.errors import StorageError, UnknownRepositoryError
from repometer.storage import schema
from repometer.storage.backends import Backend
from repometer.storage.schema import commits, file_changes, repositories

#: Keeps IN (...) lists and bulk requests well inside every backend's limits.
_CHUNK = 500


@dataclass(frozen=True)
class RepositoryRecord:
    id: str
    name: str
    url: str
    is_remote: bool
    git_dir: str
    ref: str
    head: str | None
    generation: int
    status: str
    error: str | None
    added_at: datetime
    ingest_started_at: datetime | None
    last_ingested: datetime | None


@dataclass(frozen=True)
class RepositoryTotals:
    commits: int
    merges: int
    authors: int
    lines_added: int
    lines_deleted: int


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now() -> datetime:
    return datetime.now(UTC)


def _record(row: sa.Row) -> RepositoryRecord:
    values = dict(row._mapping)
    for key in ("added_at", "ingest_started_at", "last_ingested"):
        # SQLite keeps no time zone; every timestamp repometer writes is UTC
        if values[key] is not None and values[key].tzinfo is None:
            values[key] = values[key].replace(tzinfo=UTC)
    return RepositoryRecord(**values)


class Store:
    """The metadata store behind one SQLAlchemy engine."""

    def __init__(self, engine: sa.Engine, backend: Backend) -> None:
        self.engine = engine
        self.backend = backend

    # -- plumbing -----------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction (a batch of auto-committed statements on CrateDB)."""
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(repometer_write=True)
                with conn.begin():
                    yield conn
        except sa.exc.OperationalError as exc:
            raise StorageError(f"database error: {exc.orig}") from exc

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise StorageError(f"database error: {exc.orig}") from exc

    def _refresh(self, *tables: sa.Table) -> None:
        """Make the latest writes visible to reads (CrateDB is eventually consistent)."""
        if self.backend.refresh_after_write:
            with self._read() as conn:
                for table in tables:
                    conn.execute(sa.text(f"REFRESH TABLE {table.name}"))

    def create_schema(self) -> None:
        """Create missing tables; idempotent, safe for concurrent callers."""
        try:
            schema.metadata.create_all(self.engine, checkfirst=True)
        except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
            # another process created the same tables between our check and our CREATE
            schema.metadata.create_all(self.engine, checkfirst=True)
        with self._write() as conn:
            conn.execute(
                self.backend.upsert(schema.schema_info, ["name"]),
                [{"name": "metadata", "version": schema.SCHEMA_VERSION}],
            )

    # -- repositories -------------------------------------------------------------------

    def add_repository(
        self, *, id: str, name: str, url: str, is_remote: bool, git_dir: str, ref: str
    ) -> tuple[RepositoryRecord, bool]:
        """Register a repository; return it and whether it was new."""
        existing = self.find_repository(id)
        if existing is not None:
            return existing, False
        row = {
            "id": id, "name": name, "url": url, "is_remote": is_remote, "git_dir": git_dir,
            "ref": ref, "head": None, "generation": 0, "status": "new", "error": None,
            "added_at": _now(), "ingest_started_at": None, "last_ingested": None,
        }  # fmt: skip
        with self._write() as conn:
            conn.execute(self.backend.upsert(repositories, ["id"], update=False), [row])
        self._refresh(repositories)
        return self.get_repository(id), True

    def find_repository(self, key: str) -> RepositoryRecord | None:
        """A repository by id, by name, or by the URL/path it was registered with."""
        with self._read() as conn:
            for column in (repositories.c.id, repositories.c.name, repositories.c.url):
                rows = conn.execute(sa.select(repositories).where(column == key)).all()
                if len(rows) == 1:
                    return _record(rows[0])
                if len(rows) > 1:
                    ids = ", ".join(sorted(r.id for r in rows))
                    raise UnknownRepositoryError(f"{key!r} is ambiguous: use one of the ids {ids}")
        return None

    def get_repository(self, key: str) -> RepositoryRecord:
        record = self.find_repository(key)
        if record is None:
            raise UnknownRepositoryError(f"unknown repository: {key}")
        return record

    def list_repositories(self) -> list[RepositoryRecord]:
        with self._read() as conn:
            rows = conn.execute(sa.select(repositories).order_by(repositories.c.name)).all()
        return [_record(row) for row in rows]

    def _update_repository(self, repo_id: str, **values: Any) -> None:
        with self._write() as conn:
            conn.execute(repositories.update().where(repositories.c.id == repo_id).values(**values))
        self._refresh(repositories)

    def set_ref(self, repo_id: str, ref: str) -> None:
        """Follow another ref; the next ingestion re-plans against what it reaches."""
        self._update_repository(repo_id, ref=ref, status="new")

    def mark_ingesting(self, repo_id: str) -> None:
        self._update_repository(repo_id, status="ingesting", ingest_started_at=_now(), error=None)

    def mark_failed(self, repo_id: str, error: str) -> None:
        self._update_repository(repo_id, status="failed", error=error)

    def advance_watermark(self, repo_id: str, *, head: str | None, changed: bool) -> None:
        """Record that every commit reachable from ``head`` is stored (call after writes)."""
        record = self.get_repository(repo_id)
        self._update_repository(
            repo_id,
            head=head,
            generation=record.generation + 1 if changed else record.generation,
            status="ok",
            error=None,
            last_ingested=_now(),
        )

    # -- history ------------------------------------------------------------------------

    def stored_shas(self, repo_id: str) -> set[str]:
        self._refresh(commits)
        with self._read() as conn:
            result = conn.execute(sa.select(commits.c.sha).where(commits.c.repo_id == repo_id))
            return set(result.scalars())

    def write_history(
        self, commit_rows: Sequence[dict[str, Any]], file_rows: Sequence[dict[str, Any]]
    ) -> None:
        """Store a batch of commits with their file changes.

        File rows go first: a commit row is the mark that its file rows are complete, which
        keeps a killed run resumable on backends without transactions.
        """
        with self._write() as conn:
            for table, rows in ((file_changes, file_rows), (commits, commit_rows)):
                key = [c.name for c in table.primary_key]
                for chunk in _chunks(rows, self.backend.max_rows_per_statement):
                    conn.execute(self.backend.upsert(table, key), list(chunk))

    def delete_commits(self, repo_id: str, shas: Iterable[str]) -> int:
        """Remove commits (and their file rows) that are no longer reachable."""
        shas = sorted(shas)
        with self._write() as conn:
            # commit rows first, so a half-done deletion leaves only orphan file rows,
            # which the next run clears
            for table in (commits, file_changes):
                for chunk in _chunks(shas):
                    conn.execute(
                        table.delete().where(table.c.repo_id == repo_id, table.c.sha.in_(chunk))
                    )
        return len(shas)

    def delete_orphan_file_changes(self, repo_id: str) -> int:
        """Remove file rows whose commit row was never written (a run killed mid-batch)."""
        self._refresh(file_changes, commits)
        with self._read() as conn:
            with_files = set(
                conn.execute(
                    sa.select(file_changes.c.sha).where(file_changes.c.repo_id == repo_id).distinct()
                ).scalars()
            )
        orphans = sorted(with_files - self.stored_shas(repo_id))
        with self._write() as conn:
            for chunk in _chunks(orphans):
                conn.execute(
                    file_changes.delete().where(
                        file_changes.c.repo_id == repo_id, file_changes.c.sha.in_(chunk)
                    )
                )
        return len(orphans)

    def refresh_history(self) -> None:
        self._refresh(commits, file_changes)

    def totals(self, repo_id: str) -> RepositoryTotals:
        """Counts over the stored history, as git itself would report them."""
        self._refresh(commits)
        c = commits.c
        query = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((c.is_merge, 1), else_=0)), 0),
            sa.func.count(sa.distinct(c.mailmap_email)),
            sa.func.coalesce(sa.func.sum(c.lines_added), 0),
            sa.func.coalesce(sa.func.sum(c.lines_deleted), 0),
        ).where(c.repo_id == repo_id)
        with self._read() as conn:
            row = conn.execute(query).one()
        return RepositoryTotals(*(int(v) for v in row))
