"""Odd content is flagged, not hidden: the ``flags`` columns and the limits behind them.

Every test builds real repositories with the git CLI (hand-written commit objects, shallow
clones, ``git fast-import``), ingests them into a real database (SQLite; PostgreSQL when
``REPOMETER_TEST_POSTGRES_URL`` is set) and compares what is stored with what git itself
says under the same limits: ``git log --numstat`` with ``core.bigFileThreshold`` and
``diff.renameLimit`` given on the command line, ``git cat-file -s`` for blob sizes, a full
clone for a shallow one. The oracle is ``test_ingest_groundtruth``'s.

Covered: a schema-version-1 database is upgraded in place; blobs above ``max_blob_size``
are neither line-counted nor read by content metrics; rename detection stops at
``rename_limit``, flagged exactly when git says it stopped; malformed identities and
encodings are flagged; a shallow clone's boundary commits are flagged and redone once the
clone is deepened; a commit of 100,000 files is stored whole.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
import sqlalchemy_cratedb
from conftest import GitRepo
from test_cratedb import _parse as parse_crate_sql
from test_ingest_groundtruth import (
    assert_matches_git,
    expected_commit,
    git_file_changes,
    lines,
    parse_numstat,
    stored_commit,
    stored_files_of,
    write_commit,
)
from test_ingest_groundtruth import ingest as register_and_ingest

from repometer.context import StoreContext
from repometer.ingest import ingest_repository
from repometer.registry import git_dir_of
from repometer.storage import Store
from repometer.storage.backends import create_engine
from repometer.storage.schema import ADDED_COLUMNS, SCHEMA_VERSION, file_changes, metadata
from repometer.storage.store import add_column_ddl

#: ``max_blob_size`` in these tests: small, so that a "big" file is a few hundred lines.
MAX_BLOB_SIZE = 1000


@pytest.fixture
def settings(settings):
    """conftest's settings with a small blob cap, and two workers (content metrics over at
    least 400 files then run in a process pool)."""
    return settings.model_copy(update={"max_blob_size": MAX_BLOB_SIZE, "workers": 2})


# -- helpers -----------------------------------------------------------------------------------


def with_config(repo: GitRepo, config: dict[str, str]) -> GitRepo:
    """The same repository, its git commands run as with ``git -c key=value`` for ``config``."""
    env = {"GIT_CONFIG_COUNT": str(len(config))}
    for i, (key, value) in enumerate(config.items()):
        env.update({f"GIT_CONFIG_KEY_{i}": key, f"GIT_CONFIG_VALUE_{i}": value})
    return GitRepo(repo.path, {**repo.env, **env})


def sized(n: int) -> bytes:
    """Text of exactly ``n`` bytes (two-byte lines, the last one maybe unterminated)."""
    return b"x\n" * (n // 2) + b"x" * (n % 2)


def file_flags(store: Store, repo_id: str, sha: str) -> dict[str, str | None]:
    """The ``flags`` of one commit's file rows, by path."""
    c = file_changes.c
    query = sa.select(c.path, c.flags).where(c.repo_id == repo_id, c.sha == sha)
    with store.engine.connect() as conn:
        return dict(conn.execute(query).all())


def commit_flags(store: Store, repo_id: str, shas: list[str]) -> list[str | None]:
    return [stored_commit(store, repo_id, sha)["flags"] for sha in shas]


def reingest(store: Store, repo_id: str, settings) -> None:
    ingest_repository(store, store.get_repository(repo_id), settings)


# -- schema version 2, upgraded in place -------------------------------------------------------


def v1_metadata() -> sa.MetaData:
    """The tables as schema version 1 had them: today's without ``ADDED_COLUMNS``."""
    v1 = sa.MetaData()
    for table in metadata.sorted_tables:
        added = ADDED_COLUMNS.get(table.name, ())
        columns = [
            sa.Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in table.columns
            if c.name not in added
        ]
        sa.Table(table.name, v1, *columns)
    return v1


