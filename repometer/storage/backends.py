"""What differs between SQLite, PostgreSQL and CrateDB, declared in one place."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from repometer.errors import StorageError


@dataclass(frozen=True)
class Backend:
    name: str
    refresh_after_write: bool
    """CrateDB: reads see writes only after ``REFRESH TABLE``."""
    max_rows_per_statement: int
    """Rows per bulk request; CrateDB nodes reject very large bulk payloads."""

    def upsert(self, table: sa.Table, key: Sequence[str], *, update: bool = True) -> sa.Insert:
        """INSERT that overwrites (or, with ``update=False``, keeps) a row with the same key."""
        insert = sqlite_insert(table) if self.name == "sqlite" else pg_insert(table)
        if not update:
            return insert.on_conflict_do_nothing(index_elements=list(key))
        columns = {c.name: insert.excluded[c.name] for c in table.columns if c.name not in key}
        return insert.on_conflict_do_update(index_elements=list(key), set_=columns)


SQLITE = Backend("sqlite", refresh_after_write=False, max_rows_per_statement=5000)
POSTGRESQL = Backend("postgresql", refresh_after_write=False, max_rows_per_statement=5000)
CRATEDB = Backend("crate", refresh_after_write=True, max_rows_per_statement=1000)

_BACKENDS = {b.name: b for b in (SQLITE, POSTGRESQL, CRATEDB)}

#: seconds a PostgreSQL connection attempt may take (``?connect_timeout=`` in the URL wins)
PG_CONNECT_TIMEOUT = 10


def _enable_crate_on_conflict_do_nothing() -> None:
    # CrateDB accepts ON CONFLICT ... DO NOTHING, but sqlalchemy-cratedb's compiler lacks the
    # visitor; PostgreSQL's renders the same syntax (checked with cratedb-sqlparse in tests).
    from sqlalchemy.dialects.postgresql.base import PGCompiler
    from sqlalchemy_cratedb import dialect as crate_dialect

    compiler = crate_dialect.statement_compiler
    if not hasattr(compiler, "visit_on_conflict_do_nothing"):
        compiler.visit_on_conflict_do_nothing = PGCompiler.visit_on_conflict_do_nothing


def _configure_sqlite(engine: sa.Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy, not the driver, decide when transactions begin
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=60000")  # several writer processes take turns
        # readers never block the writer; switching a new file to WAL answers "locked" at
        # once (busy_timeout does not apply) while another process switches it too
        for attempt in range(200):
            try:
                cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == 199:
                    raise
                time.sleep(0.05)
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL-safe
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def on_begin(conn: sa.Connection) -> None:
        # A deferred transaction that later writes fails at once with "database is locked"
        # when another process writes; IMMEDIATE takes the write lock up front and waits.
        write = conn.get_execution_options().get("repometer_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def backend_for(url: str | sa.URL) -> Backend:
    name = sa.make_url(url).get_backend_name()
    try:
        return _BACKENDS[name]
    except KeyError:
        raise StorageError(
            f"unsupported database {name!r}: use sqlite://, postgresql:// or crate://"
        ) from None


def create_engine(url: str, **kwargs: Any) -> sa.Engine:
    """An engine for ``url`` with the backend's settings applied."""
    parsed = sa.make_url(url)
    backend = backend_for(parsed)
    if backend is SQLITE:
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    if backend is POSTGRESQL and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend is POSTGRESQL and "connect_timeout" not in parsed.query:
        # libpq waits for an unanswering server forever; a bounded wait turns a hung
        # database into an error (503 in the API) instead of a stalled request
        parsed = parsed.update_query_dict({"connect_timeout": str(PG_CONNECT_TIMEOUT)})
    if backend is CRATEDB:
        _enable_crate_on_conflict_do_nothing()
    return sa.create_engine(parsed, pool_pre_ping=True, **kwargs)
