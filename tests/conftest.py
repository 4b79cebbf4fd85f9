"""Shared fixtures: real git repositories built with the git CLI, real databases.

Backends: SQLite always; PostgreSQL when ``REPOMETER_TEST_POSTGRES_URL`` is set (CI sets it and
a missing server fails the run there); CrateDB when ``REPOMETER_TEST_CRATEDB_URL`` is set.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from repometer.settings import Settings
from repometer.storage import Store, open_store
from repometer.storage.schema import metadata

POSTGRES_URL = os.environ.get("REPOMETER_TEST_POSTGRES_URL")
CRATEDB_URL = os.environ.get("REPOMETER_TEST_CRATEDB_URL")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") and not POSTGRES_URL:
        raise pytest.UsageError("CI must run the PostgreSQL suite: set REPOMETER_TEST_POSTGRES_URL")
    # One Prefect database for every embedded Prefect server the tests start (CLI runs in
    # subprocesses inherit it): its migrations then run once, not once per test.
    if not os.environ.get("PREFECT_API_URL") and "PREFECT_HOME" not in os.environ:
        os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="repometer-tests-prefect-")


def git_env(home: Path | None = None) -> dict[str, str]:
    """The environment every test git command runs in: no user config, fixed identities."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="Ada Author",
        GIT_AUTHOR_EMAIL="ada@example.org",
        GIT_COMMITTER_NAME="Carl Committer",
        GIT_COMMITTER_EMAIL="carl@example.org",
        GIT_AUTHOR_DATE="2024-01-15T10:00:00+0100",
        GIT_COMMITTER_DATE="2024-01-15T10:00:00+0100",
        LC_ALL="C",
    )
    if home is not None:
        env["HOME"] = str(home)
    return env


@dataclass
class GitRepo:
    """A repository on disk, driven through the git CLI."""

    path: Path
    env: dict[str, str]

    def git(self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None) -> str:
        return self.git_bytes(*args, input=input, env=env).decode("utf-8", "replace").strip()

    def git_bytes(
        self, *args: str, input: bytes | None = None, env: dict[str, str] | None = None
    ) -> bytes:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.path,
            input=input,
            env={**self.env, **(env or {})},
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode()}")
        return proc.stdout

    def write(self, relpath: str | bytes, content: str | bytes) -> Path:
        target = self.path / os.fsdecode(relpath)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        return target

    def commit(self, message: str = "change", *, date: str | None = None, **env: str) -> str:
        """Stage everything and commit; returns the new sha."""
        self.git("add", "-A")
        extra = dict(env)
        if date:
            extra.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        self.git("commit", "-q", "--allow-empty", "-m", message, env=extra)
        return self.git("rev-parse", "HEAD")

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def make_repo(tmp_path: Path):
    """Factory: ``make_repo(name="repo", bare=False)`` -> an empty ``GitRepo``."""
    home = tmp_path / "git-home"
    home.mkdir(exist_ok=True)

    def factory(name: str = "repo", *, bare: bool = False, branch: str = "main") -> GitRepo:
        path = tmp_path / name
        path.mkdir(parents=True)
        repo = GitRepo(path, git_env(home))
        repo.git("init", "-q", f"--initial-branch={branch}", *(["--bare"] if bare else []))
        return repo

    return factory


def _reset_schema(url: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        metadata.drop_all(engine)
    finally:
        engine.dispose()


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=[
            pytest.mark.postgres,
            pytest.mark.skipif(not POSTGRES_URL, reason="REPOMETER_TEST_POSTGRES_URL not set"),
        ],
    ),
    pytest.param(
        "crate",
        id="cratedb",
        marks=[
            pytest.mark.cratedb,
            pytest.mark.skipif(not CRATEDB_URL, reason="REPOMETER_TEST_CRATEDB_URL not set"),
        ],
    ),
]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty database, for each backend available."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'repometer.db'}"
    url = POSTGRES_URL if request.param == "postgresql" else CRATEDB_URL
    assert url is not None
    _reset_schema(url)
    return url


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(home=tmp_path / "repometer-home", db_url=db_url, batch_size=3)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    store = open_store(settings.database_url)
    yield store
    store.engine.dispose()


@pytest.fixture
def ingest(store: Store, settings: Settings):
    """``ingest(repo, ref="HEAD")``: register a ``GitRepo`` and ingest it; returns its record."""
    from repometer.ingest import ingest_repository
    from repometer.registry import add_repository

    def run(repo: GitRepo, ref: str = "HEAD"):
        record, _ = add_repository(store, settings, str(repo.path), ref=ref)
        ingest_repository(store, record, settings)
        return store.get_repository(record.id)

    return run


@pytest.fixture
def compute(store: Store, settings: Settings):
    """``compute(record, "metric", **params)``: the metric's rows through the results cache."""
    from metrics.registry import load_registry
    from repometer.compute import get_or_compute

    registry = load_registry()

    def run(record, name: str, **params):
        result, _ = get_or_compute(store, record, settings, registry.get(name), params)
        assert result.status == "ok", result.error
        return result.rows

    return run


# -- a git server on loopback ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class GitDaemon:
    """``git daemon`` exporting every repository under ``base`` on 127.0.0.1."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        for _ in range(5):  # a free port may be taken by someone else before the daemon binds it
            self.port = free_port()
            self.proc = subprocess.Popen(
                [
                    "git",
                    "daemon",
                    "--reuseaddr",
                    f"--base-path={self.base}",
                    "--export-all",
                    "--listen=127.0.0.1",
                    f"--port={self.port}",
                    "--informative-errors",
                    str(self.base),
                ],
                env=git_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            if wait_for_port(self.port, self.proc):
                return
            self.stop()
        raise RuntimeError("git daemon did not start")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, 15)  # the daemon and the upload-pack children it forked
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        self.proc = None

    def url(self, path: str) -> str:
        return f"git://127.0.0.1:{self.port}/{path}"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    base = tmp_path / "served"
    base.mkdir()
    server = GitDaemon(base)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def origin(daemon: GitDaemon, make_repo) -> tuple[GitRepo, Path]:
    """A bare origin exported by the daemon, and a work clone that pushes into it.

    History: two authors, a branch merged back with a merge commit, a tag and a side branch.
    """
    work: GitRepo = make_repo("work")
    work.write("README", "hello\n")
    work.commit("initial", date="2024-01-01T10:00:00+0000")
    work.write("src/a.py", "".join(f"line {i}\n" for i in range(20)))
    work.commit("add a", date="2024-01-02T10:00:00+0000", GIT_AUTHOR_EMAIL="bob@example.org")
    work.git("checkout", "-q", "-b", "feature")
    work.write("src/b.py", "b = 1\n")
    work.commit("feature work", date="2024-01-03T10:00:00+0000")
    work.git("checkout", "-q", "main")
    work.write("README", "hello\nworld\n")
    work.commit("main work", date="2024-01-04T10:00:00+0000")
    work.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    work.git("tag", "v1")
    work.git("branch", "-D", "-q", "feature")
    work.git("branch", "side", "HEAD~1")

    bare = daemon.base / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(bare)],
                   env=work.env, check=True)  # fmt: skip
    work.git("remote", "add", "origin", str(bare))
    work.git("push", "-q", "origin", "main", "side", "v1")
    return work, bare
