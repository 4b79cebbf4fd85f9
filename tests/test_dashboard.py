"""The Streamlit dashboard, page by page, with Streamlit's ``AppTest`` over a real SQLite store.

The store is filled by a real ingestion of generated repositories: ``alpha`` with every
result computed, ``beta`` whose results went stale (new commits ingested after computing) and
``gamma`` registered but never ingested. The last two make the dashboard start real runs in
the background (``app.runs.start_run``); one test waits for such a run to finish.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa
import streamlit as st
from conftest import GitRepo, git_env
from streamlit.testing.v1 import AppTest

from metrics.registry import load_registry
from repometer.compute import compute_repository, stale_metrics
from repometer.ingest import ingest_repository
from repometer.registry import add_repository
from repometer.settings import Settings, get_settings
from repometer.storage import open_store
from repometer.storage.schema import runs

MAIN = str(Path(__file__).resolve().parents[1] / "app" / "dashboard" / "main.py")
TIMEOUT = 60

# name, email, time zone; one bot, two organisations, public mail providers
AUTHORS = (
    ("Ada Lovelace", "ada@analytical.example", "+0000"),
    ("Grace Hopper", "grace@navy.example", "-0500"),
    ("Linus Example", "linus@gmail.com", "+0200"),
    ("Margaret H", "margaret@analytical.example", "+0100"),
    ("dependabot[bot]", "49699333+dependabot[bot]@users.noreply.github.com", "+0000"),
)
START = 1_704_103_200  # 2024-01-01 10:00 UTC


def write_history(repo: GitRepo, count: int, *, first: int = 0, name_prefix: str = "") -> None:
    """``count`` commits on ``main`` with ``git fast-import``, spread over months: Python and
    JavaScript sources edited together (temporal coupling), functions with branches
    (complexity), authors who stop contributing (inactive contributors), a bot, and tags."""
    out: list[bytes] = []
    for i in range(first, first + count):
        name, email, tz = AUTHORS[i % 5] if i < 20 else AUTHORS[(i % 3) * 2 % 5]
        when = START + i * 6 * 86400 + (i * 7919) % 40000
        message = f"{name_prefix}change {i}\n".encode()
        body = (
            f"commit refs/heads/main\nmark :{i + 1}\nauthor {name} <{email}> {when} {tz}\n"
            f"committer {name} <{email}> {when} {tz}\ndata {len(message)}\n"
        ).encode() + message
        if i == first and first > 0:
            body += b"from refs/heads/main^0\n"
        files = {
            "src/app.py": "".join(
                f"def handler_{k}(x):\n    if x > {k}:\n        return {k}\n    for y in range(x):\n"
                f"        if y % 2:\n            x += y\n    return x\n\n"
                for k in range(2 + i % 5)
            ),
            "src/util.py": f"VALUE = {i}\n\ndef helper(a, b):\n    return a + b if a else b\n",
        }
        if i % 3 == 0:
            files["web/index.js"] = f"function f{i}(a) {{ if (a) {{ return {i}; }} return 0; }}\n"
        if i % 4 == 0:
            files["README.md"] = f"# demo\n\nrelease notes {i}\n" * (1 + i % 3)
        if i % 7 == 0:
            files[f"docs/page{i % 5}.md"] = f"page {i}\n"
        for path, text in files.items():
            data = text.encode()
            body += f"M 644 inline {path}\ndata {len(data)}\n".encode() + data + b"\n"
        out.append(body)
        if i % 20 == 19:
            out.append(f"reset refs/tags/v{i // 20}\nfrom :{i + 1}\n".encode())
    repo.git("fast-import", "--quiet", input=b"".join(out))


def make_git_repo(path: Path, count: int) -> GitRepo:
    path.mkdir(parents=True)
    repo = GitRepo(path, git_env(path.parent))
    repo.git("init", "-q", "--bare", "--initial-branch=main")
    write_history(repo, count)
    return repo


@dataclass
class DashboardEnv:
    settings: Settings
    repos: dict[str, GitRepo]

    @property
    def url(self) -> str:
        return self.settings.database_url


def build_store(base: Path) -> DashboardEnv:
    """alpha: ingested, everything computed; beta: results stale; gamma: never ingested."""
    home = base / "home"
    settings = Settings(home=home, db_url=f"sqlite:///{home / 'repometer.db'}", workers=1)
    store = open_store(settings.database_url)
    catalogue = list(load_registry())
    repos = {name: make_git_repo(base / f"{name}.git", 60) for name in ("alpha", "beta", "gamma")}
    try:
        for name in ("alpha", "beta"):
            record, _ = add_repository(store, settings, str(repos[name].path))
            ingest_repository(store, record, settings)
            compute_repository(store, store.get_repository(record.id), settings, catalogue)
        write_history(repos["beta"], 5, first=60, name_prefix="later ")
        ingest_repository(store, store.get_repository("beta"), settings)
        add_repository(store, settings, str(repos["gamma"].path))
    finally:
        store.engine.dispose()
    return DashboardEnv(settings, repos)


def kill_runs(url: str) -> None:
    """Stop the unfinished background runs the dashboard started from this test process: each
    is a child of ours leading its own process group (``start_new_session``)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            query = sa.select(runs.c.pid).where(runs.c.status.in_(["scheduled", "running"]))
            pids = [pid for (pid,) in conn.execute(query) if pid]
    finally:
        engine.dispose()
    for pid in pids:
        try:
            if os.waitpid(pid, os.WNOHANG) != (0, 0):
                continue  # it has ended (and is reaped now)
        except ChildProcessError:
            continue  # not a child of this process
        os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


