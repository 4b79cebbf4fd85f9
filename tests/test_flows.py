"""The Prefect layer: deployments point at flows, and the flows run for real on Dask.

The flow tests share one Prefect test server and one LocalCluster of two single-threaded worker
processes, started as the CLI starts it (``flows.runtime.local_cluster``), whose settings reach
the workers through the environment set for this module. What the flows store is compared with
git itself and, table for table, with what the sequential in-process code stores.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from conftest import POSTGRES_URL, GitDaemon, GitRepo, free_port
from prefect import Flow
from prefect.testing.utilities import prefect_test_harness
from prefect_dask import DaskTaskRunner

from repometer.compute import compute_repository, registry_for
from repometer.errors import RepositoriesFailedError
from repometer.ingest import ingest_repository as ingest_sequentially
from repometer.registry import add_repository, mirror_dir
from repometer.settings import Settings, get_settings
from repometer.storage import Store, open_store
from repometer.storage.schema import commits, file_changes, metric_results

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEPLOYMENTS = {"refresh-all", "analyze-repository", "ingest-repository", "compute-metrics"}


def _deployments() -> list[dict]:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("deployment", _deployments(), ids=lambda d: d["name"])
def test_every_deployment_entrypoint_is_a_flow(deployment: dict) -> None:
    path, _, name = deployment["entrypoint"].partition(":")
    spec = importlib.util.spec_from_file_location(f"entrypoint_{name}", ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flow = getattr(module, name)
    assert isinstance(flow, Flow)
    assert flow.name == deployment["name"]


def test_the_four_deployments_and_the_hourly_refresh() -> None:
    from prefect.server.schemas.schedules import CronSchedule

    deployments = {d["name"]: d for d in _deployments()}
    assert set(deployments) == DEPLOYMENTS
    (schedule,) = deployments["refresh-all"]["schedules"]
    assert schedule.get("active", True)
    cron = CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone", "UTC"))
    start = datetime(2025, 3, 30, 0, 30, tzinfo=UTC)  # over a DST change in Europe, not UTC
    dates = asyncio.run(cron.get_dates(n=30, start=start))
    assert len(dates) == 30
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(dates))
    for name in DEPLOYMENTS - {"refresh-all"}:
        assert not deployments[name].get("schedules"), name  # triggered, not scheduled


# -- histories --------------------------------------------------------------------------------

_AUTHORS = (
    ("Ada Author", "ada@example.org", "+0100"),
    ("Bob Builder", "bob@corp.example.com", "-0500"),
    ("Chen Wei", "chen@example.cn", "+0800"),
    ("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com", "+0000"),
)


def synthetic_history(repo: GitRepo, count: int) -> None:
    """Exactly ``count`` commits on ``main``, written at once with ``git fast-import``: edits,
    renames with edits, deletions, a binary file, an executable, topic branches merged with
    --no-ff, four authors in four time zones (one a bot) and non-ASCII messages."""
    out: list[bytes] = []
    mark = made = step = 0
    main: int | None = None
    when = 1_600_000_000
    slots = {k: f"src/mod{k}.py" for k in range(6)}
    shared = [f"# shared line {j}\n" for j in range(12)]

    def header(ref: str, i: int, message: str, parents: list[int]) -> bytes:
        nonlocal mark, when
        mark += 1
        when += 3607 + (i * 7919) % 20000
        name, email, tz = _AUTHORS[i % len(_AUTHORS)]
        msg = message.encode()
        text = (
            (
                f"commit {ref}\nmark :{mark}\nauthor {name} <{email}> {when} {tz}\n"
                f"committer Carl Committer <carl@example.org> {when + 60 * (i % 5)} +0000\n"
                f"data {len(msg)}\n"
            ).encode()
            + msg
            + b"\n"
        )
        for n, parent in enumerate(parents):
            text += f"{'from' if n == 0 else 'merge'} :{parent}\n".encode()
        return text

    def put(path: str, data: bytes, mode: str = "644") -> bytes:
        return f"M {mode} inline {path}\ndata {len(data)}\n".encode() + data + b"\n"

    def source(k: int, i: int) -> bytes:
        return "".join(shared[: 6 + k] + [f"value_{k} = {i}\n"] * (1 + i % 4)).encode()

    while made < count:
        step += 1
        if step % 45 == 0 and count - made >= 3 and main is not None:
            topic = f"topic/t{step}.txt"
            body = header("refs/heads/topic", step, f"start topic {step}\n", [main])
            out.append(body + put(topic, f"topic {step}\n".encode()))
            body = header("refs/heads/topic", step + 1, f"topic {step}: \u00e9t\u00e9\n", [mark])
            out.append(body + put(topic, f"topic {step}\nmore\n".encode()))
            body = header("refs/heads/main", step + 2, f"Merge topic {step}\n", [main, mark])
            out.append(body + put(topic, f"topic {step}\nmore\n".encode()))
            main, made = mark, made + 3
            continue
        body = header(
            "refs/heads/main", step, f"change {step}\n\nbody {step}\n", [main] if main else []
        )
        k = step % 6
        if step % 53 == 0:
            old, slots[k] = slots[k], f"lib/renamed_{step}/mod{k}.py"
            body += f"R {old} {slots[k]}\n".encode() + put(slots[k], source(k, step))
        elif step % 37 == 0:
            body += put("assets/logo.bin", bytes([0, step % 256, 255, 0]) * (64 + step))
        elif step % 61 == 0:
            body += b"D docs/notes.md\n"
        else:
            body += put(slots[k], source(k, step))
            if step % 5 == 0:
                body += put("docs/notes.md", f"notes {step}\n".encode() * (1 + step % 3))
            if step % 97 == 0:
                body += put("tools/run.sh", f"#!/bin/sh\necho {step}\n".encode(), "755")
        out.append(body)
        main, made = mark, made + 1
    repo.git("fast-import", "--quiet", input=b"".join(out))
    if not (repo.path / "HEAD").is_file():  # a work tree: check the history out
        repo.git("reset", "-q", "--hard", "main")


def append_commits(repo: GitRepo, count: int) -> None:
    """``count`` more commits on top of ``main`` (fast-import; bare repositories too)."""
    out = []
    for i in range(count):
        data = f"extra {i}\n".encode() * (1 + i % 3)
        message = f"extra commit {i}\n".encode()
        out.append(
            b"commit refs/heads/main\n"
            + f"author Dana <dana@example.net> {1_700_000_000 + i * 60} +0200\n".encode()
            + f"committer Dana <dana@example.net> {1_700_000_000 + i * 60} +0200\n".encode()
            + f"data {len(message)}\n".encode()
            + message
            + (b"from refs/heads/main^0\n" if i == 0 else b"")
            + f"M 644 inline extra/e{i % 9}.txt\ndata {len(data)}\n".encode()
            + data
            + b"\n"
        )
    repo.git("fast-import", "--quiet", input=b"".join(out))


def git_count(repo: GitRepo) -> int:
    return int(repo.git("rev-list", "--count", "HEAD"))


# -- what the databases hold --------------------------------------------------------------------


def table_rows(url: str, table: sa.Table, repo_id: str) -> list[tuple]:
    """Every column of every row of one repository, in primary-key order."""
    store = open_store(url, create=False)
    try:
        with store.engine.connect() as conn:
            query = sa.select(table).where(table.c.repo_id == repo_id)
            return [tuple(r) for r in conn.execute(query.order_by(*table.primary_key.columns))]
    finally:
        store.engine.dispose()


def assert_same_history(url: str, expected_url: str, repo_id: str, commit_count: int) -> None:
    got = table_rows(url, commits, repo_id)
    assert len(got) == commit_count
    assert got == table_rows(expected_url, commits, repo_id)
    files = table_rows(url, file_changes, repo_id)
    assert files and files == table_rows(expected_url, file_changes, repo_id)
    assert {row[1] for row in files} <= {row[1] for row in got}  # no orphan file rows


def metric_rows(url: str, repo_id: str) -> dict[tuple, dict[str, Any]]:
    """The cached results of one repository, without when and how long they took."""
    store = open_store(url, create=False)
    try:
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(metric_results).where(metric_results.c.repo_id == repo_id)
            ).mappings()
            return {
                (r["metric"], r["version"], r["parameters"]): {
                    "status": r["status"], "error": r["error"], "head": r["head"],
                    "generation": r["generation"],
                    "rows": json.loads(r["rows"]) if r["rows"] is not None else None,
                }
                for r in rows
            }  # fmt: skip
    finally:
        store.engine.dispose()


def assert_whole_catalogue(url: str, repo_id: str, head: str, settings: Settings) -> None:
    results = metric_rows(url, repo_id)
    assert {key[0] for key in results} == {m.name for m in registry_for(settings)}
    for key, result in results.items():
        assert result["status"] == "ok", (key, result["error"])
        assert result["head"] == head, key


@dataclass
class Reference:
    """A repository ingested (and its metrics computed) sequentially, in this process."""

    url: str
    store: Store
    settings: Settings
    repo_id: str

    def ingest(self) -> None:
        ingest_sequentially(self.store, self.store.get_repository(self.repo_id), self.settings)

    def compute(self) -> None:
        record = self.store.get_repository(self.repo_id)
        outcomes = compute_repository(
            self.store, record, self.settings, list(registry_for(self.settings))
        )
        assert all(o.status == "computed" for o in outcomes), outcomes


@pytest.fixture
def reference(tmp_path: Path) -> Iterator:
    """``reference(target, name)``: register ``target`` in a SQLite file of its own and
    ingest it with ``repometer.ingest.ingest_repository``."""
    stores: list[Store] = []

    def make(target: str, name: str = "reference") -> Reference:
        settings = Settings(
            home=tmp_path / f"{name}-home", db_url=f"sqlite:///{tmp_path / f'{name}.db'}",
            batch_size=1000, workers=1,
        )  # fmt: skip
        store = open_store(settings.database_url)
        stores.append(store)
        record, _ = add_repository(store, settings, target)
        ref = Reference(settings.database_url, store, settings, record.id)
        ref.ingest()
        return ref

    yield make
    for store in stores:
        store.engine.dispose()


# -- the Prefect server and the Dask cluster the flows run on -----------------------------------


@pytest.fixture(scope="module")
def prefect_server() -> Iterator[None]:
    """One Prefect test server (a temporary database) for every flow run of this module."""
    with prefect_test_harness(server_startup_timeout=120):
        yield


def export_settings(mp: pytest.MonkeyPatch, settings: Settings) -> None:
    """Make ``settings`` what this process and the workers it starts read."""
    for name, value in settings.as_environment().items():
        if value is None:
            mp.delenv(name, raising=False)
        else:
            mp.setenv(name, value)
    get_settings.cache_clear()


@dataclass
class FlowEnv:
    settings: Settings
    address: str
    client: Any  # distributed.Client of the LocalCluster
    store: Store

    @property
    def url(self) -> str:
        return self.settings.database_url

    def runner(self) -> DaskTaskRunner:
        return DaskTaskRunner(address=self.address)

    def run(self, flow: Flow, **params: Any) -> Any:
        """Run ``flow`` on the LocalCluster; returns its final state."""
        return flow.with_options(task_runner=self.runner())(**params, return_state=True)


@pytest.fixture(scope="module")
def flow_env(tmp_path_factory: pytest.TempPathFactory, prefect_server: None) -> Iterator[FlowEnv]:
    """A LocalCluster of two single-threaded worker processes and the settings they read
    (a SQLite file, small write batches); the environment stays set while the module runs,
    so that a worker restarted by its nanny reads the same settings."""
    from distributed import Client

    from flows.runtime import local_cluster

    root = tmp_path_factory.mktemp("flows")
    settings = Settings(
        home=root / "home", db_url=f"sqlite:///{root / 'flows.db'}", workers=2, batch_size=2,
        allow_private_hosts=True,  # the git daemon of the mirror tests listens on loopback
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        export_settings(mp, settings)
        store = open_store(settings.database_url)
        with local_cluster(settings) as address:
            client = Client(address, set_as_default=False)
            try:
                yield FlowEnv(settings, address, client, store)
            finally:
                client.close()
                store.engine.dispose()
    get_settings.cache_clear()


# -- the flows --------------------------------------------------------------------------------


def test_ingest_flow_stores_the_history(make_repo, tmp_path, monkeypatch, prefect_server) -> None:
    repo = make_repo()
    repo.write("a.txt", "one\n")
    repo.commit("first")
    repo.write("a.txt", "one\ntwo\n")
    head = repo.commit("second")
    settings = Settings(home=tmp_path / "home")
    monkeypatch.setenv("REPOMETER_HOME", str(settings.home))
    monkeypatch.delenv("REPOMETER_DB_URL", raising=False)
    monkeypatch.delenv("REPOMETER_DASK_ADDRESS", raising=False)
    get_settings.cache_clear()
    store = open_store(settings.database_url)
    record, _ = add_repository(store, settings, str(repo.path))

    from flows.ingest import ingest_repository

    result = ingest_repository(record.name)

    get_settings.cache_clear()
    assert result["added"] == 2
    assert result["head"] == head
    assert store.get_repository(record.id).head == head
    assert store.totals(record.id).lines_added == 2


@pytest.mark.parametrize("count", [0, 1, 249, 250, 251, 600, 3999, 4000, 4001, 12345])
def test_split_makes_contiguous_chunks_for_every_worker(count: int) -> None:
    from flows.ingest import split

    shas = [f"{i:040x}" for i in range(count)]
    chunks = split(shas, 2)
    assert [sha for chunk in chunks for sha in chunk] == shas  # each commit once, in order
    assert len(chunks) == min(-(-count // 250), 16)  # one per 250 commits, 8 per worker at most
    sizes = [len(chunk) for chunk in chunks]
    assert all(sizes) and len(set(sizes[:-1])) <= 1 and sizes[-1:] <= sizes[:1]  # even runs


@pytest.mark.slow
def test_chunked_parallel_ingestion_stores_what_sequential_ingestion_does(
    flow_env: FlowEnv, make_repo, reference
) -> None:
    from distributed import get_task_stream

    from flows.ingest import ingest_repository, split

    repo = make_repo("history")
    synthetic_history(repo, 600)
    assert git_count(repo) == 600
    assert int(repo.git("rev-list", "--merges", "--count", "HEAD")) >= 10
    record, _ = add_repository(flow_env.store, flow_env.settings, str(repo.path))
    chunks = split(repo.git("rev-list", "HEAD").split(), flow_env.settings.workers)
    assert len(chunks) == 3 and sorted(map(len, chunks)) == [200, 200, 200]

    with get_task_stream(flow_env.client) as stream:
        state = flow_env.run(ingest_repository, repository=record.name)
    result = state.result()

    head = repo.head()
    assert result == {"repo_id": record.id, "head": head, "added": 600, "removed": 0,
                      "up_to_date": False, "error": None}  # fmt: skip
    extracted = [t for t in stream.data if str(t["key"]).startswith("extract")]
    assert len(extracted) == len(chunks)
    assert len({t["worker"] for t in extracted}) == 2  # both workers extracted
    stored = flow_env.store.get_repository(record.id)
    assert (stored.status, stored.head, stored.generation, stored.error) == ("ok", head, 1, None)

    expected = reference(str(repo.path))
    assert expected.repo_id == record.id
    assert_same_history(flow_env.url, expected.url, record.id, git_count(repo))
    files = [dict(zip(file_changes.c.keys(), row, strict=True))
             for row in table_rows(flow_env.url, file_changes, record.id)]  # fmt: skip
    assert {"A", "M", "D", "R"} <= {f["change_type"] for f in files}
    assert any(f["is_binary"] for f in files) and any(f["old_path"] for f in files)

    again = flow_env.run(ingest_repository, repository=record.id).result()
    assert again["up_to_date"] and again["added"] == 0 and again["head"] == head


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.skipif(not POSTGRES_URL, reason="REPOMETER_TEST_POSTGRES_URL not set")
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_chunked_ingestion_on_postgresql_stores_what_sequential_ingestion_does(
    prefect_server: None, db_url: str, make_repo, reference, tmp_path: Path
) -> None:
    """The flow's own task runner (a LocalCluster for the run) over PostgreSQL."""
    from flows.ingest import ingest_repository
    from flows.runtime import task_runner

    repo = make_repo("history")
    synthetic_history(repo, 600)
    settings = Settings(home=tmp_path / "pg-home", db_url=db_url, workers=2, batch_size=7)
    store = open_store(db_url)
    try:
        record, _ = add_repository(store, settings, str(repo.path))
        with pytest.MonkeyPatch.context() as mp:
            export_settings(mp, settings)
            try:
                runner = task_runner(settings)
                result = ingest_repository.with_options(task_runner=runner)(record.id)
            finally:
                get_settings.cache_clear()
        assert (result["added"], result["head"], result["error"]) == (600, repo.head(), None)
        expected = reference(str(repo.path))
        assert_same_history(db_url, expected.url, record.id, git_count(repo))
    finally:
        store.engine.dispose()


