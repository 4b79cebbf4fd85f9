"""Abuse of the REST API and the dashboard: registration floods, oversized bodies, injected
parameters and CSV formulas, errors that would leak internals or secrets, a hung database,
cross-site requests to Streamlit, and markup in repository data.

Everything runs against real parts: generated git repositories, a SQLite file, the
PostgreSQL server of ``REPOMETER_TEST_POSTGRES_URL`` (a database created and dropped here, a
TCP proxy in front of it), and ``repometer dashboard`` in a subprocess.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
import streamlit as st
from conftest import POSTGRES_URL, GitRepo, free_port, git_env
from fastapi.testclient import TestClient
from streamlit.testing.v1 import AppTest
from test_api import assert_error, build_history
from test_api_schema import RecordingLauncher
from test_faults import TcpProxy

from app.api import MAX_BODY_BYTES, create_app, to_csv
from metrics.registry import load_registry
from repometer.compute import compute_repository
from repometer.errors import InvalidSettingError
from repometer.ingest import ingest_repository
from repometer.registry import add_repository
from repometer.settings import Settings, get_settings, load_settings
from repometer.storage import open_store

ROOT = Path(__file__).resolve().parents[1]
needs_postgres = pytest.mark.skipif(not POSTGRES_URL, reason="REPOMETER_TEST_POSTGRES_URL not set")


@pytest.fixture
def local_settings(tmp_path: Path) -> Settings:
    """A SQLite store; local paths allowed, so that real repositories can be registered."""
    return Settings(home=tmp_path / "home", db_url=f"sqlite:///{tmp_path / 'api.db'}",
                    allow_local_paths=True, workers=1)  # fmt: skip


def _repometer() -> list[str]:
    script = Path(sys.executable).with_name("repometer")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from app.cli import main; main()"]  # fmt: skip


# -- 1. registration rate ------------------------------------------------------------------------


def test_registration_attempts_over_the_rate_get_429_with_retry_after_refused_ones_included(
    make_repo, local_settings: Settings
) -> None:
    repo = build_history(make_repo)
    settings = local_settings.model_copy(update={"api_registration_rate": "3/minute"})
    app = create_app(settings, start_run=RecordingLauncher())
    with TestClient(app) as client:
        assert client.post("/repositories", json={"url": str(repo.path)}).status_code == 201
        # refused attempts count: a schema-invalid body and one that is not even JSON
        assert_error(client.post("/repositories", json={"url": ""}), 422, "invalid_request")
        assert_error(client.post("/repositories", content=b"{not json",
                                 headers={"Content-Type": "application/json"}),
                     422, "invalid_request")  # fmt: skip
        refused = client.post("/repositories", json={"url": str(repo.path)})
        error = assert_error(refused, 429, "rate_limited")
        assert "3 per 1 minute" in error["message"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # reads are not limited; another client has its own allowance
        assert client.get("/repositories").status_code == 200
        other = TestClient(app, client=("192.0.2.7", 40000))
        assert other.post("/repositories", json={"url": str(repo.path)}).status_code == 200
        assert client.post("/repositories", json={"url": str(repo.path)}).status_code == 429


@pytest.mark.parametrize("rate", ["ten/hour", "0/minute", "10/fortnight", "10", "", "10/hour/2"])
def test_an_invalid_registration_rate_is_refused_with_its_variable(tmp_path: Path, rate) -> None:
    with pytest.raises(
        InvalidSettingError, match="^REPOMETER_API_REGISTRATION_RATE: .* not a rate"
    ):
        load_settings(home=tmp_path, api_registration_rate=rate)


def test_repometer_api_with_an_invalid_rate_exits_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "REPOMETER_HOME": str(tmp_path / "home"),
           "REPOMETER_API_REGISTRATION_RATE": "often"}  # fmt: skip
    env.pop("REPOMETER_DB_URL", None)
    proc = subprocess.run([*_repometer(), "api", "--port", str(free_port())], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 1
    expected = ("error: REPOMETER_API_REGISTRATION_RATE: 'often' is not a rate: write N/second, "
                "N/minute, N/hour or N/day with N >= 1 (e.g. 10/hour)")  # fmt: skip
    assert proc.stderr.strip().splitlines() == [expected]


# -- 2. body size --------------------------------------------------------------------------------


@pytest.fixture
def client(local_settings: Settings):
    with TestClient(create_app(local_settings, start_run=RecordingLauncher())) as client:
        yield client


def test_a_body_over_64_kib_is_refused_with_413_by_its_content_length(client) -> None:
    # not even JSON: a 413, not a 422, shows that it was refused before parsing
    body = b"x" * (MAX_BODY_BYTES + 1)
    response = client.post("/repositories", content=body,
                           headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.request.headers["Content-Length"] == str(MAX_BODY_BYTES + 1)
    assert_error(response, 413, "body_too_large")
    assert_error(client.request("GET", "/repositories", content=body), 413, "body_too_large")
    at_cap = b" " * (MAX_BODY_BYTES - 2) + b"{}"
    assert_error(client.post("/repositories", content=at_cap,
                             headers={"Content-Type": "application/json"}),
                 422, "invalid_request")  # fmt: skip


def test_a_body_streamed_without_content_length_is_counted_and_refused_over_64_kib(client):
    def chunks(total: int):
        for _ in range(total // 4096):
            yield b" " * 4096
        yield b"{}"

    big = client.post("/repositories", content=chunks(MAX_BODY_BYTES + 8192),
                      headers={"Content-Type": "application/json"})  # fmt: skip
    assert "Content-Length" not in big.request.headers
    assert big.request.headers["Transfer-Encoding"] == "chunked"
    assert_error(big, 413, "body_too_large")
    small = client.post("/repositories", content=chunks(8192),
                        headers={"Content-Type": "application/json"})  # fmt: skip
    assert_error(small, 422, "invalid_request")  # read and parsed: {} lacks the url


# -- 3. errors carry no traceback, path or secret ------------------------------------------------


def _assert_clean(response, *secrets: str) -> None:
    text = response.text + "".join(f"{k}: {v}\n" for k, v in response.headers.items())
    assert "Traceback" not in text and 'File "' not in text
    for secret in secrets:
        assert secret not in text, (secret, text)


def test_a_corrupt_sqlite_database_answers_500_without_traceback_path_or_sql(
    local_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="repometer")
    app = create_app(local_settings, start_run=RecordingLauncher())
    # raise_server_exceptions (the default): an exception reaching the server fails the test
    with TestClient(app) as client:
        assert client.get("/repositories").status_code == 200
        db = Path(local_settings.database_url.removeprefix("sqlite:///"))
        for part in (db, *db.parent.glob(db.name + "-*")):  # the WAL and its index too
            part.write_bytes(b"this is no longer a database " * 4096)
        response = client.get("/repositories")
    error = assert_error(response, 500, "internal_error")
    assert error["message"] == "internal server error"
    _assert_clean(response, str(db.parent), "sqlite", "SELECT", "repositories.")
    logged = [r for r in caplog.records if r.name == "repometer.api"]
    assert len(logged) == 1 and "internal error on GET /repositories" in logged[0].getMessage()
    assert "DatabaseError" in logged[0].getMessage()  # the operator still gets the traceback


class FailingLauncher:
    """A run launcher whose error quotes the connection string, as a misconfigured Prefect
    client or subprocess environment dump would."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, *_args, **_kwargs):
        raise RuntimeError(f"cannot start the flow: REPOMETER_DB_URL={self.url} unreachable")


