"""Every query repometer runs, written once in SQLAlchemy Core for all three backends.

Backends differ only in the ``Backend`` flags declared in ``repometer.storage.backends``;
this module is the one place that branches on them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from repometer.errors import StorageError, UnknownRepositoryError
from repometer.storage import schema
from repometer.storage.backends import Backend
from repometer.storage.schema import commits, file_changes, metric_results, repositories, runs

#: Keeps IN (...) lists and bulk requests well inside every backend's limits.
_CHUNK = 500

# The queries every API read runs, built once (building a statement costs more than running
# it from SQLAlchemy's compiled cache).
_REPOSITORY_BY = [
    sa.select(repositories).where(column == sa.bindparam("key"))
    for column in (repositories.c.id, repositories.c.name, repositories.c.url)
]
_RESULT_BY_KEY = sa.select(metric_results).where(
    *(metric_results.c[name] == sa.bindparam(name)
      for name in ("repo_id", "metric", "version", "parameters"))
)  # fmt: skip


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
    flags: str | None = None
    """``shallow``: ingested from a shallow clone (space-separated tokens, None when none)."""


@dataclass(frozen=True)
class ResultRecord:
    """A cached metric result: its key, what it was computed from, and its rows or error."""

    repo_id: str
    metric: str
    version: int
    parameters: str
    status: str
    error: str | None
    head: str | None
    generation: int
    computed_at: datetime
    seconds: float
    rows: list[dict[str, Any]] | None


@dataclass(frozen=True)
class RunRecord:
    """A flow run started on a user's behalf (by the API or the dashboard)."""

    id: str
    repo_id: str
    kind: str
    metrics: list[str] | None
    status: str
    error: str | None
    prefect_flow_run_id: str | None
    pid: int | None
    created_at: datetime
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")


@dataclass(frozen=True)
class HistoryFilter:
    """Which ingested history a metric reads: a date range (inclusive author days, UTC),
    bots or not, merges or not."""

    since: str | None = None
    until: str | None = None
    exclude_bots: bool = False
    merges: bool = True

    def clauses(self) -> list[sa.ColumnElement[bool]]:
        c = commits.c
        where = []
        if self.since:
            where.append(c.author_day >= self.since)
        if self.until:
            where.append(c.author_day <= self.until)
        if self.exclude_bots:
            where.append(c.is_bot == sa.false())
        if not self.merges:
            where.append(c.is_merge == sa.false())
        return where


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


def _refused_rows(result: sa.CursorResult) -> list[str]:
    """Why the database refused rows of a bulk write without failing it (only CrateDB does).

    CrateDB answers a bulk request with a row count per row, -2 and an ``error_message`` for a
    row it refused, and crate-python raises nothing; sqlalchemy-cratedb keeps those per-row
    results as ``context.last_result``. The other backends raise instead and keep no such list.
    """
    results = getattr(result.context, "last_result", None)
    if not isinstance(results, list):
        return []
    return [
        r.get("error_message") or "refused"
        for r in results
        if isinstance(r, dict) and (r.get("rowcount") == -2 or r.get("error_message"))
    ]