@pytest.mark.slow
def test_refresh_all_completes_the_good_repository_and_reports_the_broken_one(
    flow_env: FlowEnv, make_repo, reference
) -> None:
    from flows.analyze import refresh_all

    good, bad = make_repo("good"), make_repo("bad")
    synthetic_history(good, 60)
    synthetic_history(bad, 5)
    good_record, _ = add_repository(flow_env.store, flow_env.settings, str(good.path))
    bad_record, _ = add_repository(flow_env.store, flow_env.settings, str(bad.path))
    shutil.rmtree(bad.path)  # gone after it was registered

    with pytest.raises(RepositoriesFailedError) as raised:
        refresh_all.with_options(task_runner=flow_env.runner())(
            repositories=[good_record.id, bad_record.id]
        )

    results = {r["repo_id"]: r for r in raised.value.results}
    assert set(results) == {good_record.id, bad_record.id}
    failed = results[bad_record.id]
    assert failed["error"] and failed["metrics"] is None
    assert failed["error"] == f"not a git repository any more: {bad.path} is gone"
    assert bad_record.id in str(raised.value) and failed["error"] in str(raised.value)
    stored_bad = flow_env.store.get_repository(bad_record.id)
    assert (stored_bad.status, stored_bad.error, stored_bad.head) == (
        "failed",
        failed["error"],
        None,
    )
    assert not table_rows(flow_env.url, commits, bad_record.id)

    done = results[good_record.id]
    assert done["error"] is None
    assert (done["ingest"]["added"], done["ingest"]["head"]) == (60, good.head())
    names = [m.name for m in registry_for(flow_env.settings)]
    assert [o["metric"] for o in done["metrics"]] == names
    assert {o["status"] for o in done["metrics"]} == {"computed"}
    stored_good = flow_env.store.get_repository(good_record.id)
    assert (stored_good.status, stored_good.head) == ("ok", good.head())
    expected = reference(str(good.path))
    assert_same_history(flow_env.url, expected.url, good_record.id, git_count(good))
    assert_whole_catalogue(flow_env.url, good_record.id, good.head(), flow_env.settings)


