"""Incremental ingestion, force-pushes, kill-and-resume, concurrent writers, unreachable database.

Every expected value comes from git itself (``git rev-list``, ``git log --numstat -M``), never
from repometer's own parsing; the stored rows are read straight from the tables.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from repometer.errors import StorageError
from repometer.ingest import ingest_commits, ingest_repository
from repometer.registry import add_repository
from repometer.settings import Settings
from repometer.storage import RepositoryRecord, Store, open_store
from repometer.storage.schema import commits, file_changes, repositories
from repometer.targets import parse_local

if TYPE_CHECKING:
    from conftest import GitRepo

# -- git ground truth ------------------------------------------------------------------------

#: (path, old path or None, lines added, lines deleted, is binary) for one changed file.
FileTuple = tuple[str, str | None, int, int, bool]


@dataclass
class GitTruth:
    head: str
    shas: set[str]
    files: dict[str, list[FileTuple]]  # sha -> sorted file changes (empty for merges)
    commits: int
    merges: int
    authors: int
    lines_added: int
    lines_deleted: int


def _numstat_by_commit(repo: GitRepo, rev: str) -> dict[str, list[FileTuple]]:
    """Parse ``git log -z --numstat -M`` into each commit's file changes."""
    out = repo.git_bytes("log", "-z", "--numstat", "-M", "--format=%x1e%H", rev, "--")
    tokens = iter(out.split(b"\x00"))
    result: dict[str, list[FileTuple]] = {}
    current: list[FileTuple] | None = None
    for token in tokens:
        token = token.lstrip(b"\n")
        if not token:
            continue
        if token.startswith(b"\x1e"):
            current = result.setdefault(token[1:].decode(), [])
            continue
        assert current is not None, token
        added, deleted, path = token.split(b"\t", 2)
        old = None
        if not path:  # a rename: "added\tdeleted\t" NUL old NUL new
            old, path = next(tokens), next(tokens)
        binary = added == b"-"
        current.append(
            (
                path.decode(),
                old.decode() if old is not None else None,
                0 if binary else int(added),
                0 if binary else int(deleted),
                binary,
            )
        )
    return {sha: sorted(files, key=repr) for sha, files in result.items()}


def git_truth(repo: GitRepo, rev: str = "HEAD") -> GitTruth:
    head = repo.git("rev-parse", f"{rev}^{{commit}}")
    shas = set(repo.git("rev-list", head).split())
    files = _numstat_by_commit(repo, head)
    assert set(files) == shas
    added = deleted = 0
    numstat = repo.git("log", "--numstat", "-M", "--no-merges", "--format=", head, "--")
    for line in numstat.splitlines():
        if not line.strip():
            continue
        a, d, _ = line.split("\t", 2)
        if a != "-":  # binary files count no lines
            added += int(a)
            deleted += int(d)
    return GitTruth(
        head=head,
        shas=shas,
        files=files,
        commits=int(repo.git("rev-list", "--count", head)),
        merges=int(repo.git("rev-list", "--merges", "--count", head)),
        authors=len(set(repo.git("log", "--format=%aE", head).splitlines())),
        lines_added=added,
        lines_deleted=deleted,
    )


# -- what the database holds -----------------------------------------------------------------


@dataclass
class Stored:
    commits: dict[str, tuple[int, int, int]]  # sha -> (files_changed, lines_added, lines_deleted)
    files: dict[str, list[FileTuple]]
    duplicate_commits: list[str]
    duplicate_files: list[tuple[str, int]]
    seq_gaps: list[str]  # commits whose file rows are not numbered 0..n-1


