"""Resource faults while mirroring and ingesting: a full disk, corrupt or fsck-rejected
objects, a database that goes away mid-run.

Every fault is real: a 3 MiB tmpfs as the data directory, object files overwritten on disk,
a commit ``git fsck`` rejects served by a real ``git daemon``, and a TCP proxy in front of the
test PostgreSQL that drops every connection and refuses new ones. After each fault the
repository keeps what it had, and once the fault is gone a rerun stores exactly git's history.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from conftest import POSTGRES_URL, GitDaemon, _reset_schema, git_env
from test_cli import Cli, clean_env, fast_history, git_truth
from test_ingest_groundtruth import assert_matches_git
from test_mirror import git_out, refs

from repometer.errors import (
    GitCommandError,
    RepositoryTooLargeError,
    StorageError,
    is_transient,
)
from repometer.ingest import ingest_repository
from repometer.registry import add_repository, mirror_dir
from repometer.settings import Settings
from repometer.storage import Store, open_store
from repometer.storage.schema import commits, file_changes

if TYPE_CHECKING:
    from conftest import GitRepo

# --------------------------------------------------------------------------- shared helpers


class TcpProxy:
    """Forwards connections to 127.0.0.1:``port`` on to 127.0.0.1:``upstream``.

    ``rate`` throttles what the upstream sends back (bytes per second), as a slow link would.
    ``cut``: once clients have sent each of these byte strings in turn (over all connections),
    the message holding the last one is not forwarded: every connection is closed, and the
    port refuses new ones (nothing listens on it) until ``open()``. ``hang()`` makes it a host
    that froze: open connections are cut, new ones are accepted and never answered.
    """

    def __init__(
        self, upstream: int, *, rate: int | None = None, cut: Sequence[bytes] = ()
    ) -> None:
        self.upstream, self.rate = upstream, rate
        self.port = 0
        self.sent_down = 0
        self.cuts = 0
        self.hung = False
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self.open(cut=cut)

    def open(self, *, cut: Sequence[bytes] = ()) -> None:
        """Listen (again, on the same port): the database is back."""
        self.cut, self.stage, self.hung = list(cut), 0, False
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.05)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def close(self) -> None:
        """Drop every connection and stop listening (new connections are refused)."""
        with self._lock:
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            listener.close()
        _drop(conns)
        if self._acceptor is not None and self._acceptor is not threading.current_thread():
            self._acceptor.join(timeout=5)

    def hang(self) -> None:
        with self._lock:
            self.hung = True
            conns, self._conns = self._conns, []
        _drop(conns)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed
            if self.hung:
                with self._lock:
                    self._conns.append(client)  # accepted, never answered
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._conns += [client, upstream]
            ends = [0]
            for src, dst, up in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, up, ends), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool, ends: list[int]) -> None:
        tail = b""
        try:
            while data := src.recv(65536):
                if up and self.cut:
                    window, start = tail + data, 0
                    with self._lock:
                        while self.stage < len(self.cut):
                            found = window.find(self.cut[self.stage], start)
                            if found < 0:
                                break
                            start = found + len(self.cut[self.stage])
                            self.stage += 1
                        hit = self.stage == len(self.cut)
                        keep = len(self.cut[min(self.stage, len(self.cut) - 1)]) - 1
                    tail = window[max(start, len(window) - keep) :]
                    if hit:
                        self.close()
                        self.cuts += 1  # after the close: the port is free to open again
                        return
                if not up and self.rate:
                    step = max(1, self.rate // 64)
                    for i in range(0, len(data), step):
                        dst.sendall(data[i : i + step])
                        self.sent_down += len(data[i : i + step])
                        time.sleep(step / self.rate)
                    continue
                dst.sendall(data)
                if not up:
                    self.sent_down += len(data)
            dst.shutdown(socket.SHUT_WR)  # pass the half-close on
        except OSError:
            pass
        finally:
            with self._lock:
                ends[0] += 1
                done = ends[0] == 2
            if done:
                src.close()
                dst.close()


def _drop(conns: Sequence[socket.socket]) -> None:
    for conn in conns:
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        conn.close()


def transfer_leftovers(git_dir: Path) -> list[str]:
    """What a killed or failed transfer can leave in a repository: temporary packs and
    objects, quarantine directories, lock files."""
    found = []
    for path in git_dir.rglob("*"):
        name = path.name
        if name.startswith(("tmp_", ".tmp-", "incoming-")) or name.endswith(".lock"):
            found.append(str(path.relative_to(git_dir)))
    return sorted(found)


def has_object(git_dir: Path, sha: str) -> bool:
    proc = subprocess.run(["git", "--git-dir", str(git_dir), "cat-file", "-e", sha],
                          env=git_env(), capture_output=True, check=False)  # fmt: skip
    return proc.returncode == 0


def fsck_output(git_dir: Path, *, strict: bool = False) -> str:
    """``git fsck`` of a repository that must be sound: its findings (empty when clean)."""
    command = ["git", "--git-dir", str(git_dir), "fsck", *(["--strict"] if strict else []),
               "--no-dangling"]  # fmt: skip
    proc = subprocess.run(command, env=git_env(), capture_output=True, text=True, check=False)
    return "" if proc.returncode == 0 and not proc.stdout else proc.stdout + proc.stderr


def one_line(exc: BaseException) -> str:
    message = str(exc)
    assert message and "\n" not in message and "Traceback" not in message, message
    return message


def push_random(work: GitRepo, size: int, name: str = "random.bin") -> str:
    """Commit ``size`` bytes of incompressible data and push it to the origin."""
    work.write(name, os.urandom(size))
    sha = work.commit(f"add {name}", date="2024-03-01T10:00:00+0000")
    work.git("push", "-q", "origin", "main")
    return sha


def sqlite_settings(tmp_path: Path, **values) -> Settings:
    return Settings(**{"home": tmp_path / "repometer-home", "batch_size": 3,
                       "db_url": f"sqlite:///{tmp_path / 'db.sqlite'}", **values})  # fmt: skip


def test_exhausted_resources_are_not_transient_network_trouble_is() -> None:
    """Retrying soon would meet the same full disk or the same oversized repository."""
    terminal = [
        GitCommandError("git clone failed: fatal: write error: No space left on device"),
        GitCommandError("git fetch failed: error: unable to write file: No space left on device"),
        StorageError("database error: database or disk is full"),
        StorageError('database error: could not extend file "base/1/2": No space left on device'),
        RepositoryTooLargeError("git fetch stopped: the mirror outgrew max_mirror_size (1.0MiB)"),
    ]
    for exc in terminal:
        assert not is_transient(exc), exc
    transient = [
        GitCommandError("git fetch failed: fatal: the remote end hung up unexpectedly"),
        StorageError("database error: connection failed: Connection refused"),
    ]
    for exc in transient:
        assert is_transient(exc), exc


# --------------------------------------------------------------------------- a full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs (mounting needs root, as CI runs)."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                              capture_output=True, text=True, check=False)  # fmt: skip
    except FileNotFoundError:
        pytest.skip("no mount command: a full disk cannot be simulated here")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a 3 MiB tmpfs (needs root): {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def disk_settings(tmp_path: Path, small_disk: Path) -> Settings:
    """The data directory (mirrors, locks) on the small disk; the database elsewhere."""
    return sqlite_settings(tmp_path, home=small_disk, allow_private_hosts=True)


@pytest.fixture
def disk_store(disk_settings: Settings) -> Iterator[Store]:
    store = open_store(disk_settings.database_url)
    yield store
    store.engine.dispose()


def assert_no_space_left(exc: GitCommandError, what: str) -> None:
    message = one_line(exc)
    assert f"git {what} failed" in message and "No space left on device" in message, message
    assert not is_transient(exc)


def test_a_clone_that_fills_the_disk_fails_with_no_space_left_and_leaves_nothing(
    disk_store: Store, disk_settings: Settings, daemon: GitDaemon, origin, small_disk: Path
) -> None:
    work, _ = origin
    push_random(work, 5 * 1024**2)

    with pytest.raises(GitCommandError) as raised:
        add_repository(disk_store, disk_settings, daemon.url("origin.git"))

    assert_no_space_left(raised.value, "clone")
    assert list(disk_settings.mirrors_dir.iterdir()) == []
    assert shutil.disk_usage(small_disk).used < 256 * 1024  # the space is given back
    assert disk_store.list_repositories() == []


def test_a_fetch_that_fills_the_disk_fails_and_the_old_mirror_stays_ingestible(
    disk_store: Store, disk_settings: Settings, daemon: GitDaemon, origin, small_disk: Path
) -> None:
    work, _ = origin
    record, _ = add_repository(disk_store, disk_settings, daemon.url("origin.git"))
    mirror = mirror_dir(disk_settings, record.id)
    before = refs(mirror)
    big = push_random(work, 5 * 1024**2)

    with pytest.raises(GitCommandError) as raised:
        ingest_repository(disk_store, record, disk_settings)

    assert_no_space_left(raised.value, "fetch")
    assert refs(mirror) == before
    assert fsck_output(mirror) == ""
    assert transfer_leftovers(mirror) == [] and not has_object(mirror, big)
    assert shutil.disk_usage(small_disk).used < 512 * 1024  # the partial pack is gone
    failed = disk_store.get_repository(record.id)
    assert (failed.status, failed.error, failed.head) == ("failed", str(raised.value), None)
    assert disk_store.stored_shas(record.id) == set()

    # what the mirror had is still there to ingest
    result = ingest_repository(disk_store, record, disk_settings, fetch=False)

    count = int(git_out(mirror, "rev-list", "--count", "HEAD"))
    assert result.added == count == len(disk_store.stored_shas(record.id)) == 5
    assert result.head == git_out(mirror, "rev-parse", "HEAD") != big
    assert disk_store.get_repository(record.id).status == "ok"


# --------------------------------------------------------------------------- corrupt objects


def loose_object(repo: GitRepo, sha: str) -> Path:
    path = repo.path / ".git" / "objects" / sha[:2] / sha[2:]
    assert path.is_file(), f"{sha} is not a loose object"
    return path


def corrupt(path: Path) -> bytes:
    """Overwrite an object file (loose objects are read-only); returns what it held."""
    original = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(b"this is not a zlib stream" + original[len(original) // 2 :])
    return original


def add_commits(repo: GitRepo, tag: str, count: int = 3) -> list[str]:
    shas = []
    for i in range(count):
        repo.write(f"{tag}/{i}.txt", "".join(f"{tag} {i} line {j}\n" for j in range(i + 2)))
        shas.append(repo.commit(f"{tag} {i}", date=f"2024-05-{i + 1:02d}T10:00:00+0000"))
    return shas


@pytest.fixture
def two_repos(tmp_path: Path, make_repo) -> tuple[Cli, Store, Settings, GitRepo, GitRepo]:
    """``good`` and ``broken``, registered and ingested, then given three commits each."""
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    cli = Cli(home=tmp_path / "home", db=db, cwd=tmp_path, env=clean_env(tmp_path))
    settings = Settings(home=cli.home, db_url=db, batch_size=2)
    store = open_store(db)
    repos = []
    for name in ("good", "broken"):
        repo = make_repo(name)
        fast_history(repo, 12)
        record, _ = add_repository(store, settings, str(repo.path))
        ingest_repository(store, record, settings)
        add_commits(repo, "new")
        repos.append(repo)
    yield cli, store, settings, *repos
    store.engine.dispose()


def test_a_corrupt_object_fails_only_its_repository_and_the_repaired_rerun_is_exact(
    two_repos,
) -> None:
    cli, store, settings, good, broken = two_repos
    old = {r.name: r for r in store.list_repositories()}
    stored_before = store.stored_shas(old["broken"].id)
    blob = broken.git("rev-parse", "HEAD~1:new/1.txt")  # needed by a commit in the middle
    path = loose_object(broken, blob)
    original = corrupt(path)

    proc = cli("ingest", env={"PREFECT_LOGGING_LEVEL": "CRITICAL"})

    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert errors[0].startswith("error: broken: git log failed:"), errors[0]
    assert blob in errors[0] and "unable to read" in errors[0], errors[0]
    assert "good: 3 commits added" in proc.stderr, proc.stderr
    good_record = store.get_repository(old["good"].id)
    assert (good_record.status, good_record.head) == ("ok", good.head())
    assert good_record.generation == old["good"].generation + 1

    def assert_kept(reason: str) -> None:
        record = store.get_repository(old["broken"].id)
        assert (record.status, record.error) == ("failed", reason)
        assert (record.head, record.generation) == (old["broken"].head, old["broken"].generation)
        assert (
            stored_before
            <= store.stored_shas(record.id)
            < set(broken.git("rev-list", "HEAD").split())
        )

    assert_kept(errors[0].removeprefix("error: broken: "))

    # the same through the function the flows and the API call
    with pytest.raises(GitCommandError) as raised:
        ingest_repository(store, old["broken"], settings)
    assert one_line(raised.value) == errors[0].removeprefix("error: broken: ")
    assert not is_transient(raised.value)
    assert_kept(str(raised.value))

    path.write_bytes(original)  # repaired
    result = ingest_repository(store, old["broken"], settings)

    assert result.head == broken.head()
    assert assert_matches_git(store, old["broken"].id, broken) == git_truth(broken)["commits"]
    assert assert_matches_git(store, old["good"].id, good) == git_truth(good)["commits"]
    repaired = store.get_repository(old["broken"].id)
    assert repaired.generation == old["broken"].generation + 1


@pytest.mark.parametrize("kind", ["tree", "blob", "commit"])
def test_ingesting_over_a_corrupt_object_keeps_the_watermark_and_the_rerun_is_exact(
    make_repo, tmp_path: Path, kind: str
) -> None:
    settings = sqlite_settings(tmp_path)
    store = open_store(settings.database_url)
    repo = make_repo("broken")
    fast_history(repo, 10)
    record, _ = add_repository(store, settings, str(repo.path))
    ingest_repository(store, record, settings)
    before = store.get_repository(record.id)
    stored = store.stored_shas(record.id)
    new = add_commits(repo, "more", count=4)
    sha = {"tree": f"{new[1]}^{{tree}}", "blob": f"{new[1]}:more/1.txt", "commit": new[1]}[kind]
    path = loose_object(repo, repo.git("rev-parse", sha))
    original = corrupt(path)

    with pytest.raises(GitCommandError) as raised:
        ingest_repository(store, record, settings)

    message = one_line(raised.value)
    assert message.startswith("git "), message
    after = store.get_repository(record.id)
    assert (after.status, after.error) == ("failed", message)
    assert (after.head, after.generation) == (before.head, before.generation)
    assert stored <= store.stored_shas(record.id)

    path.write_bytes(original)
    ingest_repository(store, record, settings)
    assert assert_matches_git(store, record.id, repo) == 14
    store.engine.dispose()


def bad_commit(bare: Path) -> str:
    """A commit without an author line on top of ``main`` (fsck: missingAuthor, an error)."""
    head = git_out(bare, "rev-parse", "main")
    tree = git_out(bare, "rev-parse", "main^{tree}")
    body = (f"tree {tree}\nparent {head}\n"
            "committer Carl <carl@example.org> 1710000000 +0000\n\nno author\n")  # fmt: skip
    proc = subprocess.run(
        ["git", "--git-dir", str(bare), "hash-object", "-t", "commit", "-w", "--literally",
         "--stdin"], input=body.encode(), env=git_env(), capture_output=True, check=True,
    )  # fmt: skip
    sha = proc.stdout.decode().strip()
    git_out(bare, "update-ref", "refs/heads/main", sha)
    return sha


def test_an_object_fsck_rejects_fails_the_fetch_and_the_clone_and_stores_nothing(
    tmp_path: Path, daemon: GitDaemon, origin
) -> None:
    settings = sqlite_settings(tmp_path, allow_private_hosts=True)
    store = open_store(settings.database_url)
    _, bare = origin
    record, _ = add_repository(store, settings, daemon.url("origin.git"))
    ingest_repository(store, record, settings)
    mirror = mirror_dir(settings, record.id)
    before, stored = refs(mirror), store.stored_shas(record.id)
    head = store.get_repository(record.id).head
    bad = bad_commit(bare)

    with pytest.raises(GitCommandError) as fetched:
        ingest_repository(store, record, settings)

    message = one_line(fetched.value)
    assert message.startswith("git fetch failed: fsck rejected object"), message
    assert bad in message and "missingAuthor" in message, message
    assert not is_transient(fetched.value)
    assert refs(mirror) == before and not has_object(mirror, bad)
    assert transfer_leftovers(mirror) == [] and fsck_output(mirror) == ""
    failed = store.get_repository(record.id)
    assert (failed.status, failed.error, failed.head) == ("failed", message, head)
    assert store.stored_shas(record.id) == stored

    # a first clone of it is refused the same way, and registers nothing
    shutil.copytree(bare, daemon.base / "copy.git")
    with pytest.raises(GitCommandError) as cloned:
        add_repository(store, settings, daemon.url("copy.git"))
    message = one_line(cloned.value)
    assert message.startswith("git clone failed: fsck rejected object"), message
    assert bad in message and "missingAuthor" in message, message
    assert [p.name for p in settings.mirrors_dir.iterdir()] == [mirror.name]
    assert [r.id for r in store.list_repositories()] == [record.id]
    store.engine.dispose()


# --------------------------------------------------------------------------- the database goes


#: How psycopg starts a transaction (a simple query, or a parsed statement in a pipeline).
BEGIN = b"BEGIN\x00"
PASSWORD = "s3cret-pw"  # trust authentication ignores it; it must never reach a message


@pytest.fixture
def pg_proxy() -> Iterator[tuple[TcpProxy, Callable[[], str], str]]:
    """A proxy in front of the test PostgreSQL that cuts every connection when the
    transaction after the first batch of commits begins, then refuses new ones.

    Yields the proxy, the proxied URL (with a password) and the direct URL."""
    if not POSTGRES_URL:
        pytest.skip("REPOMETER_TEST_POSTGRES_URL not set")
    _reset_schema(POSTGRES_URL)
    direct = sa.make_url(POSTGRES_URL)
    proxy = TcpProxy(direct.port or 5432, cut=[b"INSERT INTO commits", BEGIN])
    proxied = direct.set(host="127.0.0.1", port=proxy.port, password=PASSWORD,
                         query={**direct.query, "sslmode": "disable"})  # fmt: skip
    try:
        yield proxy, proxied.render_as_string(hide_password=False), POSTGRES_URL
    finally:
        proxy.close()


def assert_storage_error(exc: BaseException) -> str:
    assert isinstance(exc, StorageError), repr(exc)
    assert is_transient(exc)
    return assert_storage_error_text(one_line(exc))


def assert_storage_error_text(message: str) -> str:
    assert "database error:" in message, message
    assert "\n" not in message and PASSWORD not in message, message
    return message


def assert_nothing_advanced(store: Store, repo_id: str, batch: int) -> None:
    record = store.get_repository(repo_id)
    # the run could not even record its failure: the database was gone
    assert record.status == "ingesting" and record.error is None
    assert (record.head, record.generation) == (None, 0)
    shas = store.stored_shas(repo_id)
    assert len(shas) == batch  # the first batch, and nothing of the second
    with store.engine.connect() as conn:
        files = conn.execute(sa.select(file_changes.c.sha).where(file_changes.c.repo_id == repo_id))
        assert set(files.scalars()) <= shas  # no file rows of a commit that was not stored


@pytest.mark.postgres
def test_the_database_going_away_after_the_first_batch_fails_cleanly_and_a_rerun_is_exact(
    make_repo, tmp_path: Path, pg_proxy
) -> None:
    proxy, proxied_url, direct_url = pg_proxy
    settings = Settings(home=tmp_path / "home", db_url=proxied_url, batch_size=3)
    repo = make_repo("project")
    fast_history(repo, 30)
    store, direct = open_store(proxied_url), open_store(direct_url)
    record, _ = add_repository(store, settings, str(repo.path))

    with pytest.raises(StorageError) as raised:
        ingest_repository(store, record, settings)

    assert proxy.cuts == 1
    assert_storage_error(raised.value)
    assert_nothing_advanced(direct, record.id, batch=3)

    proxy.open()  # the database is back
    result = ingest_repository(store, record, settings)

    assert result.added == 27 and result.head == repo.head()
    assert assert_matches_git(direct, record.id, repo) == 30
    with direct.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(commits)
        assert conn.execute(query.where(commits.c.repo_id == record.id)).scalar_one() == 30
    assert direct.get_repository(record.id).generation == 1
    store.engine.dispose()
    direct.engine.dispose()


def _extract_attempts(flow_state) -> list[int]:
    """How many times each extraction task of a flow run ran (retries included)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=flow_run)
    return [r.run_count for r in runs if r.name.startswith("extract ")]