@pytest.fixture(scope="module")
def dashboard_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardEnv]:
    env = build_store(tmp_path_factory.mktemp("dashboard"))
    yield env
    kill_runs(env.url)


@pytest.fixture
def app_env(dashboard_env: DashboardEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[DashboardEnv]:
    monkeypatch.setenv("REPOMETER_HOME", str(dashboard_env.settings.home))
    monkeypatch.setenv("REPOMETER_DB_URL", dashboard_env.url)
    monkeypatch.setenv("REPOMETER_WORKERS", "1")
    monkeypatch.setenv("REPOMETER_ALLOW_LOCAL_PATHS", "true")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    get_settings.cache_clear()
    st.cache_data.clear()
    yield dashboard_env
    get_settings.cache_clear()
    st.cache_data.clear()


def page(name: str, **query: str) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, at.exception
    for key, value in query.items():
        at.query_params[key] = value
    if name != "repositories":
        at.switch_page(f"views/{name}.py").run()
        assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("title", "header", "markdown", "caption", "warning", "info",
                                  "error", "success") for e in getattr(at, kind)]  # fmt: skip
    return "\n".join(str(p) for p in parts)


def charts(at: AppTest) -> list:
    return list(at.get("vega_lite_chart"))


def chart_data(chart) -> pd.DataFrame:
    """The rows a chart was drawn from (Streamlit sends them as Arrow IPC)."""
    (dataset,) = chart.proto.datasets
    return pa.ipc.open_stream(dataset.data.data).read_all().to_pandas()


def commits_chart(at: AppTest) -> pd.DataFrame:
    """The data of the "Commits per ..." chart (the first of the page)."""
    spec = json.loads(charts(at)[0].proto.spec)
    assert spec["encoding"]["y"]["title"] == "commits"
    return chart_data(charts(at)[0])


def run_rows(url: str, repo_id: str) -> list[sa.Row]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(runs).where(runs.c.repo_id == repo_id)).all()
    finally:
        engine.dispose()


def repo_id(env: DashboardEnv, name: str) -> str:
    store = open_store(env.url)
    try:
        return store.get_repository(name).id
    finally:
        store.engine.dispose()