def read_stored(engine: sa.Engine, repo_id: str) -> Stored:
    with engine.connect() as conn:
        commit_rows = conn.execute(
            sa.select(
                commits.c.sha, commits.c.files_changed, commits.c.lines_added,
                commits.c.lines_deleted,
            ).where(commits.c.repo_id == repo_id)
        ).all()  # fmt: skip
        file_rows = conn.execute(
            sa.select(
                file_changes.c.sha, file_changes.c.seq, file_changes.c.path,
                file_changes.c.old_path, file_changes.c.lines_added,
                file_changes.c.lines_deleted, file_changes.c.is_binary,
            ).where(file_changes.c.repo_id == repo_id)
        ).all()  # fmt: skip
    commit_counts = Counter(r.sha for r in commit_rows)
    file_counts = Counter((r.sha, r.seq) for r in file_rows)
    files: dict[str, list[FileTuple]] = {}
    seqs: dict[str, list[int]] = {}
    for r in file_rows:
        files.setdefault(r.sha, []).append(
            (r.path, r.old_path, r.lines_added, r.lines_deleted, bool(r.is_binary))
        )
        seqs.setdefault(r.sha, []).append(r.seq)
    return Stored(
        commits={r.sha: (r.files_changed, r.lines_added, r.lines_deleted) for r in commit_rows},
        files={sha: sorted(f, key=repr) for sha, f in files.items()},
        duplicate_commits=[sha for sha, n in commit_counts.items() if n > 1],
        duplicate_files=[key for key, n in file_counts.items() if n > 1],
        seq_gaps=[sha for sha, s in seqs.items() if sorted(s) != list(range(len(s)))],
    )


def assert_rows_consistent(stored: Stored, truth: GitTruth) -> None:
    """What must hold at any moment, even right after a kill: no duplicates, and every stored
    commit is a reachable one whose file rows are complete and exact."""
    assert stored.duplicate_commits == []
    assert stored.duplicate_files == []
    assert stored.seq_gaps == []
    assert set(stored.commits) <= truth.shas, "stored commits that git cannot reach"
    wrong = []
    for sha, (files_changed, added, deleted) in stored.commits.items():
        expected = truth.files[sha]
        counted = [f for f in expected if not f[4]]
        if (
            stored.files.get(sha, []) != expected
            or files_changed != len(expected)
            or added != sum(f[2] for f in counted)
            or deleted != sum(f[3] for f in counted)
        ):
            wrong.append(sha)
    assert wrong == [], f"{len(wrong)} commits whose stored rows differ from git log --numstat"


def assert_exact(store: Store, repo_id: str, truth: GitTruth) -> None:
    """The stored history of ``repo_id`` is exactly what git reaches from ``truth.head``."""
    stored = read_stored(store.engine, repo_id)
    assert_rows_consistent(stored, truth)
    assert set(stored.commits) == truth.shas
    assert set(stored.files) <= truth.shas, "file rows of commits that are not stored"
    totals = store.totals(repo_id)
    assert (
        totals.commits, totals.merges, totals.authors, totals.lines_added, totals.lines_deleted
    ) == (
        truth.commits, truth.merges, truth.authors, truth.lines_added, truth.lines_deleted
    )  # fmt: skip
    record = store.get_repository(repo_id)
    assert (record.status, record.head, record.error) == ("ok", truth.head, None)


# -- building histories quickly --------------------------------------------------------------

_AUTHORS = [
    (b"Ada Author", b"ada@example.org"),
    (b"Bob Builder", b"bob@example.org"),
    (b"Cy Coder", b"cy@example.net"),
    (b"Dee Dev", b"DEE@example.com"),
]


def _data(content: bytes) -> bytes:
    return b"data %d\n%s\n" % (len(content), content)


def fast_import_stream(
    start: int, count: int, *, append: bool, branch: bytes = b"refs/heads/main"
) -> bytes:
    """``count`` commits numbered from ``start``: edits, additions, a binary file, renames,
    deletions and merges. With ``append`` the first commit continues ``branch``'s tip."""
    out: list[bytes] = []
    for i in range(start, start + count):
        side = i % 40 == 0 and i > start
        if side:  # a commit on a side branch, merged by commit i below
            out += [
                b"commit refs/heads/side\nmark :%d\n" % (1_000_000 + i),
                b"author Ed Side <ed@example.org> %d +0200\n" % (1_600_000_000 + 60 * i),
                b"committer C <c@example.org> %d +0000\n" % (1_600_000_000 + 60 * i),
                _data(b"side %d" % i),
                b"from :%d\n" % (i - 1),
                b"M 644 inline side.txt\n" + _data(b"side line %d\n" % i),
            ]
        name, email = _AUTHORS[i % len(_AUTHORS)]
        when = 1_600_000_000 + 60 * i + 30
        out += [
            b"commit %s\nmark :%d\n" % (branch, i),
            b"author %s <%s> %d -0500\n" % (name, email, when),
            b"committer C <c@example.org> %d +0000\n" % when,
            _data(b"commit %d" % i),
        ]
        if i > start:
            out.append(b"from :%d\n" % (i - 1))
        elif append:
            out.append(b"from %s^0\n" % branch)
        if side:
            out += [b"merge :%d\n" % (1_000_000 + i), b"M 644 inline side.txt\n"]
            out.append(_data(b"side line %d\n" % i))
        body = b"".join(b"line %d of commit %d\n" % (j, i) for j in range(i % 5 + 1))
        out.append(b"M 644 inline f%d.txt\n" % (i % 7) + _data(body))
        if i % 10 == 0:
            out.append(b"M 644 inline blob.bin\n" + _data(b"\x00\x01binary\x00%d" % i))
        if i % 25 == 0 and i >= start + 7:  # every f*.txt exists by then
            out.append(b"R f%d.txt moved/g%d.txt\n" % ((i + 1) % 7, i))
        if i % 25 == 5 and i - 5 >= start + 7:
            out.append(b"D moved/g%d.txt\n" % (i - 5))
    return b"".join(out)


