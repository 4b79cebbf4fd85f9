"""Shared fixtures: real git repositories built with the git CLI, real databases.

Backends: SQLite always; PostgreSQL when ``REPOMETER_TEST_POSTGRES_URL`` is set (CI sets it and
a missing server fails the run there); CrateDB when ``REPOMETER_TEST_CRATEDB_URL`` is set.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
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
