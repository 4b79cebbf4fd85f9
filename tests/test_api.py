"""The REST API over a store filled by a real ingestion of a generated repository.

Expected rows come from ``repometer.compute.get_or_compute`` on the same store; expected
totals from git itself. One test starts a real run (a local background process with an
embedded Prefect server and Dask workers) and follows it to completion.
"""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from app.api import create_app, to_csv, wants_csv
from metrics.registry import load_registry
from repometer.compute import get_or_compute
from repometer.settings import Settings
from repometer.storage.store import ResultRecord

if TYPE_CHECKING:
    from conftest import GitRepo

TOKEN = "t0ken-for-tests"


def build_history(make_repo) -> GitRepo:
    """Two people and a bot over two months, a branch merged with a merge commit."""
    repo = make_repo("project")
    repo.write("README.md", "hello\n")
    repo.commit("initial", date="2024-01-01T10:00:00+0000")
    repo.write("src/app.py", "def f():\n    return 1\n")
    repo.commit("add app", date="2024-01-02T23:30:00-0500",
                GIT_AUTHOR_NAME="Bea Builder", GIT_AUTHOR_EMAIL="bea@example.com")  # fmt: skip
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("src/feature.py", "x = 1\ny = 2\n")
    repo.commit("feature", date="2024-02-03T09:00:00+0100")
    repo.git("checkout", "-q", "main")
    repo.write("README.md", "hello\nworld\n")
    repo.commit("readme", date="2024-02-04T12:00:00+0000",
                GIT_AUTHOR_NAME="Bea Builder", GIT_AUTHOR_EMAIL="bea@example.com")  # fmt: skip
    dates = {"GIT_AUTHOR_DATE": "2024-02-05T08:00:00+0000",
             "GIT_COMMITTER_DATE": "2024-02-05T08:00:00+0000"}  # fmt: skip
    repo.git("merge", "-q", "--no-ff", "feature", "-m", "merge feature", env=dates)
    repo.write("requirements.txt", "requests==2.32.0\n")
    repo.commit("bump", date="2024-02-06T03:00:00+0000",
                GIT_AUTHOR_NAME="dependabot[bot]",
                GIT_AUTHOR_EMAIL="49699333+dependabot[bot]@users.noreply.github.com")  # fmt: skip
    return repo


@pytest.fixture
def repo(make_repo) -> GitRepo:
    return build_history(make_repo)


@pytest.fixture
def record(repo, ingest):
    return ingest(repo)


@pytest.fixture
def client(settings: Settings, record):
    with TestClient(create_app(settings)) as client:
        yield client