def fast_import(repo: GitRepo, start: int, count: int, *, append: bool = False) -> None:
    # --force: a later stream may move the side branch off a history that was rewritten
    stream = fast_import_stream(start, count, append=append)
    repo.git_bytes("fast-import", "--quiet", "--force", input=stream)


def repo_id(repo: GitRepo) -> str:
    return parse_local(repo.path).id


# -- running the CLI in a subprocess ---------------------------------------------------------

_CLI = "from app.cli import main; main()"


def cli_argv(home: Path, db_url: str, *args: str) -> list[str]:
    return [sys.executable, "-c", _CLI, "--home", str(home), "--db", db_url, *args]


#: The subprocesses' PostgreSQL sessions carry this name (libpq reads PGAPPNAME).
_APP_NAME = "repometer-test-subprocess"


def cli_env(batch_size: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOMETER_")}
    env.update(REPOMETER_BATCH_SIZE=str(batch_size), PGAPPNAME=_APP_NAME)
    return env


def settle(engine: sa.Engine) -> None:
    """Wait until the server has ended the sessions of killed subprocesses.

    A PostgreSQL session outlives its SIGKILLed client until the server notices, and a COMMIT
    the client sent just before it died still lands: read the database only after that.
    """
    if engine.dialect.name != "postgresql":
        return  # SQLite: a killed process cannot commit anything afterwards
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = :name"
    )
    deadline = time.monotonic() + 30
    while True:
        with engine.connect() as conn:
            if conn.execute(query, {"name": _APP_NAME}).scalar_one() == 0:
                return
        assert time.monotonic() < deadline, "a killed client's session did not end"
        time.sleep(0.01)


def _reap(proc: subprocess.Popen) -> None:
    """Wait for our child; then end anything it left in its own process group (git)."""
    proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def start_cli(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent,
            start_new_session=True,
        )  # fmt: skip


def run_cli(argv: list[str], env: dict[str, str], log: Path, timeout: float = 120) -> str:
    proc = start_cli(argv, env, log)
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
        _reap(proc)
    output = log.read_text(errors="replace")
    assert proc.returncode == 0, output
    return output


def run_and_kill(
    argv: list[str], env: dict[str, str], log: Path, kill_when: Callable[[], bool]
) -> bool:
    """Run the CLI and SIGKILL it as soon as ``kill_when()``; return whether it was killed
    (False: it finished first)."""
    proc = start_cli(argv, env, log)
    deadline = time.monotonic() + 120
    killed = False
    try:
        while proc.poll() is None:
            if kill_when():
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
            assert time.monotonic() < deadline, "the ingestion neither finished nor got killed"
            time.sleep(0.001)
    finally:
        if proc.poll() is None and not killed:
            proc.kill()
        _reap(proc)
    if not killed:
        assert proc.returncode == 0, log.read_text(errors="replace")
    return killed


_RESULT = re.compile(r"([\d,]+) commits added, ([\d,]+) removed")


def reported(output: str) -> tuple[int, int] | None:
    """(added, removed) as the CLI printed them; None when it said "up to date"."""
    match = _RESULT.search(output)
    if match is None:
        assert "up to date" in output, output
        return None
    return int(match[1].replace(",", "")), int(match[2].replace(",", ""))


# -- 1. incremental ingestion ----------------------------------------------------------------


