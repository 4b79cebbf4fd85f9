"""Every statement the CrateDB backend sends is CrateDB SQL, and the Store is correct on CrateDB.

No CrateDB server runs here, so the real code paths (registry, ingestion, Store, SQLAlchemy,
sqlalchemy-cratedb, crate-python) talk to ``tests/cratedb_fake.py``, a stand-in for a CrateDB
node's HTTP endpoint that records each request and keeps just enough state to answer the reads.
Every recorded statement is then checked, exactly as sent, with cratedb-sqlparse (CrateDB's own
grammar), and its shape is checked against what CrateDB requires. The same history is ingested
into SQLite alongside, and the two stores must hold the same rows.

The live suite (conftest's ``db_url`` with ``REPOMETER_TEST_CRATEDB_URL``) runs the other tests
against a real server where one exists.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from antlr4 import CommonTokenStream
from antlr4.error.ErrorListener import ErrorListener
from cratedb_fake import FakeCrateDB, Request
from cratedb_sqlparse import sqlparse
from cratedb_sqlparse.generated_parser.SqlBaseLexer import SqlBaseLexer
from cratedb_sqlparse.generated_parser.SqlBaseParser import SqlBaseParser
from cratedb_sqlparse.parser import CaseInsensitiveStream

from repometer.errors import StorageError
from repometer.ingest import IngestResult, ingest_repository
from repometer.registry import add_repository
from repometer.settings import Settings
from repometer.storage import Store, open_store
from repometer.storage.backends import CRATEDB, create_engine
from repometer.storage.schema import metadata
from repometer.storage.store import HistoryFilter, RepositoryRecord, ResultRecord

BATCH_SIZE = 3

#: What ingestion and repository bookkeeping must keep exercising on CrateDB.
REQUIRED_KINDS = {
    "CREATE TABLE",
    "INSERT ON CONFLICT DO UPDATE",
    "INSERT ON CONFLICT DO NOTHING",
    "SELECT",
    "UPDATE",
    "DELETE",
    "REFRESH TABLE",
}


class NotCrateSQL(AssertionError):
    """CrateDB's grammar rejects the statement."""


class _Errors(ErrorListener):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def syntaxError(self, recognizer, offendingSymbol, line, column, msg, e) -> None:
        self.messages.append(f"{line}:{column} {msg}")


def _grammar_errors(sql: str) -> list[str]:
    """Every error CrateDB's grammar (as shipped in cratedb-sqlparse) reports, lexer included.

    ``sqlparse(sql, raise_exception=True)`` alone is not enough: cratedb-sqlparse 0.0.17 drops
    lexer errors, and crashes with AttributeError instead of raising ParsingException when
    the parser recovers by inserting or skipping a token (``REFRESH commits``).
    """
    errors = _Errors()
    lexer = SqlBaseLexer(CaseInsensitiveStream(sql))
    parser = SqlBaseParser(CommonTokenStream(lexer))
    for recognizer in (lexer, parser):
        recognizer.removeErrorListeners()
        recognizer.addErrorListener(errors)
    parser.statements()
    return errors.messages


def _parse(sql: str):
    """The one statement in ``sql`` as CrateDB's grammar reads it; NotCrateSQL if it can't."""
    if errors := _grammar_errors(sql):
        raise NotCrateSQL(f"{sql!r}: {'; '.join(errors)}")
    statements = sqlparse(sql, raise_exception=True)
    assert len(statements) == 1, f"expected one statement in {sql!r}"
    return statements[0]


def _flat(sql: str) -> str:
    return " ".join(sql.split())


def _kind(sql: str) -> str:
    kind = _parse(sql).type
    text = _flat(sql)
    if kind == "INSERT":
        conflict = re.search(r" ON CONFLICT \([^)]*\) DO (UPDATE|NOTHING)", text)
        return f"INSERT ON CONFLICT DO {conflict[1]}" if conflict else "INSERT"
    if kind in ("CREATE", "DROP", "REFRESH"):
        return " ".join(text.split()[:2])
    return kind


def _rows_sent(request: Request) -> int:
    return len(request.bulk_args) if request.bulk_args is not None else 1


def _upserts(requests: list[Request], table: str) -> list[Request]:
    return [r for r in requests if _flat(r.stmt).startswith(f"INSERT INTO {table} (")]


def _crate_store(node: FakeCrateDB, backend=CRATEDB) -> Store:
    """A Store on the fake node, built as ``open_store`` builds one for a ``crate://`` URL."""
    store = Store(create_engine("crate://", creator=node.connection), backend)
    store.create_schema()
    return store