def assert_error(response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text
    return body["error"]


def fresh_rows(store, record, settings, name: str, **params: Any) -> list[dict[str, Any]]:
    """The rows computed now (not read from the cache)."""
    metric = load_registry().get(name)
    result, computed = get_or_compute(store, record, settings, metric, params, force=True)
    assert computed and result.status == "ok", result.error
    return result.rows


# -- catalogue ---------------------------------------------------------------------------------


def test_catalogue_lists_every_metric_as_the_registry_describes_it(client) -> None:
    registry = load_registry()
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.json() == [m.describe() for m in registry]

    one = client.get("/metrics/commits")
    assert one.status_code == 200 and one.json() == registry.get("commits").describe()
    assert_error(client.get("/metrics/no_such_metric"), 404, "unknown_metric")

    as_csv = client.get("/metrics", headers={"Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["name"] for r in rows] == [m.name for m in registry]


# -- repositories ------------------------------------------------------------------------------


def test_repositories_show_what_git_reports(client, repo, record) -> None:
    commits = int(repo.git("rev-list", "--count", "HEAD"))
    merges = int(repo.git("rev-list", "--count", "--merges", "HEAD"))
    listed = client.get("/repositories")
    assert listed.status_code == 200
    (summary,) = listed.json()
    assert summary["id"] == record.id and summary["head"] == repo.head()
    assert (summary["status"], summary["error"], summary["run"]) == ("ok", None, None)
    assert (summary["commits"], summary["merges"], summary["authors"]) == (commits, merges, 3)
    assert summary["last_ingested"] is not None

    one = client.get(f"/repositories/{record.id}")
    assert one.status_code == 200 and one.json() == summary
    assert_error(client.get("/repositories/0123456789abcdef"), 404, "unknown_repository")
    assert_error(client.get("/repositories/%00"), 404, "unknown_repository")

    as_csv = client.get("/repositories", headers={"Accept": "text/csv, application/json;q=0.5"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    (row,) = csv.DictReader(io.StringIO(as_csv.text))
    assert (row["id"], row["commits"], row["head"], row["run_id"]) == (
        record.id, str(commits), repo.head(), ""
    )  # fmt: skip


def test_registering_a_known_repository_again_returns_it_without_a_run(
    settings, repo, record
) -> None:
    app = create_app(settings.model_copy(update={"allow_local_paths": True}))
    with TestClient(app) as client:
        response = client.post("/repositories", json={"url": str(repo.path)})
    assert response.status_code == 200, response.text
    assert response.headers["location"] == f"/repositories/{record.id}"
    body = response.json()
    assert body["run"] is None
    assert body["repository"]["id"] == record.id and body["repository"]["status"] == "ok"


@pytest.mark.parametrize(
    ("url", "code", "fragment"),
    [
        ("file:///etc", "refused_target", "scheme 'file'"),
        ("ext::sh -c touch% /tmp/pwned", "refused_target", "remote-helper"),
        ("https://user:secret@example.com/org/repo.git", "refused_target", "credentials"),
        ("https://example.com/org/repo.git?x=1", "refused_target", "query"),
        ("-uhttps://example.com/x", "refused_target", "starts with '-'"),
        ("https://example.com/a\nb", "refused_target", "control characters"),
    ],
)
def test_refused_urls_are_422_with_the_reason(client, url, code, fragment) -> None:
    error = assert_error(client.post("/repositories", json={"url": url}), 422, code)
    assert fragment in error["message"]
    assert "secret" not in error["message"]  # a refused URL's credentials are not echoed


def test_local_paths_are_refused_unless_allowed(settings, repo, record, tmp_path, monkeypatch):
    with TestClient(create_app(settings)) as client:
        error = assert_error(
            client.post("/repositories", json={"url": str(repo.path)}), 422, "local_path_refused"
        )
    assert error["message"] == "local paths are not accepted by the API"

    monkeypatch.setenv("REPOMETER_ALLOW_LOCAL_PATHS", "true")
    allowed = Settings(home=settings.home, db_url=settings.database_url)
    assert allowed.allow_local_paths
    with TestClient(create_app(allowed)) as client:
        assert client.post("/repositories", json={"url": str(repo.path)}).status_code == 200
        error = assert_error(
            client.post("/repositories", json={"url": str(tmp_path / "nowhere")}),
            422, "refused_target",
        )  # fmt: skip
        assert "not a git repository" in error["message"]


@pytest.mark.parametrize(
    "payload",
    [b"{", b"[]", b'{"ref": "main"}', b'{"url": 5}', b'{"url": ""}',
     b'{"url": "https://example.com/a/b", "extra": 1}',
     b'{"url": "https://example.com/a/b", "ref": "--upload-pack=x"}'],
)  # fmt: skip
def test_malformed_bodies_are_422(client, payload) -> None:
    response = client.post(
        "/repositories", content=payload, headers={"Content-Type": "application/json"}
    )
    error = assert_error(response, 422, "invalid_request")
    assert error["message"].startswith("invalid request")


def test_writes_need_the_token_when_one_is_set_and_reads_stay_open(settings, repo, record):
    secured = settings.model_copy(update={"api_token": TOKEN, "allow_local_paths": True})
    body = {"url": str(repo.path)}
    with TestClient(create_app(secured)) as client:
        wrong = [{}, {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN},
                 {"Authorization": "Bearer ünïcode".encode("latin-1")},
                 {"Authorization": f"Basic {TOKEN}"}]  # fmt: skip
        for headers in wrong:
            response = client.post("/repositories", json=body, headers=headers)
            assert_error(response, 401, "unauthorized")
            assert response.headers["www-authenticate"] == "Bearer"
        # no token, malformed body: still 401 (nothing about the request is revealed)
        assert_error(client.post("/repositories", content=b"{"), 401, "unauthorized")
        ok = client.post("/repositories", json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200, ok.text
        assert client.get("/repositories").status_code == 200
        assert client.get(f"/repositories/{record.id}/metrics/no_such").status_code == 404
        schema = client.get("/openapi.json").json()
        assert schema["paths"]["/repositories"]["post"]["security"] == [{"HTTPBearer": []}]
        assert "security" not in schema["paths"]["/repositories"]["get"]

    with TestClient(create_app(settings.model_copy(update={"allow_local_paths": True}))) as client:
        assert client.post("/repositories", json=body).status_code == 200
        schema = client.get("/openapi.json").json()
        assert "security" not in schema["paths"]["/repositories"]["post"]


# -- metric results ----------------------------------------------------------------------------


def test_a_cached_result_is_served_with_its_provenance(client, store, settings, record, compute):
    rows = compute(record, "commits")
    metric = load_registry().get("commits")
    cached = store.get_result(record.id, "commits", metric.version, metric.parameters_key())
    response = client.get(f"/repositories/{record.id}/metrics/commits")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] == rows == fresh_rows(store, record, settings, "commits")
    assert body["status"] == "ok" and body["error"] is None
    assert (body["repository"], body["repository_name"], body["metric"]) == (
        record.id, record.name, "commits"
    )  # fmt: skip
    assert body["parameters"] == {"period": "day", "exclude_bots": False, "since": "", "until": ""}
    assert body["computed_from"]["head"] == record.head
    assert body["computed_from"]["generation"] == record.generation
    assert body["computed_from"]["computed_at"] == cached.computed_at.isoformat()
    # the same request by name works too
    assert client.get(f"/repositories/{record.name}/metrics/commits").json()["rows"] == rows


def test_results_as_csv(client, store, settings, record, compute) -> None:
    rows = compute(record, "contributors", period="week")
    response = client.get(
        f"/repositories/{record.id}/metrics/contributors",
        params={"period": "week"}, headers={"Accept": "text/csv"},
    )  # fmt: skip
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.text == to_csv(rows)
    parsed = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["period"] for r in parsed] == [r["period"] for r in rows]
    assert [int(r["value"]) for r in parsed] == [r["value"] for r in rows]

    # JSON stays the default, and wins ties
    for accept in ("*/*", "application/json, text/csv", "text/csv;q=0.4, */*;q=0.5", ""):
        again = client.get(f"/repositories/{record.id}/metrics/contributors?period=week",
                           headers={"Accept": accept})  # fmt: skip
        assert again.headers["content-type"] == "application/json", accept
        assert again.json()["rows"] == rows


def test_non_default_parameters_are_computed_in_the_request(client, store, settings, record):
    url = f"/repositories/{record.id}/metrics/commits"
    params = {"period": "month", "exclude_bots": "true", "since": "2024-01-02"}
    response = client.get(url, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["parameters"] == {"period": "month", "exclude_bots": True,
                                  "since": "2024-01-02", "until": ""}  # fmt: skip
    # cached from then on
    again = client.get(url, params=params).json()
    assert again["computed_from"] == body["computed_from"]
    expected = fresh_rows(store, record, settings, "commits", **params)
    assert body["rows"] == expected and body["rows"]
    assert client.get(url, params={"until": "2023-12-31", "period": "month"}).json()["rows"] == []


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("colour=blue", "has no parameter 'colour'"),
        ("exclude_bots=maybe", "must be of type bool"),
        ("period=year", "must be one of day, week, month"),
        ("since=2024-13-01", "must be of type date"),
        ("since=01/02/2024", "since"),
        ("period=day&period=week", "given twice"),
    ],
)
def test_bad_parameters_are_422(client, record, compute, query, fragment) -> None:
    response = client.get(f"/repositories/{record.id}/metrics/commits?{query}")
    error = assert_error(response, 422, "invalid_parameter")
    assert fragment in error["message"], error


@pytest.mark.parametrize(
    ("metric", "query"),
    [("contributor_absence_factor", "share=nan"), ("contributor_absence_factor", "share=inf"),
     ("churn", "depth=99999999999999999999999"), ("elephant_factor", "organizations=a%00b")],
)  # fmt: skip
def test_values_no_computation_can_use_are_422(client, record, metric, query) -> None:
    response = client.get(f"/repositories/{record.id}/metrics/{metric}?{query}")
    assert_error(response, 422, "invalid_parameter")


def test_unknown_repository_metric_and_run_are_404(client, record) -> None:
    assert_error(client.get("/repositories/nope/metrics/commits"), 404, "unknown_repository")
    assert_error(client.get(f"/repositories/{record.id}/metrics/nope"), 404, "unknown_metric")
    assert_error(client.get("/runs/" + "0" * 32), 404, "unknown_run")
    assert_error(client.get("/runs/not-a-run-id"), 404, "unknown_run")
    assert_error(client.get("/no/such/route"), 404, "not_found")
    response = client.delete("/repositories")
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].split(", ")) == {"GET", "POST"}


def test_a_metric_that_failed_is_a_200_result_with_its_error(store, settings, record, tmp_path):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "broken_metric.py").write_text(
        "from metrics import Shape, metric\n\n"
        "@metric(version=1, unit='x', shape=Shape.SCALAR)\n"
        "def always_broken(ctx):\n"
        "    '''Fails on every history.'''\n"
        "    raise RuntimeError('kaboom')\n"
    )
    with_plugin = settings.model_copy(update={"plugins_dir": plugins})
    from repometer.compute import registry_for

    metric = registry_for(with_plugin).get("always_broken")
    result, _ = get_or_compute(store, record, with_plugin, metric)
    assert result.status == "failed"
    with TestClient(create_app(with_plugin)) as client:
        response = client.get(f"/repositories/{record.id}/metrics/always_broken")
        as_csv = client.get(f"/repositories/{record.id}/metrics/always_broken",
                            headers={"Accept": "text/csv"})  # fmt: skip
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["rows"]) == ("failed", None)
    assert "RuntimeError: kaboom" in body["error"]
    assert as_csv.headers["content-type"] == "application/json"  # a failure has no rows