def _ingest(store: Store, settings: Settings, repo: GitRepo, **kwargs):
    record, _ = add_repository(store, settings, str(repo.path))
    return record, ingest_repository(store, record, settings, **kwargs)


def test_incremental_ingestion_reads_only_new_commits(make_repo, store, settings):
    repo = make_repo()
    for i in range(3):
        repo.write(f"file{i}.txt", "one\ntwo\n" * (i + 1))
        repo.commit(f"c{i}", date=f"2024-02-0{i + 1}T12:00:00+0000")
    record, first = _ingest(store, settings, repo)
    assert (first.added, first.removed, first.up_to_date) == (3, 0, False)
    assert_exact(store, record.id, git_truth(repo))
    assert store.get_repository(record.id).generation == 1

    # four new commits: an edit, a rename, a binary file, and a merge of a side branch
    repo.write("file0.txt", "one\nthree\n")
    repo.commit("edit", date="2024-02-04T12:00:00+0000")
    repo.git("mv", "file1.txt", "renamed.txt")
    repo.commit("rename", date="2024-02-05T12:00:00+0000", GIT_AUTHOR_EMAIL="new@example.org")
    repo.git("checkout", "-q", "-b", "side", "HEAD~1")
    repo.write("blob.bin", b"\x00\x01\x02 binary")
    repo.commit("binary", date="2024-02-06T12:00:00+0000")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "merge side", "side",
             env={"GIT_AUTHOR_DATE": "2024-02-07T12:00:00+0000",
                  "GIT_COMMITTER_DATE": "2024-02-07T12:00:00+0000"})  # fmt: skip
    assert int(repo.git("rev-list", "--count", "HEAD")) == 7

    calls: list[tuple[int, int]] = []
    second = ingest_repository(store, record, settings, progress=lambda d, t: calls.append((d, t)))
    assert (second.added, second.removed, second.up_to_date) == (4, 0, False)
    assert calls and {total for _, total in calls} == {4}, "only the new commits are read"
    assert calls[-1] == (4, 4)
    truth = git_truth(repo)
    assert truth.merges == 1
    assert_exact(store, record.id, truth)
    assert store.get_repository(record.id).generation == 2

    # nothing changed: no work at all
    before = read_stored(store.engine, record.id)
    calls.clear()
    third = ingest_repository(store, record, settings, progress=lambda d, t: calls.append((d, t)))
    assert (third.added, third.removed, third.up_to_date, third.head) == (0, 0, True, truth.head)
    assert third.seconds < 2.0
    assert calls == []
    assert read_stored(store.engine, record.id) == before
    assert_exact(store, record.id, truth)
    assert store.get_repository(record.id).generation == 2


# -- 2. force-push, rebase, amend, another ref -----------------------------------------------


def _gone_rows(store: Store, repo_id: str, shas: set[str]) -> tuple[int, int]:
    with store.engine.connect() as conn:
        return tuple(
            conn.execute(
                sa.select(sa.func.count()).where(table.c.repo_id == repo_id, table.c.sha.in_(shas))
            ).scalar_one()
            for table in (commits, file_changes)
        )