def all_rows(engine: sa.Engine, tables: sa.MetaData) -> dict[str, list[dict]]:
    with engine.connect() as conn:
        return {
            t.name: [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(*t.primary_key))]
            for t in tables.sorted_tables
        }


def rewrite_as_v1(engine: sa.Engine) -> None:
    """Turn a version-2 database into the version-1 one with the same rows (minus flags)."""
    rows = all_rows(engine, metadata)
    metadata.drop_all(engine)
    v1 = v1_metadata()
    v1.create_all(engine)
    with engine.begin() as conn:
        for table in v1.sorted_tables:
            values = [{k: v for k, v in row.items() if k in table.c} for row in rows[table.name]]
            if values:
                conn.execute(table.insert(), values)
        info = v1.tables["repometer_schema"]
        conn.execute(info.update().values(version=1))


def column_names(engine: sa.Engine, table: str) -> list[str]:
    with engine.connect() as conn:
        return [c["name"] for c in sa.inspect(conn).get_columns(table)]


def has_flags(engine: sa.Engine) -> dict[str, bool]:
    return {name: "flags" in column_names(engine, name) for name in ADDED_COLUMNS}


@contextmanager
def other_store(settings, store: Store) -> Iterator[Store]:
    """A second Store on the same database, with its own engine (as another process has)."""
    other = Store(create_engine(settings.database_url), store.backend)
    try:
        yield other
    finally:
        other.engine.dispose()


def test_a_version_1_database_is_upgraded_in_place(make_repo, store, settings):
    repo = make_repo()
    for i in range(4):
        repo.write("f.txt", lines(i + 2))
        repo.commit(f"c{i}")
    repo_id, _ = register_and_ingest(store, settings, repo)
    before = all_rows(store.engine, metadata)
    assert before["commits"] and before["file_changes"] and before["repositories"]
    assert all(r["flags"] is None for rows in before.values() for r in rows if "flags" in r)
    rewrite_as_v1(store.engine)
    assert has_flags(store.engine) == dict.fromkeys(ADDED_COLUMNS, False)
    assert store.schema_version() == 1

    store.create_schema()
    assert has_flags(store.engine) == dict.fromkeys(ADDED_COLUMNS, True)
    assert store.schema_version() == SCHEMA_VERSION == 2
    assert all_rows(store.engine, metadata) == before  # every row kept, its flags NULL

    # again, by another Store: nothing to do, nothing changes
    with other_store(settings, store) as other:
        other.create_schema()
    assert store.schema_version() == 2
    assert column_names(store.engine, "commits").count("flags") == 1
    assert all_rows(store.engine, metadata) == before

    # the upgraded database takes flagged rows, and ingestion carries on where it was
    tree = repo.git("rev-parse", "HEAD^{tree}")
    far = write_commit(repo, tree=tree, parents=[repo.head()],
                       author="Far <far@example.org> 1700000000 +1500",
                       committer="C <c@example.org> 1700000000 +0000")  # fmt: skip
    repo.git("update-ref", "refs/heads/main", far)
    result = ingest_repository(store, store.get_repository(repo_id), settings)
    assert (result.added, result.removed) == (1, 0)
    assert assert_matches_git(store, repo_id, repo) == 5
    assert stored_commit(store, repo_id, far)["flags"] == "bad_offset"


def test_a_half_finished_upgrade_is_completed(store):
    """Columns added by a run that died before it wrote version 2 are not added twice."""
    rewrite_as_v1(store.engine)
    table = metadata.tables["commits"]
    with store.engine.begin() as conn:
        conn.execute(sa.text(add_column_ddl(table.c.flags, store.engine.dialect)))
    assert has_flags(store.engine) == {"repositories": False, "commits": True,
                                       "file_changes": False}  # fmt: skip
    store.create_schema()
    assert has_flags(store.engine) == dict.fromkeys(ADDED_COLUMNS, True)
    assert store.schema_version() == 2