def test_repositories_page_lists_every_repository_with_its_state(app_env: DashboardEnv) -> None:
    at = page("repositories")
    assert at.title[0].value == "Repositories"
    table = at.dataframe[0].value
    assert list(table["repository"]) == ["alpha", "beta", "gamma"]
    status = dict(zip(table["repository"], table["status"], strict=True))
    assert status["alpha"] == "up to date"
    assert "stale" in status["beta"]
    assert status["gamma"] == "not ingested"
    commits = dict(zip(table["repository"], table["commits"], strict=True))
    assert commits == {"alpha": 60, "beta": 65, "gamma": 0}
    assert set(table.columns) >= {"head", "authors", "last ingest", "fresh results"}


def test_the_add_form_refuses_a_bad_url_with_a_clear_message(app_env: DashboardEnv) -> None:
    at = page("repositories")
    at.text_input(key="add_target").input("ftp://example.com/owner/repo")
    at.button[0].click().run()
    assert not at.exception
    assert any("refused: scheme 'ftp'" in e.value for e in at.error), [e.value for e in at.error]
    at.text_input(key="add_target").input("https://user:secret@example.com/owner/repo")
    at.button[0].click().run()
    assert any("credentials" in e.value for e in at.error), [e.value for e in at.error]


def test_local_paths_are_refused_unless_allowed(
    app_env: DashboardEnv, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("REPOMETER_ALLOW_LOCAL_PATHS", "false")
    get_settings.cache_clear()
    at = page("repositories")
    at.text_input(key="add_target").input(str(app_env.repos["alpha"].path))
    at.button[0].click().run()
    assert any("local paths are disabled" in e.value for e in at.error)
    assert len(at.dataframe[0].value) == 3  # nothing registered


def test_repository_page_draws_the_catalogue(app_env: DashboardEnv) -> None:
    at = page("repository", repo="alpha")
    started = time.perf_counter()
    at.run()  # cached results: the page's script runs in well under a second here
    assert time.perf_counter() - started < 3
    assert at.title[0].value == "alpha"
    assert len(charts(at)) >= 10
    shown = texts(at)
    for title in ("Commits per month", "Lines added and deleted", "weekday × hour", "Hotspots",
                  "Temporal coupling", "Ownership", "Languages", "complex"):  # fmt: skip
        assert title in shown, title
    assert "stale" not in shown and not at.warning
    factors = {m.label: m.value for m in at.metric}
    assert factors["Contributor absence factor"] == "2"
    assert factors["Commits"] == "60"
    assert factors["Elephant factor"] in {"1", "2"}
    assert factors["Fresh results"].split(" / ")[0] == factors["Fresh results"].split(" / ")[1]
    assert run_rows(app_env.url, repo_id(app_env, "alpha")) == []  # nothing to compute


def test_filters_and_periods_compute_on_demand(app_env: DashboardEnv) -> None:
    at = page("repository", repo="alpha")
    assert commits_chart(at)["value"].sum() == 60
    at.toggle(key="exclude_bots").set_value(True).run()
    assert not at.exception
    assert commits_chart(at)["value"].sum() == 42  # the bot's 18 commits left out
    at.sidebar.segmented_control(key="period").set_value("week").run()
    assert not at.exception
    assert "Commits per week" in texts(at)
    weeks = commits_chart(at)
    assert weeks["value"].sum() == 42 and len(weeks) > 30  # weeks with commits
    range_key = f"range_{repo_id(app_env, 'alpha')}"
    lo, _ = at.session_state[range_key]
    # until 2024-03-01: commits 0..10 (one every 6 days), of which 4 and 9 are the bot's
    at.date_input(key=range_key).set_value((lo, lo.replace(month=lo.month + 2))).run()
    assert not at.exception
    assert commits_chart(at)["value"].sum() == 9
    assert len(charts(at)) >= 10
    assert not at.warning  # computed now, not left to a run
    assert "date range does not apply" in texts(at)
    assert run_rows(app_env.url, repo_id(app_env, "alpha")) == []


def test_stale_results_are_shown_marked_and_a_compute_run_starts(app_env: DashboardEnv) -> None:
    at = page("repository", repo="beta")
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "stale" in warning and "computing" in warning
    assert "stale: computed" in texts(at)
    assert len(charts(at)) >= 10  # the cached (stale) results are drawn
    # the punchcard (default parameters) is the stale result of the 60 first commits; the
    # monthly commits (not the default period) were computed now, over all 65
    punchcard = next(d for d in map(chart_data, charts(at)) if "weekday" in d)
    assert punchcard["value"].sum() == 60
    assert commits_chart(at)["value"].sum() == 65
    rows = run_rows(app_env.url, repo_id(app_env, "beta"))
    assert len(rows) == 1 and rows[0].kind == "compute"
    assert rows[0].status in ("scheduled", "running")
    assert "commits" in rows[0].metrics
    at.run()  # a rerun follows the same run instead of starting another
    assert len(run_rows(app_env.url, repo_id(app_env, "beta"))) == 1
    kill_runs(app_env.url)  # the test that waits for a run is the next one


def test_a_never_ingested_repository_is_analysed_and_then_drawn(app_env: DashboardEnv) -> None:
    at = page("repository", repo="gamma")
    assert "has not been ingested yet" in " ".join(w.value for w in at.warning)
    assert charts(at) == []  # nothing cached yet
    assert "not computed yet" in texts(at)
    assert at.get("progress"), "the run's state is shown"
    gamma = repo_id(app_env, "gamma")
    (run,) = run_rows(app_env.url, gamma)
    assert run.kind == "analyze" and run.status in ("scheduled", "running")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        (run,) = run_rows(app_env.url, gamma)
        if run.status in ("completed", "failed"):
            break
        time.sleep(0.5)
    assert run.status == "completed", run.error
    st.cache_data.clear()
    at = page("repository", repo="gamma")
    assert not at.warning, [w.value for w in at.warning]
    assert len(charts(at)) >= 10
    assert {m.label: m.value for m in at.metric}["Commits"] == "60"
    assert commits_chart(at)["value"].sum() == 60
    store = open_store(app_env.url)
    try:
        assert stale_metrics(store, store.get_repository(gamma), list(load_registry())) == []
    finally:
        store.engine.dispose()


def test_compare_page_puts_repositories_on_one_chart(app_env: DashboardEnv) -> None:
    at = page("compare")
    assert at.title[0].value == "Compare repositories"
    assert not at.exception
    (chart,) = charts(at)
    series = chart_data(chart)
    assert {"alpha", "beta"} <= set(series["repository"])  # the ingested ones by default
    assert series.groupby("repository")["value"].sum()["beta"] == 65
    at.selectbox(key="compare_metric").set_value("language_distribution").run()
    assert not at.exception and len(charts(at)) == 1
    at.selectbox(key="compare_metric").set_value("contributor_absence_factor").run()
    assert not at.exception and len(charts(at)) == 1


def test_metrics_page_lists_the_catalogue_and_draws_any_metric(app_env: DashboardEnv) -> None:
    at = page("metrics", repo="alpha")
    catalogue = at.dataframe[0].value
    names = set(catalogue["metric"])
    assert {m.name for m in load_registry()} == names
    assert {"commits", "hotspots", "weekend_commits"} <= names  # the example plugin too
    plugin = dict(zip(catalogue["metric"], catalogue["plugin"], strict=True))
    assert plugin["commits"].startswith("builtin") and plugin["weekend_commits"].startswith(
        "example"
    )
    assert "period: str ∈ {day, week, month} = day" in dict(
        zip(catalogue["metric"], catalogue["parameters"], strict=True))["commits"]  # fmt: skip
    assert len(charts(at)) == 1  # commits: a series
    at.selectbox(key="metrics_metric").set_value("contributor_absence_factor").run()
    assert not at.exception
    assert at.metric[0].value == "2" and not charts(at)
    at.selectbox(key="metrics_metric").set_value("hotspots").run()
    assert not at.exception and len(charts(at)) == 1 and len(at.dataframe) == 2
    at.selectbox(key="metrics_metric").set_value("weekend_commits").run()
    assert not at.exception and at.metric