def _sqlite_rows(store: Store, table: sa.Table) -> list[dict]:
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(*table.primary_key)).mappings().all()
    return [dict(row) for row in rows]


def _build_history(repo) -> None:
    """Eight commits by two authors: text, binary, a rename, a deletion, a merge."""
    repo.write("README", "hello\n")
    repo.write("src/app.py", "".join(f"line {i}\n" for i in range(20)))
    repo.write("logo.png", b"\x89PNG\x00\x01\x02\x03")
    repo.commit("initial", date="2024-01-01T09:00:00+0100")
    repo.write("src/app.py", "".join(f"line {i}\n" for i in range(5, 30)))
    repo.commit(
        "tweak", date="2024-01-02T23:30:00-0500",
        GIT_AUTHOR_NAME="Bob", GIT_AUTHOR_EMAIL="bob@example.com",
    )  # fmt: skip
    repo.git("mv", "README", "README.md")
    repo.commit("rename", date="2024-01-03T10:00:00+0000")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("src/feature.py", "x = 1\ny = 2\n")
    repo.commit("feature", date="2024-01-04T10:00:00+0000")
    repo.git("checkout", "-q", "main")
    repo.write("docs/guide.md", "# Guide\n")
    repo.commit("docs", date="2024-01-05T10:00:00+0000")
    date = {"GIT_AUTHOR_DATE": "2024-01-06T10:00:00+0000"}
    repo.git(
        "merge", "-q", "--no-ff", "-m", "merge feature", "feature",
        env={**date, "GIT_COMMITTER_DATE": date["GIT_AUTHOR_DATE"]},
    )  # fmt: skip
    repo.git("rm", "-q", "logo.png")
    repo.commit("drop logo", date="2024-01-07T10:00:00+0000")
    repo.write("CHANGES", "1.0\n")
    repo.commit("changes", date="2024-01-08T10:00:00+0000")


@dataclass
class Scenario:
    node: FakeCrateDB
    store: Store
    reference: Store  # SQLite, fed the same history at the same points
    repo: Any  # conftest's GitRepo
    record: RepositoryRecord
    first: IngestResult
    second: IngestResult
    phases: dict[str, list[Request]]
    ddl_warnings: list[str]
    file_rows_after_first_ingest: int


@pytest.fixture
def node() -> Iterator[FakeCrateDB]:
    """A fake CrateDB node; whatever a test sends it must parse with CrateDB's grammar."""
    node = FakeCrateDB()
    yield node
    for sql in set(node.statements):
        _parse(sql)


@pytest.fixture
def scenario(node: FakeCrateDB, make_repo, tmp_path: Path) -> Iterator[Scenario]:
    """Register, ingest, force-push, ingest again, and touch every bookkeeping path on CrateDB."""
    phases: dict[str, list[Request]] = {}
    mark = 0

    def phase(name: str) -> None:
        nonlocal mark
        phases[name] = node.requests[mark:]
        mark = len(node.requests)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = open_store("crate://", creator=node.connection)
    phase("create_schema")
    reference = open_store(f"sqlite:///{tmp_path / 'reference.db'}")
    settings = Settings(home=tmp_path / "home", db_url="crate://", batch_size=BATCH_SIZE)

    repo = make_repo("project")
    _build_history(repo)
    record, new = add_repository(store, settings, str(repo.path))
    assert new
    assert add_repository(store, settings, str(repo.path)) == (record, False)
    add_repository(reference, settings, str(repo.path))
    phase("register")

    first = ingest_repository(store, record, settings, fetch=False)
    phase("first ingest")
    file_rows = len(node.tables["file_changes"].rows)
    assert ingest_repository(store, record, settings, fetch=False).up_to_date
    phase("up-to-date ingest")
    ingest_repository(reference, record, settings, fetch=False)

    repo.git("reset", "-q", "--hard", "HEAD~2")  # a force-push drops two commits
    repo.write("CHANGES", "1.0.1\n")
    repo.commit("changes, again", date="2024-01-09T10:00:00+0000")
    second = ingest_repository(store, record, settings, fetch=False)
    phase("second ingest")
    ingest_repository(reference, record, settings, fetch=False)

    yield Scenario(
        node, store, reference, repo, record, first, second, phases,
        [str(w.message) for w in caught], file_rows,
    )  # fmt: skip
    store.engine.dispose()
    reference.engine.dispose()