def test_history_rewrites_are_reconciled(make_repo, store, settings):
    repo = make_repo()
    day = iter(range(1, 29))

    def commit(path: str, content: str, message: str, **env: str) -> str:
        repo.write(path, content)
        return repo.commit(message, date=f"2024-03-{next(day):02d}T09:00:00+0000", **env)

    for i in range(5):
        commit(f"f{i % 2}.txt", f"v{i}\n" * (i + 1), f"c{i}", GIT_AUTHOR_EMAIL=f"a{i % 3}@x.org")
    record, _ = _ingest(store, settings, repo)
    assert_exact(store, record.id, git_truth(repo))
    generation = store.get_repository(record.id).generation

    def reingest(added: int, removed: int, old: set[str]) -> None:
        nonlocal generation
        result = ingest_repository(store, record, settings)
        truth = git_truth(repo)
        gone = old - truth.shas
        assert (result.added, result.removed, result.up_to_date) == (added, removed, False)
        assert len(gone) == removed
        assert _gone_rows(store, record.id, gone) == (0, 0), "unreachable commits left rows"
        assert_exact(store, record.id, truth)
        generation += 1
        assert store.get_repository(record.id).generation == generation

    # force-push: drop two commits, add three others
    old = git_truth(repo).shas
    repo.git("reset", "-q", "--hard", "HEAD~2")
    for i in range(3):
        commit("new.txt", f"n{i}\n", f"n{i}", GIT_AUTHOR_EMAIL="n@x.org")
    reingest(added=3, removed=2, old=old)

    # rebase main (two commits past the fork) onto another branch
    fork = repo.git("rev-parse", "HEAD~2")
    repo.git("checkout", "-q", "-b", "other", fork)
    commit("other.txt", "o\n", "o1")
    commit("other.txt", "o\no\n", "o2")
    repo.git("checkout", "-q", "main")
    old = git_truth(repo).shas
    repo.git("rebase", "-q", "other", env={"GIT_COMMITTER_DATE": "2024-04-01T00:00:00+0000"})
    reingest(added=4, removed=2, old=old)  # o1, o2 and the two rebased commits

    # a merge, then amend it away
    repo.git("checkout", "-q", "-b", "topic", "HEAD~1")
    commit("topic.txt", "t\n", "t1")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "merge topic", "topic")
    reingest(added=2, removed=0, old=git_truth(repo).shas)
    assert store.totals(record.id).merges == 1
    old = git_truth(repo).shas
    repo.git("reset", "-q", "--hard", "HEAD~1")
    commit("amended.txt", "a\n", "before amend")
    reingest(added=1, removed=2, old=old)  # the merge and t1 go
    old = git_truth(repo).shas
    repo.write("amended.txt", "a\nb\nc\n")
    repo.git("add", "-A")
    repo.git("commit", "-q", "--amend", "-m", "amended",
             env={"GIT_COMMITTER_DATE": "2024-04-02T00:00:00+0000"})  # fmt: skip
    reingest(added=1, removed=1, old=old)

    # follow another ref, then come back
    old = git_truth(repo).shas
    store.set_ref(record.id, "other")
    result = ingest_repository(store, record, settings)
    other = git_truth(repo, "other")
    assert (result.added, result.removed) == (0, len(old - other.shas))
    assert_exact(store, record.id, other)
    assert store.get_repository(record.id).ref == "other"
    store.set_ref(record.id, "HEAD")
    result = ingest_repository(store, record, settings)
    assert (result.added, result.removed) == (len(old - other.shas), 0)
    assert_exact(store, record.id, git_truth(repo))
    up = ingest_repository(store, record, settings)
    assert (up.up_to_date, up.added, up.removed) == (True, 0, 0)


# -- 3. kill and resume ----------------------------------------------------------------------


def _poll(engine: sa.Engine) -> tuple[int, str | None, str | None]:
    """(commit rows, status, head) of the one repository in the database."""
    with engine.connect() as conn:
        count = conn.execute(sa.select(sa.func.count()).select_from(commits)).scalar_one()
        row = conn.execute(sa.select(repositories.c.status, repositories.c.head)).first()
    return (count, row.status, row.head) if row else (count, None, None)


def _check_after_kill(store: Store, repo: GitRepo, truth: GitTruth) -> bool:
    """Invariants after a SIGKILL; return whether the history was left incomplete."""
    record = store.find_repository(repo_id(repo))
    if record is None:
        return True  # killed before it registered the repository
    stored = read_stored(store.engine, record.id)
    assert_rows_consistent(stored, truth)
    incomplete = set(stored.commits) != truth.shas
    if incomplete:
        assert not (record.status == "ok" and record.head == truth.head), (
            f"watermark says ok at the new head with {len(stored.commits)} of "
            f"{len(truth.shas)} commits stored"
        )
    if record.status == "ok" and record.head:
        # an "ok" watermark promises that everything its head reaches is stored
        reached = set(repo.git("rev-list", record.head).split())
        assert reached <= set(stored.commits)
    return incomplete


def _kill_at(engine: sa.Engine, point: tuple[str, float]) -> Callable[[], bool]:
    kind, value = point
    started = time.monotonic()
    if kind == "seconds":
        return lambda: time.monotonic() - started >= value

    def reached() -> bool:
        try:
            count, status, _ = _poll(engine)
        except sa.exc.OperationalError:
            return False
        return status == "ingesting" and count >= value

    return reached