def test_an_upgrade_that_loses_a_race_succeeds(store, settings):
    """Another process upgrades the database between this one's column check and its first
    ALTER TABLE: that ALTER fails, and the upgrade carries on. The order is forced: the other
    Store upgrades when the first one connects for its ALTER (before its transaction)."""
    rewrite_as_v1(store.engine)
    steps: list[str] = []
    with other_store(settings, store) as slow, other_store(settings, store) as fast:

        @sa.event.listens_for(slow.engine, "before_cursor_execute")
        def note(conn, cursor, statement: str, *args) -> None:
            if statement.startswith("SELECT") and "repometer_schema" in statement:
                steps.append("version read")
            elif statement.startswith("ALTER TABLE"):
                steps.append(statement)

        @sa.event.listens_for(slow.engine, "engine_connect")
        def overtake(conn: sa.Connection) -> None:
            if steps[:1] == ["version read"] and "overtaken" not in steps:
                steps.append("connect")
                if steps.count("connect") == 2:  # the column check's, then the ALTER's
                    steps.append("overtaken")
                    fast.create_schema()

        slow.create_schema()
    alter = add_column_ddl(metadata.tables["repositories"].c.flags, store.engine.dialect)
    # that ALTER failed (the column was there) and the other tables' were not tried
    assert steps == ["version read", "connect", "connect", "overtaken", alter]
    assert has_flags(store.engine) == dict.fromkeys(ADDED_COLUMNS, True)
    assert store.schema_version() == 2


def test_added_columns_are_cratedb_sql():
    """The statements ``create_schema`` sends CrateDB to upgrade a table, in its grammar."""
    dialect = sqlalchemy_cratedb.dialect()
    statements = [
        add_column_ddl(metadata.tables[name].c[column], dialect)
        for name, columns in ADDED_COLUMNS.items()
        for column in columns
    ]
    assert statements == [f"ALTER TABLE {name} ADD COLUMN flags STRING" for name in ADDED_COLUMNS]
    for sql in statements:
        assert parse_crate_sql(sql).type == "ALTER"


# -- blobs above max_blob_size -----------------------------------------------------------------


def blob_sizes(repo: GitRepo, sha: str, path: str) -> list[int]:
    """The sizes of ``path`` before and after commit ``sha`` (the sides that exist)."""
    sizes = []
    for rev in (f"{sha}^", sha):
        try:
            sizes.append(int(repo.git("cat-file", "-s", f"{rev}:{path}")))
        except AssertionError:  # absent on that side (or no parent)
            pass
    return sizes


def test_big_blobs_are_flagged_not_line_counted(make_repo, store, settings):
    repo = make_repo()
    repo.git("config", "core.bigFileThreshold", "1g")  # the repository's config must not win
    repo.write("small.txt", lines(10))
    repo.write("limit.txt", sized(MAX_BLOB_SIZE))  # at the cap: still counted
    repo.write("over.txt", sized(MAX_BLOB_SIZE + 1))
    repo.write("big.txt", lines(300))
    repo.write("big.bin", bytes(2 * MAX_BLOB_SIZE))  # binary either way, and big
    repo.write("limit.bin", bytes(MAX_BLOB_SIZE))  # binary, but not too large
    added = repo.commit("add")
    repo.write("small.txt", lines(12))
    repo.write("big.txt", lines(320))
    modified = repo.commit("modify")
    repo.write("small.txt", lines(200))  # grows past the cap
    grown = repo.commit("grow")
    (repo.path / "big.txt").unlink()
    repo.write("limit.txt", sized(MAX_BLOB_SIZE - 2))
    deleted = repo.commit("delete")
    repo.write("tiny.txt", "t\n")
    only_small = repo.commit("nothing big")
    repo_id, _ = register_and_ingest(store, settings, repo)

    capped = with_config(repo, {"core.bigFileThreshold": str(MAX_BLOB_SIZE)})
    for sha in (added, modified, grown, deleted, only_small):
        # exactly what git says with the same threshold...
        assert stored_files_of(store, repo_id, sha) == git_file_changes(capped, sha), sha
        flags = file_flags(store, repo_id, sha)
        for path, flag in flags.items():
            big = any(size > MAX_BLOB_SIZE for size in blob_sizes(repo, sha, path))
            assert flag == ("too_large" if big else None), (sha, path)
        expected = "large_files_skipped" if "too_large" in flags.values() else None
        assert stored_commit(store, repo_id, sha)["flags"] == expected, sha
    assert commit_flags(store, repo_id, [added, modified, grown, deleted, only_small]) == [
        "large_files_skipped", "large_files_skipped", "large_files_skipped",
        "large_files_skipped", None,
    ]  # fmt: skip

    # ...which is not what git says without it: the big text files have lines
    rows = {r["path"]: r for r in git_file_changes(repo, added)}
    assert (rows["big.txt"]["lines_added"], rows["over.txt"]["lines_added"]) == (300, 501)
    stored = {r["path"]: r for r in stored_files_of(store, repo_id, added)}
    assert {p: (r["is_binary"], r["lines_added"]) for p, r in stored.items()} == {
        "big.bin": (True, 0), "big.txt": (True, 0), "over.txt": (True, 0),
        "limit.bin": (True, 0), "limit.txt": (False, 500), "small.txt": (False, 10),
    }  # fmt: skip
    assert stored_commit(store, repo_id, added)["lines_added"] == 510
    assert file_flags(store, repo_id, grown) == {"small.txt": "too_large"}
    assert file_flags(store, repo_id, deleted) == {"big.txt": "too_large", "limit.txt": None}