def _exercise_bookkeeping(s: Scenario) -> None:
    """The Store calls that ingestion alone does not make, each checked on the way."""
    store, repo_id = s.store, s.record.id
    assert store.totals(repo_id) == s.reference.totals(repo_id)
    assert [r.id for r in store.list_repositories()] == [repo_id]

    orphan = {**s.node.table_rows("file_changes")[0], "sha": "0" * 40}
    store.write_history([], [orphan])  # as a run killed between file rows and commit rows
    assert store.delete_orphan_file_changes(repo_id) == 1
    assert store.delete_orphan_file_changes(repo_id) == 0

    store.mark_failed(repo_id, "boom")
    failed = store.get_repository(s.record.name)  # by name: a search, so it needs the refresh
    assert (failed.status, failed.error) == ("failed", "boom")
    store.set_ref(repo_id, "main")
    again = store.get_repository(s.record.url)
    assert (again.ref, again.status) == ("main", "new")


def test_ingestion_on_cratedb_stores_what_sqlite_stores(scenario: Scenario) -> None:
    s = scenario
    assert s.store.backend is CRATEDB
    assert (s.first.added, s.first.removed) == (8, 0)
    assert (s.second.added, s.second.removed) == (1, 2)

    reachable = s.repo.git("rev-list", "HEAD").split()
    totals = s.store.totals(s.record.id)
    assert totals.commits == len(reachable) == 7
    assert totals.merges == 1
    assert totals.authors == 2
    assert totals == s.reference.totals(s.record.id)
    for table in (metadata.tables["commits"], metadata.tables["file_changes"]):
        assert s.node.table_rows(table.name) == _sqlite_rows(s.reference, table), table.name

    record = s.store.get_repository(s.record.id)
    assert (record.status, record.head, record.generation) == ("ok", reachable[0], 2)
    assert record.last_ingested is not None and record.last_ingested.tzinfo is not None
    _exercise_bookkeeping(s)


def test_every_statement_sent_to_cratedb_parses_with_cratedb_grammar(scenario: Scenario) -> None:
    _exercise_bookkeeping(scenario)
    statements = sorted(set(scenario.node.statements))
    kinds = {_kind(sql) for sql in statements}  # _kind parses each one, raising on bad syntax
    missing = REQUIRED_KINDS - kinds
    assert not missing, f"paths no longer exercised: {sorted(missing)}"


def test_placeholders_are_sent_as_cratedb_parameters(scenario: Scenario) -> None:
    """crate-python turns SQLAlchemy's %(name)s into $n; nothing pyformat reaches the server."""
    for request in scenario.node.requests:
        assert "%(" not in request.stmt and "%s" not in request.stmt, request.stmt
        numbers = {int(n) for n in re.findall(r"\$(\d+)", request.stmt)}
        for args in request.bulk_args or [request.args or []]:
            assert numbers <= set(range(1, len(args) + 1)), request
            assert request.stmt.count("?") in (0, len(args)), request


def test_ddl_has_cratedb_shape(scenario: Scenario) -> None:
    requests = scenario.phases["create_schema"]
    creates = {}
    for request in requests:
        text = _flat(request.stmt)
        assert not text.upper().startswith("CREATE INDEX"), text
        if match := re.match(r"CREATE TABLE (\w+) ", text):
            creates[match[1]] = text
    assert set(creates) == set(metadata.tables)
    for name, ddl in creates.items():
        table = metadata.tables[name]
        assert table.primary_key, f"{name} has no primary key"
        assert table.autoincrement_column is None, name
        key = ", ".join(c.name for c in table.primary_key)
        assert f"PRIMARY KEY ({key})" in ddl, ddl
        forbidden = r"\b(SERIAL|BIGSERIAL|AUTO_?INCREMENT|IDENTITY|UNIQUE|REFERENCES|FOREIGN KEY)\b"
        assert not re.search(forbidden, ddl, re.IGNORECASE), ddl
        clustered = table.kwargs.get("crate_clustered_by")
        if clustered:
            assert ddl.endswith(f") CLUSTERED BY ({clustered})"), ddl
    for name in ("commits", "file_changes"):
        assert creates[name].endswith(") CLUSTERED BY (repo_id)"), creates[name]
    dropped = [w for w in scenario.ddl_warnings if "CrateDB does not support" in w]
    assert not dropped, dropped  # the dialect silently drops UNIQUE, FOREIGN KEY and indexes