def test_unexpected_errors_are_500_without_details(settings, record) -> None:
    app = create_app(settings)

    def explode() -> None:
        raise RuntimeError("secret internals at /some/path")

    app.add_api_route("/explode", explode)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/explode")
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in response.text and error["message"] == "internal server error"


def test_database_errors_reveal_nothing(settings, record, store) -> None:
    """A database that fails under the API: 503 when the store reports it unavailable
    (SQLite's operational errors), 500 otherwise (PostgreSQL: a missing table is a
    programming error); the driver's message never reaches the client."""
    app = create_app(settings)
    from repometer.storage.schema import metadata

    with store.engine.begin() as conn:
        metadata.drop_all(conn)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/repositories")
    if store.backend.name == "sqlite":
        error = assert_error(response, 503, "storage_unavailable")
    else:
        error = assert_error(response, 500, "internal_error")
    assert "repositories" not in error["message"] and "SELECT" not in response.text


def test_accept_header_negotiation() -> None:
    from starlette.requests import Request

    def request(accept: str | None) -> Request:
        headers = [(b"accept", accept.encode())] if accept is not None else []
        return Request({"type": "http", "headers": headers})

    assert not wants_csv(request(None))
    assert wants_csv(request("text/csv"))
    assert wants_csv(request("text/*"))
    assert wants_csv(request("application/json;q=0.1, text/csv"))
    assert not wants_csv(request("text/csv;q=0, application/json"))
    assert not wants_csv(request("text/csv, */*"))  # a tie: JSON
    assert not wants_csv(request("text/csv;q=abc"))