def test_a_diff_attribute_of_a_local_repository_wins_over_the_cap_as_in_git(
    make_repo, store, settings
):
    """``* diff`` in a work tree's .gitattributes makes git diff every file as text, whatever
    its size. repometer reads a local repository as git does there (its attributes apply, see
    test_gitattributes_of_the_repository): the big file is counted, as git counts it. Mirrors
    are bare, and git reads no attributes in them."""
    repo = make_repo()
    repo.write(".gitattributes", "* diff\n")
    repo.write("big.txt", lines(300))
    sha = repo.commit("big text")
    repo_id, _ = register_and_ingest(store, settings, repo)
    capped = with_config(repo, {"core.bigFileThreshold": str(MAX_BLOB_SIZE)})
    assert stored_files_of(store, repo_id, sha) == git_file_changes(capped, sha)
    big = {r["path"]: r for r in stored_files_of(store, repo_id, sha)}["big.txt"]
    assert (big["is_binary"], big["lines_added"]) == (False, 300)
    assert file_flags(store, repo_id, sha) == {".gitattributes": None, "big.txt": None}


@pytest.mark.parametrize("small_files", [3, 400], ids=["in-process", "process-pool"])
def test_content_metrics_skip_big_blobs(make_repo, store, settings, compute, small_files):
    repo = make_repo()
    for i in range(small_files):
        repo.write(f"pkg/m{i:03d}.py", "x = 1\n")
    repo.write("limit.py", sized(MAX_BLOB_SIZE))  # 500 lines, counted
    repo.write("big.py", lines(300))  # over the cap: not read
    repo.write("notes.md", "# notes\n")
    repo.commit("code")
    repo_id, _ = register_and_ingest(store, settings, repo)
    record = store.get_repository(repo_id)
    rows = compute(record, "language_distribution")
    languages = {r["language"]: (r["files"], r["value"]) for r in rows}
    assert languages == {"Python": (small_files + 1, small_files + 500), "Markdown": (1, 1)}


def test_read_blob_returns_nothing_for_big_blobs(make_repo, store, settings):
    repo = make_repo()
    repo.write("limit.txt", sized(MAX_BLOB_SIZE))
    repo.write("big.txt", lines(300))
    repo.commit("blobs")
    repo_id, _ = register_and_ingest(store, settings, repo)
    record = store.get_repository(repo_id)
    git_dir = git_dir_of(record, settings)
    with StoreContext(store, record, git_dir, max_blob_size=settings.max_blob_size) as context:
        oids = {entry.path: entry.oid for entry in context.tree()}
        assert context.read_blob(oids["limit.txt"]) == sized(MAX_BLOB_SIZE)
        assert context.read_blob(oids["big.txt"]) == b""


# -- rename detection stops at rename_limit ----------------------------------------------------