@pytest.mark.slow
def test_compute_flow_caches_what_in_process_computation_does(
    flow_env: FlowEnv, make_repo, reference
) -> None:
    from flows.compute import compute_metrics

    repo = make_repo("measured")
    synthetic_history(repo, 300)
    record, _ = add_repository(flow_env.store, flow_env.settings, str(repo.path))
    ingest_sequentially(flow_env.store, record, flow_env.settings)

    result = flow_env.run(compute_metrics, repository=record.name).result()

    names = [m.name for m in registry_for(flow_env.settings)]
    assert result["error"] is None
    assert [o["metric"] for o in result["outcomes"]] == names
    assert {o["status"] for o in result["outcomes"]} == {"computed"}
    assert_whole_catalogue(flow_env.url, record.id, repo.head(), flow_env.settings)
    expected = reference(str(repo.path))
    expected.compute()
    got, want = metric_rows(flow_env.url, record.id), metric_rows(expected.url, record.id)
    assert got == want
    for name in ("commits", "churn", "language_distribution", "hotspots"):
        assert any(key[0] == name and value["rows"] for key, value in got.items()), name

    cached = flow_env.run(compute_metrics, repository=record.id).result()
    assert {o["status"] for o in cached["outcomes"]} == {"cached"}
    assert metric_rows(flow_env.url, record.id) == got