# -- a real run --------------------------------------------------------------------------------


@pytest.mark.slow
def test_registering_starts_a_real_run_that_a_metric_request_joins(
    settings, make_repo, store, monkeypatch
) -> None:
    """POST a repository, ask for a metric before it is ingested (202 joins the analysis),
    follow the run to completion, then read what it computed; then make a result stale: the
    next request starts a compute run and returns the stale rows meanwhile."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    repo = build_history(make_repo)
    app = create_app(settings.model_copy(update={"allow_local_paths": True}))
    with TestClient(app) as client:
        created = client.post("/repositories", json={"url": str(repo.path)})
        assert created.status_code == 201, created.text
        body = created.json()
        repo_id, run = body["repository"]["id"], body["run"]
        assert created.headers["location"] == f"/repositories/{repo_id}"
        assert (run["kind"], run["repository"]) == ("analyze", repo_id)
        assert body["repository"]["status"] == "ingesting"
        assert body["repository"]["run"]["id"] == run["id"]

        again = client.post("/repositories", json={"url": str(repo.path)})
        assert again.status_code == 200 and again.json()["run"]["id"] == run["id"]

        pending = client.get(f"/repositories/{repo_id}/metrics/commits")
        assert pending.status_code == 202, pending.text
        assert pending.headers["location"] == f"/runs/{run['id']}"
        assert pending.json()["run"]["id"] == run["id"] and pending.json()["stale"] is None

        finished = follow(client, pending.headers["location"])
        assert finished["status"] == "completed", finished

        summary = client.get(f"/repositories/{repo_id}").json()
        assert (summary["status"], summary["head"], summary["run"]) == ("ok", repo.head(), None)
        assert summary["commits"] == int(repo.git("rev-list", "--count", "HEAD"))
        record = store.get_repository(repo_id)
        result = client.get(f"/repositories/{repo_id}/metrics/commits")
        assert result.status_code == 200, result.text
        assert result.json()["rows"] == fresh_rows(store, record, settings, "commits")

        # a result computed from an older ingestion is stale: a compute run of that metric
        metric = load_registry().get("merges")
        current = store.get_result(repo_id, "merges", metric.version, metric.parameters_key())
        old_rows = [{"period": "2023-12", "value": 99}]
        store.put_result(ResultRecord(**{**current.__dict__, "generation": 0, "rows": old_rows}))
        stale = client.get(f"/repositories/{repo_id}/metrics/merges")
        assert stale.status_code == 202, stale.text
        assert stale.json()["stale"] == old_rows
        assert (stale.json()["run"]["kind"], stale.json()["run"]["metrics"]) == (
            "compute", ["merges"]
        )  # fmt: skip
        assert follow(client, stale.headers["location"])["status"] == "completed"
        merges = client.get(f"/repositories/{repo_id}/metrics/merges").json()
        assert merges["rows"] == fresh_rows(store, record, settings, "merges") != old_rows


def follow(client: TestClient, location: str, timeout: float = 300.0) -> dict[str, Any]:
    """Poll a run until it finishes (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(location)
        assert response.status_code == 200, response.text
        run = response.json()
        if run["status"] in ("completed", "failed") or time.monotonic() > deadline:
            if run["status"] == "failed":
                log = Path(client.app.state.api.settings.home) / "runs" / f"{run['id']}.log"
                run["log"] = log.read_text()[-3000:] if log.exists() else None
            return run
        time.sleep(0.5)