def renames_with_edits(repo: GitRepo, count: int, *, keep_names: bool = False) -> str:
    """A commit renaming ``count`` files with an edit each, to new names (only git's inexact
    search finds them) or, with ``keep_names``, to another directory."""
    for i in range(count):
        repo.write(f"old/f{i}.txt", lines(40, f"file {i} line"))
    repo.commit("files")
    for i in range(count):
        new = f"new/f{i}.txt" if keep_names else f"old/g{i}.txt"
        repo.write(new, lines(40, f"file {i} line") + "edited\n")
        (repo.path / f"old/f{i}.txt").unlink()
    return repo.commit(f"rename {count} with edits")


def unrelated_changes(repo: GitRepo, added: int, deleted: int) -> str:
    """A commit deleting ``deleted`` files and adding ``added`` that resemble none of them."""
    for i in range(deleted):
        repo.write(f"gone/d{i}.txt", lines(20, f"deleted {i}"))
    repo.commit("to delete")
    for i in range(deleted):
        (repo.path / f"gone/d{i}.txt").unlink()
    for i in range(added):
        repo.write(f"added/a{i}.txt", "".join(f"{i} {j} {'#' * j}\n" for j in range(20)))
    return repo.commit(f"add {added}, delete {deleted}")


def exact_renames_and_a_deletion(repo: GitRepo) -> str:
    for i in range(5):
        repo.write(f"keep/k{i}.txt", lines(10, f"keep {i}"))
    repo.write("doomed.txt", "doomed\n")
    repo.commit("files")
    for i in range(5):
        repo.git("mv", f"keep/k{i}.txt", f"keep/renamed{i}.txt")
    (repo.path / "doomed.txt").unlink()
    return repo.commit("pure renames and a deletion")


def git_skips_renames(repo: GitRepo, sha: str, limit: int) -> bool:
    """Whether git says it skipped rename detection for ``sha`` at this limit (a warning)."""
    argv = ["git", "log", "-1", "--numstat", "-M", f"-l{limit}", "--format=", sha]
    proc = subprocess.run(argv, cwd=repo.path, env=repo.env, capture_output=True, check=True)
    return b"rename detection was skipped" in proc.stderr


def change_types(store: Store, repo_id: str, sha: str) -> list[str]:
    return sorted(r["change_type"] for r in stored_files_of(store, repo_id, sha))


#: name: (how to make the commit, rename_limit, whether git skips its search for renames,
#: the change types it then reports)
RENAME_CASES = {
    "new names, 5 x 5 beyond limit 2": (
        lambda repo: renames_with_edits(repo, 5), 2, True, ["A"] * 5 + ["D"] * 5),
    "new names, 5 x 5 at limit 5": (
        lambda repo: renames_with_edits(repo, 5), 5, False, ["R"] * 5),
    "kept names, found before the search": (
        lambda repo: renames_with_edits(repo, 5, keep_names=True), 2, False, ["R"] * 5),
    "exact renames, found before the search": (
        exact_renames_and_a_deletion, 2, False, ["D"] + ["R"] * 5),
    "2 x 2 unrelated at limit 2: searched": (
        lambda repo: unrelated_changes(repo, 2, 2), 2, False, ["A"] * 2 + ["D"] * 2),
    "3 x 2 unrelated at limit 2: not searched": (
        lambda repo: unrelated_changes(repo, 3, 2), 2, True, ["A"] * 3 + ["D"] * 2),
}  # fmt: skip


@pytest.mark.parametrize("case", RENAME_CASES)
def test_renames_skipped_is_what_git_did(make_repo, store, settings, case):
    build, limit, skipped, types = RENAME_CASES[case]
    repo = make_repo()
    repo.git("config", "diff.renameLimit", "100000")  # the repository's config must not win
    sha = build(repo)
    assert git_skips_renames(repo, sha, limit) is skipped
    repo_id, _ = register_and_ingest(
        store, settings.model_copy(update={"rename_limit": limit}), repo
    )
    oracle = with_config(repo, {"diff.renameLimit": str(limit)})
    assert assert_matches_git(store, repo_id, oracle) == len(repo.git("rev-list", "HEAD").split())
    assert change_types(store, repo_id, sha) == types
    assert stored_commit(store, repo_id, sha)["flags"] == ("renames_skipped" if skipped else None)
    assert stored_commit(store, repo_id, repo.git("rev-parse", "HEAD~1"))["flags"] is None