# -- a worker killed mid-ingestion --------------------------------------------------------------


class WorkerKiller(threading.Thread):
    """Kills (SIGKILL) a worker process that is extracting, once the first rows are stored:
    the one that holds the plan's result if any does (Dask would run the plan again)."""

    def __init__(self, env: FlowEnv, repo_id: str) -> None:
        super().__init__(daemon=True)
        self.env, self.repo_id = env, repo_id
        self.stored_at_kill: int | None = None
        self.killed_pid: int | None = None
        self.done = threading.Event()

    def _stored(self, conn: sa.Connection) -> int:
        query = sa.select(sa.func.count()).where(commits.c.repo_id == self.repo_id)
        return conn.execute(query.select_from(commits)).scalar_one()

    def run(self) -> None:
        client = self.env.client
        pids = client.run(os.getpid)
        deadline = time.monotonic() + 120
        with self.env.store.engine.connect() as conn:
            while not self.done.is_set() and time.monotonic() < deadline:
                stored = self._stored(conn)
                conn.rollback()
                busy = [w for w, keys in client.processing().items()
                        if any(str(k).startswith("extract") for k in keys)]  # fmt: skip
                if stored and busy:
                    holders = {w for key, workers in client.who_has().items()
                               if str(key).startswith("plan") for w in workers}  # fmt: skip
                    victim = next((w for w in busy if w in holders), busy[0])
                    self.stored_at_kill = stored
                    self.killed_pid = pids[victim]
                    os.kill(self.killed_pid, signal.SIGKILL)
                    return
                time.sleep(0.01)