@needs_postgres
def test_a_dropped_postgresql_database_answers_503_and_its_password_never_shows(
    make_repo, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="repometer")
    server = sa.make_url(POSTGRES_URL)
    name = f"h_api_gone_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server.set(drivername="postgresql+psycopg"),
                             isolation_level="AUTOCOMMIT")  # fmt: skip
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    # trust authentication ignores the password: it only has to stay out of sight
    url = f"postgresql://{server.username}:s3cret@{server.host}:{server.port}/{name}"
    settings = Settings(home=tmp_path / "home", db_url=url, allow_local_paths=True)
    repo = build_history(make_repo)
    responses = []
    try:
        with TestClient(create_app(settings, start_run=FailingLauncher(url))) as client:
            responses.append(client.post("/repositories", json={"url": str(repo.path)}))
            assert_error(responses[-1], 503, "run_not_started")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            for path in ("/repositories", "/repositories/project",
                         "/repositories/project/metrics/commits"):  # fmt: skip
                responses.append(client.get(path))
                assert_error(responses[-1], 503, "storage_unavailable")
            responses.append(client.post("/repositories", json={"url": str(repo.path)}))
            assert_error(responses[-1], 503, "storage_unavailable")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    for response in responses:
        _assert_clean(response, "s3cret", url, str(tmp_path))
    assert "s3cret" not in caplog.text
    assert "cannot start the flow" in caplog.text and "does not exist" in caplog.text