def test_the_default_rename_limit_finds_renames(make_repo, store, settings):
    repo = make_repo()
    sha = renames_with_edits(repo, 5)
    repo_id, _ = register_and_ingest(store, settings, repo)  # rename_limit 1000
    assert assert_matches_git(store, repo_id, repo) == 2
    rows = stored_files_of(store, repo_id, sha)
    assert [(r["change_type"], r["old_path"], r["path"]) for r in rows] == [
        ("R", f"old/f{i}.txt", f"old/g{i}.txt") for i in range(5)
    ]
    assert stored_commit(store, repo_id, sha)["flags"] is None


# -- identities and encodings (dates and offsets: test_ingest_groundtruth) ----------------


def test_malformed_identities_and_encodings_are_flagged(make_repo, store, settings):
    repo = make_repo()
    repo.write("f.txt", "f\n")
    repo.commit("scratch")
    tree = repo.git("rev-parse", "HEAD^{tree}")
    committer = "C <c@example.org> 1700001000 +0000"
    utf8_name = "Jos\xe9 <j@example.org> 1700000000 +0000"  # written as UTF-8
    objects: dict[str, dict] = {
        "no email bracket": {"author": "No Bracket 1700000000 +0000"},
        "invalid utf-8 message": {"message": b"caf\xe9 \xff\n"},
        "unknown encoding": {"extra": b"encoding x-no-such-charset\n"},
        "a codec, not a charset": {"extra": b"encoding base64\n", "message": b"aGk=\n"},
        "name not in its encoding": {"author": utf8_name, "extra": b"encoding ascii\n"},
        "declared utf-8": {"author": utf8_name, "extra": b"encoding UTF-8\n",
                           "message": "na\xefve\n".encode()},
        "fine": {},
    }  # fmt: skip
    parents = [repo.head()]
    shas = {}
    for name, fields in objects.items():
        fields = {"author": "A <a@example.org> 1700000000 +0000", "message": b"m\n", **fields}
        shas[name] = parents[0] = write_commit(repo, tree=tree, parents=parents,
                                               committer=committer, **fields)  # fmt: skip
    repo.git("update-ref", "refs/heads/main", parents[0])
    # latin-1 bytes in a name and message, declared ISO-8859-1 (as git commit writes them)
    message = "R\xe9sum\xe9\n".encode("latin-1")
    repo.git("-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "--allow-empty", "-F", "-",
             input=message, env={"GIT_AUTHOR_NAME": "Fran\udce7ois"})  # fmt: skip
    latin1 = shas["latin-1, declared"] = repo.head()
    assert b"\nencoding ISO-8859-1\n" in repo.git_bytes("cat-file", "commit", latin1)
    repo_id, _ = register_and_ingest(store, settings, repo)

    flags = {name: stored_commit(store, repo_id, sha)["flags"] for name, sha in shas.items()}
    assert flags == {
        "no email bracket": "bad_date bad_ident bad_offset",
        "invalid utf-8 message": "bad_encoding",
        "unknown encoding": "bad_encoding",
        "a codec, not a charset": "bad_encoding",
        "name not in its encoding": "bad_encoding",
        "declared utf-8": None,
        "fine": None,
        "latin-1, declared": None,
    }
    bracketless = stored_commit(store, repo_id, shas["no email bracket"])
    assert (bracketless["author_email"], bracketless["author_time"]) == (None, None)
    assert stored_commit(store, repo_id, shas["invalid utf-8 message"])["message"] == (
        "caf\ufffd \ufffd\n"
    )
    assert stored_commit(store, repo_id, shas["a codec, not a charset"])["message"] == "aGk=\n"
    for name in ("declared utf-8", "fine", "latin-1, declared"):  # git's answers, exactly
        row, _ = expected_commit(repo, shas[name])
        assert {k: stored_commit(store, repo_id, shas[name])[k] for k in row} == row, name
    assert stored_commit(store, repo_id, latin1)["author_name"] == "François"