def add_column_ddl(column: sa.Column, dialect: sa.Dialect) -> str:
    """The statement that adds a nullable ``column`` to its existing table."""
    quote = dialect.identifier_preparer
    return (
        f"ALTER TABLE {quote.format_table(column.table)} "
        f"ADD COLUMN {quote.format_column(column)} {column.type.compile(dialect=dialect)}"
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _storage_error(exc: sa.exc.DBAPIError) -> StorageError:
    # drivers spread their messages over several lines; the user gets one
    return StorageError("database error: " + " ".join(str(exc.orig).split()))


def _utc(values: dict[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        # SQLite keeps no time zone; every timestamp repometer writes is UTC
        if values[key] is not None and values[key].tzinfo is None:
            values[key] = values[key].replace(tzinfo=UTC)
    return values


def _record(row: sa.Row) -> RepositoryRecord:
    return RepositoryRecord(
        **_utc(dict(row._mapping), "added_at", "ingest_started_at", "last_ingested")
    )


def _columns(table: sa.Table, names: Sequence[str]) -> list[sa.Column]:
    unknown = [n for n in names if n not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column {unknown[0]!r}")
    return [table.c[n] for n in names]


def _frame(result: sa.CursorResult, names: Sequence[str]) -> pd.DataFrame:
    # column by column: building from row objects costs pandas a type check per row
    rows = result.fetchall()
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    return pd.DataFrame({name: list(values) for name, values in zip(names, columns, strict=True)})


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
            raise _storage_error(exc) from exc

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.OperationalError as exc:
            raise _storage_error(exc) from exc

    def _refresh(self, *tables: sa.Table) -> None:
        """Make the latest writes visible to reads (CrateDB is eventually consistent)."""
        if self.backend.refresh_after_write:
            with self._read() as conn:
                for table in tables:
                    conn.execute(sa.text(f"REFRESH TABLE {table.name}"))

    def create_schema(self) -> None:
        """Create missing tables and upgrade older ones; idempotent, safe for concurrent callers."""
        try:
            with self._write() as conn:
                schema.metadata.create_all(conn, checkfirst=True)
        except (sa.exc.ProgrammingError, sa.exc.IntegrityError, StorageError):
            # another process created the same tables between our check and our CREATE
            try:
                with self._write() as conn:
                    schema.metadata.create_all(conn, checkfirst=True)
            except sa.exc.DBAPIError as exc:
                raise _storage_error(exc) from exc
        version = self.schema_version()
        if version is not None and version >= schema.SCHEMA_VERSION:
            return
        if version is not None:  # tables of an older version: only columns were added since
            for name, columns in schema.ADDED_COLUMNS.items():
                for column in columns:
                    self._add_column(schema.metadata.tables[name].c[column])
        with self._write() as conn:
            conn.execute(
                self.backend.upsert(schema.schema_info, ["name"]),
                [{"name": "metadata", "version": schema.SCHEMA_VERSION}],
            )

    def schema_version(self) -> int | None:
        """The version of the tables in the database (None before ``create_schema``)."""
        query = sa.select(schema.schema_info.c.version).where(
            schema.schema_info.c.name == "metadata"
        )
        with self._read() as conn:
            return conn.execute(query).scalar_one_or_none()

    def _has_column(self, column: sa.Column) -> bool:
        with self._read() as conn:
            present = sa.inspect(conn).get_columns(column.table.name)
        return any(c["name"] == column.name for c in present)

    def _add_column(self, column: sa.Column) -> None:
        """``ALTER TABLE ... ADD COLUMN`` unless the column is there (valid on all backends
        for a nullable column without a default)."""
        if self._has_column(column):
            return
        try:
            with self._write() as conn:
                conn.execute(sa.text(add_column_ddl(column, self.engine.dialect)))
        except StorageError:
            if not self._has_column(column):  # else another process added it first
                raise
        except sa.exc.DBAPIError as exc:
            if not self._has_column(column):
                raise _storage_error(exc) from exc

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
            for query in _REPOSITORY_BY:
                rows = conn.execute(query, {"key": key}).all()
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

    def mark_ingesting(self, repo_id: str, *, flags: str | None = None) -> None:
        """Mark a run as started; ``flags``, when given, replace the repository's at once
        (a run that dies keeps them; otherwise they change when the watermark advances)."""
        values: dict[str, Any] = {"status": "ingesting", "ingest_started_at": _now(), "error": None}
        if flags is not None:
            values["flags"] = flags
        self._update_repository(repo_id, **values)

    def mark_failed(self, repo_id: str, error: str) -> None:
        self._update_repository(repo_id, status="failed", error=error)

    def advance_watermark(
        self, repo_id: str, *, head: str | None, changed: bool, flags: str | None = None
    ) -> None:
        """Record that every commit reachable from ``head`` is stored (call after writes),
        and the repository's ``flags`` as of that ingestion."""
        record = self.get_repository(repo_id)
        self._update_repository(
            repo_id,
            head=head,
            generation=record.generation + 1 if changed else record.generation,
            status="ok",
            error=None,
            last_ingested=_now(),
            flags=flags,
        )

    # -- history ------------------------------------------------------------------------

    def stored_shas(self, repo_id: str) -> set[str]:
        self._refresh(commits)
        with self._read() as conn:
            result = conn.execute(sa.select(commits.c.sha).where(commits.c.repo_id == repo_id))
            return set(result.scalars())

    def flagged_shas(self, repo_id: str, flag: str) -> set[str]:
        """The stored commits carrying ``flag``."""
        self._refresh(commits)
        c = commits.c
        query = sa.select(c.sha, c.flags).where(c.repo_id == repo_id, c.flags.like(f"%{flag}%"))
        with self._read() as conn:
            return {sha for sha, flags in conn.execute(query) if flag in flags.split()}

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
                    result = conn.execute(self.backend.upsert(table, key), list(chunk))
                    if refused := _refused_rows(result):
                        raise StorageError(
                            f"the database refused {len(refused)} of {len(chunk)} {table.name} "
                            f"rows: {refused[0]}"
                        )

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
                    sa.select(file_changes.c.sha)
                    .where(file_changes.c.repo_id == repo_id)
                    .distinct()
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

    # -- metric inputs ------------------------------------------------------------------

    def read_commits(
        self, repo_id: str, columns: Sequence[str], history: HistoryFilter
    ) -> pd.DataFrame:
        selected = _columns(commits, columns)
        query = sa.select(*selected).where(commits.c.repo_id == repo_id, *history.clauses())
        with self._read() as conn:
            return _frame(conn.execute(query), columns)

    def read_file_changes(
        self, repo_id: str, columns: Sequence[str], history: HistoryFilter
    ) -> pd.DataFrame:
        """File rows with any commit columns joined in by name (file columns win on clashes)."""
        selected = [
            file_changes.c[n] if n in file_changes.c else _columns(commits, [n])[0] for n in columns
        ]
        query = (
            sa.select(*selected)
            .select_from(
                file_changes.join(
                    commits,
                    sa.and_(
                        commits.c.repo_id == file_changes.c.repo_id,
                        commits.c.sha == file_changes.c.sha,
                    ),
                )
            )
            .where(file_changes.c.repo_id == repo_id, *history.clauses())
        )
        with self._read() as conn:
            return _frame(conn.execute(query), columns)

    def aggregate_commits(
        self,
        repo_id: str,
        group_by: Sequence[str],
        history: HistoryFilter,
        *,
        sums: Sequence[str] = (),
        count_distinct: str | None = None,
    ) -> pd.DataFrame:
        """GROUP BY in the database: group columns, ``commits``, ``sum_<c>``, ``distinct``."""
        groups = _columns(commits, group_by)
        measures: list[sa.ColumnElement[Any]] = [sa.func.count().label("commits")]
        measures += [
            sa.func.coalesce(sa.func.sum(col), 0).label(f"sum_{col.name}")
            for col in _columns(commits, sums)
        ]
        if count_distinct:
            (col,) = _columns(commits, [count_distinct])
            measures.append(sa.func.count(sa.distinct(col)).label("distinct"))
        query = (
            sa.select(*groups, *measures)
            .where(commits.c.repo_id == repo_id, *history.clauses())
            .group_by(*groups)
        )
        names = [*group_by, *(m.name for m in measures)]
        with self._read() as conn:
            return _frame(conn.execute(query), names)

    # -- results cache ------------------------------------------------------------------

    def get_result(
        self, repo_id: str, metric: str, version: int, parameters: str
    ) -> ResultRecord | None:
        found = self.get_result_text(repo_id, metric, version, parameters)
        if found is None:
            return None
        result, text = found
        rows = json.loads(text) if text is not None else None
        return ResultRecord(**{**result.__dict__, "rows": rows})

    def get_result_text(
        self, repo_id: str, metric: str, version: int, parameters: str
    ) -> tuple[ResultRecord, str | None] | None:
        """A cached result without its rows, and the rows as their stored JSON text
        (unparsed: the API serves it as it is)."""
        key = {"repo_id": repo_id, "metric": metric, "version": version, "parameters": parameters}
        with self._read() as conn:
            row = conn.execute(_RESULT_BY_KEY, key).one_or_none()
        if row is None:
            return None
        values = _utc(dict(row._mapping), "computed_at")
        text = values.pop("rows")
        return ResultRecord(**values, rows=None), text

    def put_result(self, result: ResultRecord) -> None:
        row = {**result.__dict__, "rows": None if result.rows is None else json.dumps(result.rows)}
        key = [c.name for c in metric_results.primary_key]
        with self._write() as conn:
            conn.execute(self.backend.upsert(metric_results, key), [row])
        self._refresh(metric_results)

    def list_results(self, repo_id: str) -> list[ResultRecord]:
        """Every cached result of a repository, without rows (for summaries)."""
        r = metric_results.c
        columns = [c for c in metric_results.c if c.name != "rows"]
        with self._read() as conn:
            rows = conn.execute(sa.select(*columns).where(r.repo_id == repo_id)).all()
        return [ResultRecord(**_utc(dict(row._mapping), "computed_at"), rows=None) for row in rows]

    # -- runs -----------------------------------------------------------------------------

    def _run_record(self, row: sa.Row) -> RunRecord:
        values = _utc(dict(row._mapping), "created_at", "updated_at")
        values["metrics"] = json.loads(values["metrics"]) if values["metrics"] else None
        return RunRecord(**values)

    def put_run(self, run: RunRecord) -> None:
        row = {**run.__dict__, "metrics": json.dumps(run.metrics) if run.metrics else None}
        with self._write() as conn:
            conn.execute(self.backend.upsert(runs, ["id"]), [row])
        self._refresh(runs)

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).one_or_none()
        return self._run_record(row) if row is not None else None

    def active_runs(self, repo_id: str) -> list[RunRecord]:
        """Runs of a repository not finished yet, newest first."""
        query = (
            sa.select(runs)
            .where(runs.c.repo_id == repo_id, runs.c.status.in_(["scheduled", "running"]))
            .order_by(runs.c.created_at.desc())
        )
        with self._read() as conn:
            return [self._run_record(row) for row in conn.execute(query).all()]