@pytest.mark.slow
def test_kill_and_resume(make_repo, db_url, tmp_path):
    repo = make_repo("big")
    fast_import(repo, 1, 320)
    truth = git_truth(repo)
    assert truth.merges == 8 and truth.commits == 328
    rid = repo_id(repo)
    argv = cli_argv(tmp_path / "home", db_url, "run", str(repo.path))
    store = open_store(db_url)  # the tables exist before the first subprocess: poll them
    try:
        # first ingestion, killed at several points: as soon as it marks the repository
        # "ingesting", after a few batches, late in the run, and after a fixed delay
        points = [("rows", 0), ("rows", 40), ("rows", 200), ("seconds", 0.7)]
        incomplete = 0
        for n, (point, batch) in enumerate(zip(points, (1, 3, 1, 10), strict=True)):
            log = tmp_path / f"kill{n}.log"
            if run_and_kill(argv, cli_env(batch), log, _kill_at(store.engine, point)):
                settle(store.engine)
                incomplete += _check_after_kill(store, repo, truth)
            else:
                assert_exact(store, rid, truth)
        assert incomplete >= 2, "too few kills landed in the middle of the ingestion"
        before = len(read_stored(store.engine, rid).commits)
        output = run_cli(argv, cli_env(5), tmp_path / "resume.log")
        assert_exact(store, rid, truth)
        if before < truth.commits:
            assert reported(output) == (truth.commits - before, 0), f"{before} stored: {output}"
        assert store.get_repository(rid).generation == 1

        # the history grows; the next ingestion is killed mid-way
        old_head = truth.head
        fast_import(repo, 321, 150, append=True)
        truth = git_truth(repo)
        assert truth.commits == 328 + 150 + 3
        killed = run_and_kill(
            argv, cli_env(1), tmp_path / "grow.log", _kill_at(store.engine, ("rows", 360))
        )
        settle(store.engine)
        assert killed and _check_after_kill(store, repo, truth), "the kill came too late"
        assert store.get_repository(rid).head == old_head
        run_cli(argv, cli_env(4), tmp_path / "grow-resume.log")
        assert_exact(store, rid, truth)
        assert store.get_repository(rid).generation == 2

        # force-push back to an old commit plus 40 new ones; killed after the deletion
        repo.git("update-ref", "refs/heads/main", repo.git("rev-parse", "HEAD~230"))
        fast_import(repo, 1001, 40, append=True)
        truth = git_truth(repo)
        stale = len(read_stored(store.engine, rid).commits)

        def deleted() -> bool:
            count, status, _ = _poll(store.engine)
            return status == "ingesting" and count < stale

        if run_and_kill(argv, cli_env(1), tmp_path / "rewrite.log", deleted):
            settle(store.engine)
            _check_after_kill(store, repo, truth)
        run_cli(argv, cli_env(2), tmp_path / "rewrite-resume.log")
        assert_exact(store, rid, truth)
        assert store.get_repository(rid).generation == 3
    finally:
        store.engine.dispose()


def test_rerun_after_a_kill_before_the_watermark(make_repo, store, settings):
    """A run killed after its last batch but before it advanced the watermark leaves every
    row stored and the repository "ingesting" at the old head. The rerun has nothing left to
    write, yet the stored history did change: the watermark moves and the generation grows."""
    repo = make_repo()
    for i in range(3):
        repo.write("f.txt", f"{i}\n" * (i + 1))
        repo.commit(f"c{i}", date=f"2024-05-0{i + 1}T08:00:00+0000")
    record, _ = _ingest(store, settings, repo)
    old = store.get_repository(record.id)
    for i in range(3, 6):
        repo.write("g.txt", f"{i}\n" * (i + 1))
        repo.commit(f"c{i}", date=f"2024-05-0{i + 1}T08:00:00+0000")
    truth = git_truth(repo)
    # the state such a killed run leaves: marked ingesting, every missing commit written
    store.mark_ingesting(record.id)
    stored = set(read_stored(store.engine, record.id).commits)
    missing = [sha for sha in repo.git("rev-list", "HEAD").split() if sha not in stored]
    assert len(missing) == 3
    ingest_commits(store, record.id, Path(old.git_dir), missing, batch_size=2)
    record = store.get_repository(record.id)
    assert (record.status, record.head) == ("ingesting", old.head)

    result = ingest_repository(store, record, settings)
    assert (result.added, result.removed, result.up_to_date) == (0, 0, False)
    assert_exact(store, record.id, truth)
    assert store.get_repository(record.id).generation == old.generation + 1