# -- shallow clones ----------------------------------------------------------------------------


def shallow_clone(origin: GitRepo, depth: int) -> GitRepo:
    path = origin.path.parent / "shallow"
    origin.git("clone", "-q", f"--depth={depth}", f"file://{origin.path}", str(path))
    return GitRepo(path, origin.env)


def repository_flags(store: Store, repo_id: str) -> str | None:
    return store.get_repository(repo_id).flags


def test_shallow_clone_is_flagged_and_redone_when_deepened(make_repo, store, settings):
    origin = make_repo("origin")
    shas = []
    for i in range(5):
        origin.write("a.txt", lines(10 + i))
        origin.write(f"added{i}.txt", f"{i}\n")
        shas.append(origin.commit(f"c{i}"))
    clone = shallow_clone(origin, depth=2)
    boundary = shas[3]
    assert (clone.path / ".git" / "shallow").read_text().split() == [boundary]

    repo_id, _ = register_and_ingest(store, settings, clone)
    assert repository_flags(store, repo_id) == "shallow"
    assert commit_flags(store, repo_id, shas[3:]) == ["shallow_boundary", None]
    # stored as the shallow clone's git diffs it: against nothing, every file added
    assert stored_files_of(store, repo_id, boundary) == git_file_changes(clone, boundary)
    assert set(change_types(store, repo_id, boundary)) == {"A"}
    assert stored_commit(store, repo_id, boundary)["parents"] == shas[2]  # the real parent

    clone.git("fetch", "-q", "--deepen=1")
    reingest(store, repo_id, settings)
    assert repository_flags(store, repo_id) == "shallow"
    assert commit_flags(store, repo_id, shas[2:]) == ["shallow_boundary", None, None]
    assert stored_files_of(store, repo_id, boundary) == git_file_changes(origin, boundary)

    clone.git("fetch", "-q", "--unshallow")
    reingest(store, repo_id, settings)
    assert repository_flags(store, repo_id) is None
    assert commit_flags(store, repo_id, shas) == [None] * 5
    assert assert_matches_git(store, repo_id, origin) == 5
    assert assert_matches_git(store, repo_id, clone) == 5


# -- a huge commit -----------------------------------------------------------------------------


def commit_of_files(repo: GitRepo, count: int) -> str:
    """One commit adding ``count`` files (all the same one-line blob), via git fast-import."""
    header = (
        b"blob\nmark :1\ndata 6\nhello\n"
        b"commit refs/heads/main\n"
        b"author A <a@example.org> 1700000000 +0000\n"
        b"committer C <c@example.org> 1700000000 +0000\n"
        b"data 5\nhuge\n"
    )
    stream = [header]
    stream += [b"M 100644 :1 d%03d/f%06d.txt\n" % (i // 1000, i) for i in range(count)]
    repo.git_bytes("fast-import", "--quiet", input=b"".join(stream))
    return repo.git("rev-parse", "refs/heads/main")


@pytest.mark.slow
def test_a_commit_of_100000_files(make_repo, store, settings):
    repo = make_repo()
    sha = commit_of_files(repo, 100_000)
    started = time.perf_counter()
    repo_id, result = register_and_ingest(store, settings, repo)
    seconds = time.perf_counter() - started
    numstat = parse_numstat(repo.git_bytes("log", "-1", "-z", "--numstat", "--format=", sha))
    assert len(numstat) == 100_000
    with store.engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(file_changes)).scalar_one()
    assert count == 100_000
    assert result.added == 1
    row = stored_commit(store, repo_id, sha)
    assert (row["files_changed"], row["lines_added"], row["flags"]) == (100_000, 100_000, None)
    assert assert_matches_git(store, repo_id, repo) == 1
    assert seconds < 30, f"ingesting 100,000 files took {seconds:.1f} s"