@pytest.mark.slow
def test_a_worker_killed_mid_ingestion_then_a_rerun_completes_the_history(
    flow_env: FlowEnv, make_repo, reference
) -> None:
    from distributed import get_task_stream

    from flows.ingest import ingest_repository

    repo = make_repo("killed")
    synthetic_history(repo, 3000)
    total = git_count(repo)
    record, _ = add_repository(flow_env.store, flow_env.settings, str(repo.path))

    killer = WorkerKiller(flow_env, record.id)
    killer.start()
    try:
        with get_task_stream(flow_env.client) as stream:
            first = flow_env.run(ingest_repository, repository=record.id)
    finally:
        killer.done.set()
        killer.join(timeout=30)
    assert killer.killed_pid is not None, "no worker was killed while extracting"
    assert 0 < killer.stored_at_kill < total
    # the plan ran once: a plan run again mid-extraction (the killed worker held its result)
    # would fetch, mark the repository ingesting and delete rows while chunks are stored
    assert sum(str(t["key"]).startswith("plan") for t in stream.data) == 1
    # Dask gives the lost chunk to the other worker; either way the next run completes
    flow_env.client.wait_for_workers(2, timeout=120)  # the nanny restarts the killed one
    assert killer.killed_pid not in flow_env.client.run(os.getpid).values()

    rerun = flow_env.run(ingest_repository, repository=record.id).result()
    head = repo.head()
    assert rerun["error"] is None and rerun["head"] == head
    if first.is_completed():
        assert first.result()["added"] == total and rerun["up_to_date"]
    else:
        assert rerun["added"] + killer.stored_at_kill <= total
    stored = flow_env.store.get_repository(record.id)
    assert (stored.status, stored.head, stored.error) == ("ok", head, None)
    expected = reference(str(repo.path))
    assert_same_history(flow_env.url, expected.url, record.id, total)