@pytest.mark.postgres
@pytest.mark.parametrize("back", ["during-the-retries", "after-the-retries"])
def test_the_ingest_flow_retries_a_lost_database_then_fails_cleanly_or_completes(
    make_repo, tmp_path: Path, pg_proxy, monkeypatch: pytest.MonkeyPatch, back: str
) -> None:
    """The extraction task meets the cut after its first batch; Prefect retries it (3 times,
    2 s, 4 s, 8 s apart). A database back within that time: the run completes exactly. One
    that stays away: the run fails with one line, the watermark stays, and a rerun once it is
    back completes exactly."""
    from prefect.testing.utilities import prefect_test_harness
    from test_flows import export_settings

    from flows.ingest import ingest_repository as ingest_flow
    from flows.runtime import task_runner
    from repometer.errors import RepositoriesFailedError

    proxy, proxied_url, direct_url = pg_proxy
    settings = Settings(home=tmp_path / "home", db_url=proxied_url, batch_size=3, workers=1)
    repo = make_repo("project")
    fast_history(repo, 30)
    direct = open_store(direct_url)
    record, _ = add_repository(direct, settings, str(repo.path))
    export_settings(monkeypatch, settings)  # what the flow and its Dask worker read

    reopener = None
    if back == "during-the-retries":

        def reopen_after_the_cut() -> None:
            deadline = time.monotonic() + 120
            while proxy.cuts == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            proxy.open()

        reopener = threading.Thread(target=reopen_after_the_cut, daemon=True)
        reopener.start()

    def run():
        flow = ingest_flow.with_options(task_runner=task_runner(settings))
        return flow(record.id, return_state=True)

    with prefect_test_harness(server_startup_timeout=120):
        state = run()
        attempts = _extract_attempts(state)
        if back == "after-the-retries":
            assert state.is_failed()
            with pytest.raises(RepositoriesFailedError) as raised:
                state.result()
            assert_storage_error_text(str(raised.value))
            assert attempts == [4]  # the first run and three retries
            assert_nothing_advanced(direct, record.id, batch=3)
            proxy.open()
            state = run()
        else:
            assert attempts == [2]  # one retry found the database back
            reopener.join(5)

    assert state.is_completed(), state
    assert proxy.cuts == 1
    assert assert_matches_git(direct, record.id, repo) == 30
    assert direct.get_repository(record.id).generation == 1
    direct.engine.dispose()