# -- 4. injection through every parameter --------------------------------------------------------

PAYLOADS = [
    "' OR '1'='1",
    "x'; DROP TABLE repositories; --",
    '" OR 1=1 --',
    "1 UNION SELECT id, url FROM repositories --",
    "commits'--",
]


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


def test_injected_sql_in_every_parameter_answers_4xx_and_never_reaches_sql_text(
    settings: Settings, make_repo, ingest
) -> None:
    record = ingest(build_history(make_repo))
    app = create_app(settings, start_run=RecordingLauncher())
    statements: list[tuple[str, str]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:
        statements.append((statement, repr(parameters)))

    sa.event.listen(app.state.api.store.engine, "before_cursor_execute", capture)
    base = f"/repositories/{record.id}/metrics"
    with TestClient(app) as client:
        for payload in PAYLOADS:
            q = _quote(payload)
            before = len(statements)
            requests = [  # (path, headers, expected 4xx)
                (f"/repositories/{q}", {}, True),
                (f"/repositories/{q}/metrics/commits", {}, True),
                (f"/runs/{q}", {}, True),
                (f"/metrics/{q}", {}, True),
                (f"{base}/{q}", {}, True),
                (f"{base}/commits?period={q}", {}, True),
                (f"{base}/commits?since={q}", {}, True),
                (f"{base}/commits?until={q}", {}, True),
                (f"{base}/commits?exclude_bots={q}", {}, True),
                (f"{base}/commits?format={q}", {}, True),
                (f"{base}/commits?{q}=1", {}, True),
                (f"{base}/temporal_coupling?min_support={q}", {}, True),
                (f"{base}/contributor_absence_factor?share={q}", {}, True),
                # free text: a valid value, computed (never spliced into SQL)
                (f"{base}/elephant_factor?organizations={q}", {}, False),
                ("/repositories", {"Accept": payload}, False),
                (f"{base}/commits?period=week", {"Accept": f"text/csv; q={payload}"}, False),
            ]
            for path, headers, four_xx in requests:
                response = client.get(path, headers=headers)
                assert response.status_code < 500, (path, response.text)
                if four_xx:
                    assert 400 <= response.status_code < 500, (path, response.status_code)
                    assert set(response.json()) == {"error"}
            for statement, parameters in statements[before:]:
                assert payload not in statement, statement
            metric_name_requests = len(statements)
            client.get(f"/metrics/{q}")
            client.get(f"{base}/{q}")
            for _, parameters in statements[metric_name_requests:]:
                assert payload not in parameters  # resolved against the registry, not SQL
        assert [r["id"] for r in client.get("/repositories").json()] == [record.id]
    assert any("FROM repositories" in s for s, _ in statements)  # the capture did capture


@pytest.mark.parametrize(
    "path",
    ["/repositories/..%2F..%2Fetc%2Fpasswd", "/repositories/%2E%2E/metrics/commits",
     "/repositories/..%5C..%5Cwindows/metrics/commits", "/repositories/%00", "/runs/..%2Fx",
     "/repositories/" + "a" * 5000],
)  # fmt: skip
def test_path_traversal_or_nul_in_a_repository_id_is_404(settings: Settings, path) -> None:
    with TestClient(create_app(settings, start_run=RecordingLauncher())) as client:
        response = client.get(path)
    assert response.status_code == 404, response.text
    _assert_clean(response)


# -- 5. CSV formula injection --------------------------------------------------------------------


class IngestingLauncher(RecordingLauncher):
    """Records the run and ingests the repository at once (the real launcher does it in a
    background process)."""

    def __call__(self, store, settings, record, kind, metrics=None):
        run = super().__call__(store, settings, record, kind, metrics)
        ingest_repository(store, record, settings)
        store.put_run(replace(run, status="completed"))
        return run


def test_csv_cells_that_a_spreadsheet_would_run_get_a_quote_and_numbers_do_not(
    make_repo, local_settings: Settings
) -> None:
    repo = make_repo("formulas")
    people = [('=HYPERLINK("http://x")', "x@example.com"), ("-2+3", "m@example.com"),
              ("@SUM(A1)", "s@example.com"), ("+1-1", "p@example.com"),
              ("Plain Person", "pp@example.com")]  # fmt: skip
    for i, (name, email) in enumerate(people):
        repo.write("file.txt", f"line {i}\n")
        repo.commit(f"commit {i}", GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email)
    with TestClient(create_app(local_settings, start_run=IngestingLauncher())) as client:
        registered = client.post("/repositories", json={"url": str(repo.path)})
        assert registered.status_code == 201, registered.text
        repo_id = registered.json()["repository"]["id"]
        # not the default parameters: computed during the request
        response = client.get(f"/repositories/{repo_id}/metrics/contribution_attribution",
                              params={"exclude_bots": "true"}, headers={"Accept": "text/csv"})  # fmt: skip
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    people_cells = {row["person"] for row in csv.DictReader(io.StringIO(response.text))}
    assert people_cells == {"'=HYPERLINK(\"http://x\")", "'-2+3", "'@SUM(A1)", "'+1-1",
                            "Plain Person"}  # fmt: skip
    # numbers (and text that is only a number) stay numbers; tabs and CRs are neutralised too
    rows = [{"n": -3, "x": -0.5, "s": "-12", "e": "-1.5e3", "t": "\t=1+1", "r": "\r@x", "d": "-"}]
    (parsed,) = csv.DictReader(io.StringIO(to_csv(rows)))
    assert parsed == {"n": "-3", "x": "-0.5", "s": "-12", "e": "-1.5e3", "t": "'\t=1+1",
                      "r": "'\r@x", "d": "'-"}  # fmt: skip
    assert to_csv([{"=cmd": 1}]).splitlines()[0] == "'=cmd"


# -- 7. a database that hangs ---------------------------------------------------------------------


@needs_postgres
def test_a_database_that_stops_answering_gives_503_within_the_connect_timeout(
    tmp_path: Path,
) -> None:
    server = sa.make_url(POSTGRES_URL)
    assert server.host in ("127.0.0.1", "localhost"), "the proxy forwards to loopback"
    proxy = TcpProxy(server.port or 5432)
    url = server.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    settings = Settings(home=tmp_path / "home", db_url=url)
    outcome: dict = {}
    try:
        client = TestClient(create_app(settings, start_run=RecordingLauncher()))
        assert client.get("/repositories").status_code == 200
        proxy.hang()

        def ask() -> None:
            started = time.monotonic()
            outcome["response"] = client.get("/repositories")
            outcome["seconds"] = time.monotonic() - started

        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        asker.join(30)
        assert not asker.is_alive(), "the request still waits for the database after 30 s"
    finally:
        proxy.close()  # also releases a request that would otherwise wait forever
    assert_error(outcome["response"], 503, "storage_unavailable")
    assert 5 <= outcome["seconds"] < 20, outcome["seconds"]


# -- 6. the dashboard: cross-site requests, markup in repository data ----------------------------


def _http(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data


def _status(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


def test_the_dashboard_refuses_cross_site_uploads_and_websockets_whatever_its_config(
    tmp_path: Path,
) -> None:
    # a config file and environment that switch both protections off: the flags win
    config = tmp_path / ".streamlit" / "config.toml"
    config.parent.mkdir()
    config.write_text("[server]\nenableXsrfProtection = false\nenableCORS = false\n")
    port = free_port()
    env = {**os.environ, "REPOMETER_HOME": str(tmp_path / "home"),
           "STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION": "false",
           "STREAMLIT_SERVER_ENABLE_CORS": "false"}  # fmt: skip
    env.pop("REPOMETER_DB_URL", None)
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "dashboard.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([*_repometer(), "dashboard", "--port", str(port)], cwd=tmp_path,
                                env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                head = _http(port, b"GET /_stcore/health HTTP/1.1\r\nHost: x\r\n\r\n")
                if head and _status(head) == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.25)
        origin = b"Origin: https://evil.example\r\n"
        body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.txt\"\r\n"
                b"Content-Type: text/plain\r\n\r\nhello\r\n--b--\r\n")  # fmt: skip
        upload = _http(port, b"PUT /_stcore/upload_file/some-session/some-file HTTP/1.1\r\n"
                       b"Host: 127.0.0.1\r\n" + origin +
                       b"Content-Type: multipart/form-data; boundary=b\r\n"
                       b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
        assert _status(upload) == 403, upload  # XSRF token missing (off: 400, bad session)
        websocket = _http(port, b"GET /_stcore/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n" + origin +
                          b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          b"Sec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
        assert _status(websocket) == 403, websocket  # cross-origin (CORS off: 101)
        health = _http(
            port, b"GET /_stcore/health HTTP/1.1\r\nHost: 127.0.0.1\r\n" + origin + b"\r\n"
        )
        assert b"access-control-allow-origin" not in health.lower()
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def test_the_dashboard_source_never_lets_raw_html_through() -> None:
    sources = sorted((ROOT / "app" / "dashboard").rglob("*.py"))
    assert sources
    for source in sources:
        text = source.read_text()
        for pattern in ("unsafe_allow_html", "st.html", "components.html", "allow_html"):
            assert pattern not in text, (source, pattern)


SCRIPT = "<script>alert(1)</script>"
IMAGE = "![x](http://evil.example/p.png)"
CO_AUTHOR = "<b>Bold</b> [link](http://evil.example) <b@example.com>"
#: an unescaped tag (Markdown shows a backslash-escaped "<" as text)
MARKUP = re.compile(r"(?<!\\)<\s*/?\s*(script|img|b|a)\b", re.IGNORECASE)


def test_markup_in_author_names_commit_messages_and_repository_names_is_shown_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, db_url=f"sqlite:///{home / 'repometer.db'}", workers=1)
    path = tmp_path / "<img src=x onerror=alert(2)>"
    path.mkdir()
    repo = GitRepo(path, git_env(tmp_path))
    repo.git("init", "-q", "--initial-branch=main")
    # 3 + 2 + 2 commits: the first two authors make the contributor absence factor
    authors = [(SCRIPT, "s@example.com")] * 3 + [(IMAGE, "i@example.com")] * 2 + [
        ("Plain", "p@example.com")] * 2  # fmt: skip
    for i, (name, email) in enumerate(authors):
        repo.write("a.py", f"x = {i}\n")
        repo.commit(f"<img src=x onerror=alert(3)> change {i}\n\nCo-authored-by: {CO_AUTHOR}",
                    date=f"2024-0{i + 1}-01T10:00:00+0000",
                    GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email)  # fmt: skip
    store = open_store(settings.database_url)
    try:
        record, _ = add_repository(store, settings, str(path))
        ingest_repository(store, record, settings)
        record = store.get_repository(record.id)
        compute_repository(store, record, settings, list(load_registry()))
    finally:
        store.engine.dispose()
    monkeypatch.setenv("REPOMETER_HOME", str(home))
    monkeypatch.setenv("REPOMETER_DB_URL", settings.database_url)
    monkeypatch.setenv("REPOMETER_WORKERS", "1")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    get_settings.cache_clear()
    st.cache_data.clear()
    main = str(ROOT / "app" / "dashboard" / "main.py")
    try:
        shown: list[str] = []
        for view in ("repositories", "repository", "compare"):
            at = AppTest.from_file(main, default_timeout=60)
            at.query_params["repo"] = record.name
            at.run()
            if view != "repositories":
                at.switch_page(f"views/{view}.py").run()
            assert not at.exception, at.exception
            shown += _markdown_texts(at)
        # shown, escaped: the author's name (in the help of the people factors) and the
        # repository's name
        # the metrics page: the co-author of the commit messages, in a table (plain text)
        at = AppTest.from_file(main, default_timeout=60)
        at.query_params["repo"] = record.name
        at.run()
        at.switch_page("views/metrics.py").run()
        at.selectbox(key="metrics_metric").set_value("contribution_attribution").run()
        assert not at.exception, at.exception
        shown += _markdown_texts(at)
        assert "<b>Bold</b> [link](http://evil.example)" in set(at.dataframe[-1].value["person"])
        # shown, escaped: the authors (in the help of the people factors; git itself drops
        # the angle brackets of an author name) and the repository's name
        everything = "\n".join(shown)
        assert "Authors: scriptalert\\(1\\)/script, " in everything, everything
        assert "\\!\\[x\\]\\(http\\://evil\\.example/p\\.png\\)" in everything, everything
        assert "onerror\\=alert\\(2\\)" in everything, everything
        for text in shown:
            assert not MARKUP.search(text), text
            assert "](http" not in text, text
    finally:
        get_settings.cache_clear()
        st.cache_data.clear()


def _markdown_texts(at: AppTest) -> list[str]:
    """Every string the app hands Streamlit's Markdown renderer: element bodies, labels,
    help tooltips; and none of those elements may allow raw HTML."""
    texts = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "error", "warning",
                 "info", "success", "metric", "expander"):  # fmt: skip
        for element in getattr(at, kind):
            proto = element.proto
            for field in ("body", "label", "help"):
                value = getattr(proto, field, None)
                if isinstance(value, str) and value:
                    texts.append(value)
            assert not getattr(proto, "allow_html", False), proto
    return texts