def test_upserts_target_the_primary_key(scenario: Scenario) -> None:
    _exercise_bookkeeping(scenario)
    upsert = re.compile(
        r"INSERT INTO (\w+) \(([^)]*)\) VALUES \(([^)]*)\) "
        r"ON CONFLICT \(([^)]*)\) DO (?:NOTHING|UPDATE SET (.*))"
    )
    seen = set()
    for sql in set(scenario.node.statements):
        text = _flat(sql)
        if not text.startswith("INSERT"):
            continue
        match = upsert.fullmatch(text)
        assert match, f"not a single-row-template upsert: {text}"
        name, columns, _values, target, assignments = match.groups()
        table = metadata.tables[name]
        key = [c.name for c in table.primary_key]
        assert target.split(", ") == key, text
        if assignments is not None:
            others = [c for c in columns.split(", ") if c not in key]
            assert assignments.split(", ") == [f"{c} = excluded.{c}" for c in others], text
        seen.add(name)
    assert {"repositories", "commits", "file_changes", "repometer_schema"} <= seen


def test_history_goes_in_bulk_requests(scenario: Scenario) -> None:
    """One request per batch and table, its rows as CrateDB bulk_args (not one per row)."""
    first = scenario.phases["first ingest"]
    commits = _upserts(first, "commits")
    assert [_rows_sent(r) for r in commits] == [3, 3, 2]  # 8 commits, batches of 3
    files = _upserts(first, "file_changes")
    assert len(files) == 3
    assert sum(_rows_sent(r) for r in files) == scenario.file_rows_after_first_ingest
    for request in commits + files:
        assert request.bulk_args is not None and request.args is None, request.stmt
        assert _flat(request.stmt).count(" VALUES (") == 1 and "), (" not in request.stmt
    assert [_rows_sent(r) for r in _upserts(scenario.phases["second ingest"], "commits")] == [1]


def _same_frame(crate: pd.DataFrame, sqlite: pd.DataFrame) -> None:
    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sort_values(list(frame.columns)).reset_index(drop=True)

    pd.testing.assert_frame_equal(ordered(crate), ordered(sqlite), check_dtype=False)


def test_metric_reads_and_result_cache_on_cratedb(scenario: Scenario) -> None:
    """The Store's metric inputs (filters, a join, GROUP BY) and its results cache."""
    s, repo_id = scenario, scenario.record.id
    mark = len(s.node.requests)
    for history in (
        HistoryFilter(),
        HistoryFilter(since="2024-01-02", until="2024-01-06", exclude_bots=True, merges=False),
    ):
        for read, arguments in (
            (Store.read_commits, (["sha", "author_day", "lines_added"],)),
            (Store.read_file_changes, (["sha", "path", "lines_added", "author_day"],)),
        ):
            _same_frame(
                read(s.store, repo_id, *arguments, history),
                read(s.reference, repo_id, *arguments, history),
            )
        aggregate = {"sums": ["lines_added"], "count_distinct": "mailmap_email"}
        _same_frame(
            s.store.aggregate_commits(repo_id, ["author_day"], history, **aggregate),
            s.reference.aggregate_commits(repo_id, ["author_day"], history, **aggregate),
        )

    computed_at = datetime(2024, 2, 1, 12, 30, 0, 123000, tzinfo=UTC)  # CrateDB keeps ms
    result = ResultRecord(
        repo_id, "churn", 1, "{}", "ok", None, s.record.head, 2, computed_at, 0.25,
        [{"month": "2024-01", "lines": 42}],
    )  # fmt: skip
    s.store.put_result(result)
    assert s.store.get_result(repo_id, "churn", 1, "{}") == result
    assert s.store.get_result(repo_id, "churn", 2, "{}") is None
    assert s.store.list_results(repo_id) == [dataclasses.replace(result, rows=None)]

    sent = {r.stmt for r in s.node.requests[mark:]}
    kinds = {_kind(sql) for sql in sent}  # parses each one
    assert {"SELECT", "INSERT ON CONFLICT DO UPDATE", "REFRESH TABLE"} <= kinds
    assert any(" JOIN " in sql for sql in sent) and any(" GROUP BY " in sql for sql in sent)


def test_large_batches_are_split_into_bulk_requests_of_bounded_size(node: FakeCrateDB) -> None:
    store = _crate_store(node)
    rows = [
        {
            "repo_id": "r",
            "sha": f"{i // 10:040x}",
            "seq": i % 10,
            "path": f"f{i}",
            "old_path": None,
            "change_type": "A",
            "lines_added": 1,
            "lines_deleted": 0,
            "is_binary": False,
        }  # fmt: skip
        for i in range(2500)
    ]
    mark = len(node.requests)
    store.write_history([], rows)
    sent = _upserts(node.requests[mark:], "file_changes")
    assert [len(r.bulk_args or []) for r in sent] == [1000, 1000, 500]
    assert CRATEDB.max_rows_per_statement == 1000
    assert len(node.tables["file_changes"].rows) == 2500