# -- 4. several writer processes on one SQLite file ------------------------------------------


@pytest.mark.parametrize("fresh", [False, True], ids=["existing-db", "fresh-db"])
def test_two_writers_one_sqlite_file(make_repo, tmp_path, fresh):
    """Two processes ingest two repositories into one SQLite file at once; with ``fresh``
    the file does not exist yet, so they also create the tables at the same time."""
    repos = [make_repo("alpha"), make_repo("beta")]
    fast_import(repos[0], 1, 150)
    fast_import(repos[1], 2001, 120)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    if not fresh:
        open_store(url).engine.dispose()
    procs = [
        start_cli(cli_argv(tmp_path / "home", url, "run", str(r.path)), cli_env(1),
                  tmp_path / f"{r.path.name}.log")
        for r in repos
    ]  # fmt: skip
    for proc in procs:
        try:
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
            _reap(proc)
    logs = [(tmp_path / f"{r.path.name}.log").read_text(errors="replace") for r in repos]
    for proc, log in zip(procs, logs, strict=True):
        assert "locked" not in log, log
        assert proc.returncode == 0, log
    store = open_store(url, create=False)
    try:
        for repo in repos:
            assert_exact(store, repo_id(repo), git_truth(repo))
    finally:
        store.engine.dispose()


# -- 5. the same repository twice at once ----------------------------------------------------


def test_same_repository_twice_at_once_is_serialised(make_repo, db_url, tmp_path):
    repo = make_repo("twice")
    fast_import(repo, 1, 200)
    truth = git_truth(repo)
    open_store(db_url).engine.dispose()
    argv = cli_argv(tmp_path / "home", db_url, "run", str(repo.path))
    logs = [tmp_path / f"twice{n}.log" for n in range(2)]
    procs = [start_cli(argv, cli_env(1), log) for log in logs]
    for proc in procs:
        try:
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
            _reap(proc)
    outputs = [log.read_text(errors="replace") for log in logs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output
    results = [reported(output) for output in outputs]
    # one did the work, the other waited for the lock and found nothing left to do
    assert sorted(results, key=repr) == sorted([(truth.commits, 0), None], key=repr), outputs
    store = open_store(db_url, create=False)
    try:
        assert_exact(store, repo_id(repo), truth)
    finally:
        store.engine.dispose()


# -- 6. the database is unreachable ----------------------------------------------------------

_CLOSED_PORT_URL = "postgresql://repometer@127.0.0.1:1/repometer"


def test_unreachable_database_open_store_raises_storage_error():
    with pytest.raises(StorageError) as excinfo:
        open_store(_CLOSED_PORT_URL)
    assert "\n" not in str(excinfo.value).strip()


def test_unreachable_database_ingest_raises_storage_error(make_repo, tmp_path):
    repo = make_repo()
    repo.write("a.txt", "a\n")
    repo.commit()
    settings = Settings(home=tmp_path / "home", db_url=_CLOSED_PORT_URL)
    store = open_store(_CLOSED_PORT_URL, create=False)
    target = parse_local(repo.path)
    record = RepositoryRecord(
        id=target.id, name=target.name, url=target.url, is_remote=False,
        git_dir=str(target.local_git_dir), ref="HEAD", head=None, generation=0, status="new",
        error=None, added_at=datetime.now(UTC), ingest_started_at=None, last_ingested=None,
    )  # fmt: skip
    try:
        for attempt in (
            lambda: add_repository(store, settings, str(repo.path)),
            lambda: ingest_repository(store, record, settings),
        ):
            with pytest.raises(StorageError) as excinfo:
                attempt()
            message = str(excinfo.value).strip()
            assert "\n" not in message, message
            assert "127.0.0.1" in message or "refused" in message.lower(), message
    finally:
        store.engine.dispose()


def test_unreachable_database_cli_prints_one_line(make_repo, tmp_path):
    repo = make_repo()
    repo.write("a.txt", "a\n")
    repo.commit()
    proc = subprocess.run(
        cli_argv(tmp_path / "home", _CLOSED_PORT_URL, "run", str(repo.path)),
        env={**cli_env(10), "COLUMNS": "1000"},  # judge the message, not rich's line wrapping
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