# -- an external Dask cluster whose workers keep their own mirrors ---------------------------


def _stop(proc: subprocess.Popen) -> None:
    """Terminate ``proc``'s process group (a nanny and its worker), then kill what remains."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class ExternalCluster:
    address: str
    worker_homes: list[Path]
    db_url: str


@pytest.fixture
def external_cluster(tmp_path: Path) -> Iterator[ExternalCluster]:
    """``dask scheduler`` and two ``dask worker`` processes, each worker with a data directory
    (mirrors) of its own and one database shared by all."""
    from distributed import Client

    db_url = f"sqlite:///{tmp_path / 'external.db'}"
    open_store(db_url).engine.dispose()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("REPOMETER_", "PREFECT_"))}
    base_env.update(
        PREFECT_HOME=str(tmp_path / "worker-prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DASK_LOGGING__DISTRIBUTED="error", REPOMETER_DB_URL=db_url, REPOMETER_WORKERS="2",
        REPOMETER_BATCH_SIZE="2", REPOMETER_ALLOW_PRIVATE_HOSTS="true",
    )  # fmt: skip
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []

    def start(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        with open(logs / f"{name}.log", "wb") as log:
            proc = subprocess.Popen(
                argv, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        procs.append(proc)
        return proc

    try:
        for _attempt in range(3):  # the free port may be taken before the scheduler binds it
            port = free_port()
            scheduler = start("scheduler", [
                str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
            ], base_env)  # fmt: skip
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and scheduler.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                except OSError:
                    time.sleep(0.1)
                    continue
                break
            if scheduler.poll() is None and time.monotonic() < deadline:
                break
            _stop(scheduler)
        else:
            raise RuntimeError(
                f"dask scheduler did not start: {(logs / 'scheduler.log').read_text()}"
            )
        address = f"tcp://127.0.0.1:{port}"
        homes = [tmp_path / f"worker-{i}-home" for i in range(2)]
        for i, home in enumerate(homes):
            start(f"worker-{i}", [
                str(BIN / "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
                "--no-dashboard", "--host", "127.0.0.1", "--name", f"worker-{i}",
            ], {**base_env, "REPOMETER_HOME": str(home)})  # fmt: skip
        with Client(address, set_as_default=False, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            client.run(importlib.import_module, "tasks.ingest")  # both ready before the flow
        yield ExternalCluster(address, homes, db_url)
    finally:
        for proc in reversed(procs):
            _stop(proc)


@pytest.mark.slow
def test_external_cluster_workers_make_their_own_mirrors_and_store_the_same(
    flow_env: FlowEnv, external_cluster: ExternalCluster, make_repo, tmp_path: Path
) -> None:
    from flows.analyze import analyze_repository
    from flows.compute import compute_metrics

    daemon = GitDaemon(tmp_path / "served")
    origin = make_repo("served/project.git", bare=True)
    synthetic_history(origin, 520)  # three extraction chunks: both workers extract
    daemon.start()
    try:
        url = daemon.url("project.git")
        local, _ = add_repository(flow_env.store, flow_env.settings, url)
        assert local.is_remote

        # on the LocalCluster (whose workers share this module's data directory)
        on_local = flow_env.run(analyze_repository, repository=url).result()
        assert on_local["error"] is None and on_local["ingest"]["added"] == 520

        # on the external cluster, whose workers have no mirror yet
        main_home = tmp_path / "main-home"
        external_settings = Settings(
            home=main_home, db_url=external_cluster.db_url, workers=2, allow_private_hosts=True
        )
        external_store = open_store(external_cluster.db_url)
        try:
            record, _ = add_repository(external_store, external_settings, url)
            assert record.id == local.id
            for home in external_cluster.worker_homes:
                assert not mirror_dir(Settings(home=home), record.id).exists()
            on_external = run_external(
                external_cluster, external_settings, analyze_repository, repository=url
            )
            assert on_external["error"] is None and on_external["ingest"]["added"] == 520
            for home in external_cluster.worker_homes:  # each worker cloned its own mirror
                assert (mirror_dir(Settings(home=home), record.id) / "HEAD").is_file(), home
            assert (external_store.get_repository(record.id).status) == "ok"
        finally:
            external_store.engine.dispose()

        def assert_identical(commit_count: int) -> None:
            assert_same_history(external_cluster.db_url, flow_env.url, record.id, commit_count)
            got = metric_rows(external_cluster.db_url, record.id)
            assert got == metric_rows(flow_env.url, record.id)
            assert_whole_catalogue(
                external_cluster.db_url, record.id, origin.head(), flow_env.settings
            )

        assert_identical(git_count(origin))

        # new commits, enough for chunks on both workers: a worker whose mirror is behind the
        # one that planned (and fetched) must bring its own mirror up to date
        append_commits(origin, 300)
        again = run_external(
            external_cluster, external_settings, analyze_repository, repository=url
        )
        assert again["error"] is None and again["ingest"]["added"] == 300
        on_local = flow_env.run(analyze_repository, repository=url).result()
        assert on_local["error"] is None and on_local["ingest"]["added"] == 300
        assert_identical(git_count(origin))

        # workers that lost their mirrors (or joined later) compute the content metrics too
        mirrors = [
            mirror_dir(Settings(home=home), record.id) for home in external_cluster.worker_homes
        ]
        for mirror in mirrors:
            shutil.rmtree(mirror)
        forced = run_external(
            external_cluster, external_settings, compute_metrics, repository=record.id, force=True
        )
        assert forced["error"] is None
        assert {o["status"] for o in forced["outcomes"]} == {"computed"}, forced["outcomes"]
        assert all((mirror / "HEAD").is_file() for mirror in mirrors)
        assert_identical(git_count(origin))
    finally:
        daemon.stop()


def run_external(cluster: ExternalCluster, settings: Settings, flow: Flow, **params: Any) -> Any:
    """Run ``flow`` on the external cluster, this process set up as the CLI sets it up."""
    with pytest.MonkeyPatch.context() as mp:
        export_settings(mp, settings)
        mp.setenv("REPOMETER_DASK_ADDRESS", cluster.address)
        try:
            return flow.with_options(task_runner=DaskTaskRunner(address=cluster.address))(**params)
        finally:
            get_settings.cache_clear()


# -- the command line, with its embedded Prefect API --------------------------------------------

_NOISE = ("Traceback", "WARNING", "Warning", "ERROR", "Error", "error:", "database is locked")


@pytest.mark.slow
def test_cli_run_in_embedded_mode_is_quiet_and_a_second_ingest_is_up_to_date(
    make_repo, tmp_path: Path
) -> None:
    repo = make_repo("project")
    synthetic_history(repo, 120)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("REPOMETER_", "PREFECT_", "GIT_", "DASK_"))}  # fmt: skip
    env.update(HOME=str(tmp_path / "user-home"), XDG_DATA_HOME=str(tmp_path / "user-data"))
    home = tmp_path / "home"
    script = BIN / "repometer"
    command = (
        [str(script)]
        if script.exists()
        else [sys.executable, "-c", "from app.cli import main; main()"]
    )

    def repometer(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*command, "--home", str(home), *args], env=env, cwd=tmp_path,
            capture_output=True, text=True, timeout=240, check=False,
        )  # fmt: skip

    with socket.socket() as busy:  # 8787 taken, as by the cluster of another run
        try:
            busy.bind(("127.0.0.1", 8787))
            busy.listen(1)
        except OSError:
            pass  # taken already
        run = repometer("run", str(repo.path))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    for noise in _NOISE:
        assert noise not in output, output
    assert "project: 120 commits added" in run.stderr, output
    assert f"{len(registry_for(Settings(home=home)))} metrics computed" in run.stderr, output
    assert (home / "prefect").is_dir()  # the embedded server's database, under --home
    server_log = (home / "prefect" / "server.log").read_text()
    for noise in _NOISE:
        assert noise not in server_log, server_log
    assert not (tmp_path / "user-home" / ".prefect").exists()

    started = time.monotonic()
    again = repometer("ingest")
    seconds = time.monotonic() - started
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip() == f"project: up to date at {repo.head()[:12]}"
    assert seconds < 10, seconds  # no flow, no server, no cluster: just the CLI