def test_rows_cratedb_refuses_in_a_bulk_request_are_an_error(node: FakeCrateDB) -> None:
    """CrateDB answers a refused bulk row with rowcount -2 and no error; the Store must raise."""
    store = _crate_store(node)
    good = {
        "repo_id": "r", "sha": "a" * 40, "seq": 0, "path": "f", "old_path": None,
        "change_type": "A", "lines_added": 1, "lines_deleted": 0, "is_binary": False,
    }  # fmt: skip
    bad = {**good, "seq": 1, "path": None}  # NOT NULL
    with pytest.raises(StorageError, match="refused 1 of 2 file_changes rows"):
        store.write_history([], [good, bad])


def test_without_refresh_cratedb_reads_miss_recent_writes(
    node: FakeCrateDB, make_repo, tmp_path: Path
) -> None:
    """The fake is as eventually consistent as CrateDB, so a missing REFRESH shows up here."""
    repo = make_repo("project")
    _build_history(repo)
    settings = Settings(home=tmp_path / "home", db_url="crate://", batch_size=BATCH_SIZE)
    store = _crate_store(node, dataclasses.replace(CRATEDB, refresh_after_write=False))
    record, _ = add_repository(store, settings, str(repo.path))
    assert ingest_repository(store, record, settings, fetch=False).added == 8
    assert store.totals(record.id).commits == 0  # the search has not seen the writes
    assert store.get_repository(record.id).status == "ok"  # a primary-key get has
    node.respond("REFRESH TABLE commits", None, None)
    assert store.totals(record.id).commits == 8


def test_fake_answers_searches_from_the_last_refresh(node: FakeCrateDB) -> None:
    engine = sa.create_engine("crate://", creator=node.connection)
    search = "SELECT t.id FROM t WHERE t.v = ?"
    get = "SELECT t.id FROM t WHERE t.id = ?"
    with engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (id STRING NOT NULL, v STRING, PRIMARY KEY (id))")
        conn.exec_driver_sql("INSERT INTO t (id, v) VALUES (?, ?)", ("a", "x"))
        assert conn.exec_driver_sql(search, ("x",)).all() == []
        assert conn.exec_driver_sql(get, ("a",)).all() == [("a",)]
        conn.exec_driver_sql("REFRESH TABLE t")
        assert conn.exec_driver_sql(search, ("x",)).all() == [("a",)]
        with pytest.raises(sa.exc.ProgrammingError, match="Cannot find data type: serial"):
            conn.exec_driver_sql("CREATE TABLE s (id SERIAL NOT NULL, PRIMARY KEY (id))")
    engine.dispose()


def test_live_suite_schema_reset_is_valid_cratedb_sql(node: FakeCrateDB) -> None:
    """conftest's ``_reset_schema`` drops the tables with a plain engine and ``drop_all``."""
    _crate_store(node).engine.dispose()
    engine = sa.create_engine("crate://", creator=node.connection)
    mark = len(node.requests)
    metadata.drop_all(engine)
    engine.dispose()
    drops = [_flat(r.stmt) for r in node.requests[mark:] if _kind(r.stmt) == "DROP TABLE"]
    assert sorted(d.split()[2] for d in drops) == sorted(metadata.tables)
    assert node.tables == {}
    _crate_store(node).engine.dispose()  # and open_store creates them again
    assert set(node.tables) == set(metadata.tables)


@pytest.mark.parametrize(
    ("valid", "broken"),
    [
        (
            "SELECT commits.sha FROM commits WHERE commits.repo_id = $1",
            "SELECT commits.sha FROM commits WHERE",
        ),
        (
            "INSERT INTO t (id, v) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
            "INSERT INTO t (id, v) VALUES ($1, $2) ON CONFLICT ON CONSTRAINT t_pkey DO NOTHING",
        ),
        (
            "CREATE TABLE t (id STRING NOT NULL, PRIMARY KEY (id)) CLUSTERED BY (id)",
            "CREATE TABLE t (id STRING NOT NULL, PRIMARY KEY (id) CLUSTERED BY (id)",
        ),
        ("REFRESH TABLE commits", "REFRESH commits"),
        (
            "UPDATE repositories SET status = $1 WHERE repositories.id = $2",
            "UPDATE repositories SET status = $1 WHERE repositories.id = $2 FOR UPDATE",
        ),
    ],
)
def test_the_validator_rejects_syntax_errors(valid: str, broken: str) -> None:
    _parse(valid)
    with pytest.raises(NotCrateSQL):
        _parse(broken)
    with pytest.raises(Exception):  # noqa: B017 - ParsingException, or AttributeError (see above)
        sqlparse(broken, raise_exception=True)
