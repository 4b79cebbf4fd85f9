"""The REST API: register repositories, follow their runs, read cached metric results.

``create_app()`` builds the FastAPI application (``repometer api`` serves it with uvicorn).
Reads are open; when ``REPOMETER_API_TOKEN`` is set, writes need ``Authorization: Bearer``.
Every error is JSON ``{"error": {"code": ..., "message": ...}}``. List and rows endpoints
answer CSV when the request's ``Accept`` header prefers ``text/csv``.

A metric result is served from the results cache. A missing or stale result with default
parameters starts a run (the answer is ``202`` with the run to poll and the stale rows, if
any); with other parameters it is computed during the request, as ``repometer show`` does
(a compute run only computes default parameters).
"""

import csv
import hmac
import io
import json
import logging
import math
import re
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

import pydantic_core
import sqlalchemy as sa
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from limits import RateLimitItem
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import runs as runs_module
from app.summaries import repository_summary
from metrics.api import Metric, ParameterError
from metrics.registry import UnknownMetricError
from repometer.compute import get_or_compute, is_fresh, registry_for
from repometer.errors import (
    BlockedAddressError,
    GitCommandError,
    NotAGitRepositoryError,
    RefusedTargetError,
    StorageError,
    UnknownRepositoryError,
    redact_credentials,
)
from repometer.registry import add_repository
from repometer.settings import Settings, get_settings
from repometer.storage import RepositoryRecord, Store, open_store
from repometer.storage.store import ResultRecord, RunRecord
from repometer.targets import UrlPolicy, looks_remote

log = logging.getLogger("repometer.api")

StartRun = Callable[..., RunRecord]
"""``start_run(store, settings, record, kind, metrics=None) -> RunRecord`` (``app.runs``)."""

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REF_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$"
#: since/until: a calendar date or empty (checked by the endpoint, with the metric's other
#: parameters, so that every parameter error has the same shape)
_DATE_SCHEMA = {"anyOf": [{"format": "date"}, {"maxLength": 0}]}
_MAX_KEY = 1024  # longest repository key looked up (ids are 16 characters)
_MAX_VALUE = 4096  # longest parameter value

# -- response and request models ---------------------------------------------------------------

_RUN_EXAMPLE = {
    "id": "5d0c4bb2a6e94a1c9f3e0b7a2d4c6e81",
    "repository": "9b1f0c3e5a7d2468",
    "kind": "analyze",
    "metrics": None,
    "status": "running",
    "error": None,
    "prefect_flow_run_id": None,
    "created_at": "2026-01-15T10:00:00+00:00",
    "updated_at": "2026-01-15T10:00:02+00:00",
}
_REPOSITORY_EXAMPLE = {
    "id": "9b1f0c3e5a7d2468",
    "name": "pallets/flask",
    "url": "https://github.com/pallets/flask.git",
    "ref": "HEAD",
    "head": "2fec0b206c6e83ea813ab26597e15c96fab08be7",
    "status": "ok",
    "error": None,
    "commits": 5412,
    "merges": 1203,
    "authors": 843,
    "lines_added": 182735,
    "lines_deleted": 121901,
    "added_at": "2026-01-15T10:00:00+00:00",
    "last_ingested": "2026-01-15T10:01:12+00:00",
    "run": None,
}


class ErrorDetail(BaseModel):
    code: str = Field(description="A stable, machine-readable error code.")
    message: str = Field(description="What went wrong, in one line.")


class ErrorOut(BaseModel):
    """Every error the API returns."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"error": {"code": "unknown_metric", "message": "unknown metric: cmmits"}}]
        }
    )
    error: ErrorDetail


class RunOut(BaseModel):
    """A run analysing a repository (ingest, then compute) or computing some of its metrics."""

    model_config = ConfigDict(json_schema_extra={"examples": [_RUN_EXAMPLE]})
    id: str
    repository: str = Field(description="Id of the repository the run works on.")
    kind: Literal["analyze", "compute"]
    metrics: list[str] | None = Field(description="Metrics a compute run computes (null: all).")
    status: Literal["scheduled", "running", "completed", "failed"]
    error: str | None
    prefect_flow_run_id: str | None = Field(
        description="The Prefect flow run, when a Prefect deployment runs it."
    )
    created_at: datetime
    updated_at: datetime


class RepositoryOut(BaseModel):
    """A registered repository, its ingestion state and its totals (as git reports them)."""

    model_config = ConfigDict(json_schema_extra={"examples": [_REPOSITORY_EXAMPLE]})
    id: str
    name: str
    url: str
    ref: str
    head: str | None = Field(description="The ingested head commit (null before ingestion).")
    status: Literal["new", "ingesting", "ok", "failed"] = Field(
        description="new: registered, never ingested; ingesting: a run is ingesting it; "
        "ok: ingested; failed: the last ingestion failed (see error)."
    )
    error: str | None
    commits: int
    merges: int
    authors: int
    lines_added: int
    lines_deleted: int
    added_at: datetime
    last_ingested: datetime | None
    run: RunOut | None = Field(description="The run working on it now, if any.")


class RepositoryIn(BaseModel):
    """A repository to register: a remote URL (https, ssh, git or scp-like ``host:path``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"url": "https://github.com/pallets/flask.git"},
                {"url": "git@gitlab.com:gitlab-org/gitaly.git", "ref": "main"},
            ]
        },
    )
    url: str = Field(min_length=1, max_length=2048, description="URL of the repository.")
    ref: str = Field(
        default="HEAD",
        min_length=1,
        max_length=255,
        pattern=_REF_PATTERN,
        description="Ingest what this ref reaches (a newly registered repository only).",
    )


class RegistrationOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "repository": {**_REPOSITORY_EXAMPLE, "head": None, "status": "ingesting",
                                   "commits": 0, "merges": 0, "authors": 0, "lines_added": 0,
                                   "lines_deleted": 0, "last_ingested": None,
                                   "run": {**_RUN_EXAMPLE, "status": "scheduled"}},
                    "run": {**_RUN_EXAMPLE, "status": "scheduled"},
                }
            ]
        }
    )  # fmt: skip
    repository: RepositoryOut
    run: RunOut | None = Field(
        description="The run ingesting it (null: already registered and ingested)."
    )


class ParameterOut(BaseModel):
    name: str
    type: Literal["int", "float", "str", "bool", "date"]
    default: Any
    choices: list[Any] | None


class MetricOut(BaseModel):
    """A metric of the catalogue (built-in or plugin)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "commits", "version": 1, "description": "Commits per period.",
                    "unit": "commits", "shape": "series", "entity": None,
                    "parameters": [
                        {"name": "period", "type": "str", "default": "day",
                         "choices": ["day", "week", "month"]},
                        {"name": "exclude_bots", "type": "bool", "default": False, "choices": None},
                        {"name": "since", "type": "date", "default": "", "choices": None},
                        {"name": "until", "type": "date", "default": "", "choices": None},
                    ],
                    "plugin": "builtin (metrics.builtin)",
                }
            ]
        }
    )  # fmt: skip
    name: str
    version: int
    description: str
    unit: str
    shape: Literal["series", "table", "scalar"]
    entity: str | None
    parameters: list[ParameterOut]
    plugin: str | None


class ComputedFrom(BaseModel):
    head: str | None = Field(description="The ingested head the result was computed from.")
    generation: int = Field(description="The ingestion generation it was computed from.")
    computed_at: datetime


class MetricResultOut(BaseModel):
    """A fresh cached result. ``status`` is ``failed`` (with ``error`` and null ``rows``) when
    the metric raised on this repository's history: that is a result too, cached like rows."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "repository": "9b1f0c3e5a7d2468", "repository_name": "pallets/flask",
                    "metric": "commits", "version": 1,
                    "parameters": {"period": "month", "exclude_bots": False,
                                   "since": "", "until": ""},
                    "status": "ok", "error": None,
                    "computed_from": {"head": "2fec0b206c6e83ea813ab26597e15c96fab08be7",
                                      "generation": 3,
                                      "computed_at": "2026-01-15T10:01:20+00:00"},
                    "rows": [{"period": "2026-01", "value": 42}],
                }
            ]
        }
    )  # fmt: skip
    repository: str = Field(description="Repository id.")
    repository_name: str
    metric: str
    version: int
    parameters: dict[str, Any] = Field(description="Every parameter, defaults filled in.")
    status: Literal["ok", "failed"]
    error: str | None
    computed_from: ComputedFrom
    rows: list[dict[str, Any]] | None


class PendingResultOut(BaseModel):
    """No fresh result yet: a run is computing it. Poll ``Location`` (``GET /runs/{id}``),
    then ask again."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"run": {**_RUN_EXAMPLE, "kind": "compute",
                                                  "metrics": ["commits"]}, "stale": None}]}
    )  # fmt: skip
    run: RunOut
    stale: list[dict[str, Any]] | None = Field(
        description="The rows of the last result computed from older history, if any."
    )


# -- errors ------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


_DESCRIPTIONS = {
    401: "A write without the API token (only when REPOMETER_API_TOKEN is set).",
    404: "Unknown repository, metric or run.",
    413: "A request body over 64 KiB.",
    422: "Invalid request: malformed body, refused URL, unknown or ill-typed parameter.",
    429: "Too many registrations from this client (REPOMETER_API_REGISTRATION_RATE); "
    "Retry-After says in how many seconds to try again.",
    500: "Internal error (the message never carries details).",
    503: "The database or the run launcher is unavailable.",
}


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": ErrorOut, "description": _DESCRIPTIONS[s]} for s in (*statuses, 500, 503)}


def _error_body(code: str, message: str) -> bytes:
    return _dumps({"error": {"code": code, "message": message}})


def _error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return _JSON(_error_body(code, message), status_code=status, headers=dict(headers or {}))


_HTTP_CODES = {
    404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 413: "body_too_large",
}  # fmt: skip


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        loc = [str(p) for p in error.get("loc", ())]
        where = ".".join(loc[1:] if len(loc) > 1 else loc)
        message = error.get("msg", "invalid")
        parts.append(f"{where}: {message}" if where else message)
    return "invalid request: " + "; ".join(parts)


def _allowed_methods(app: FastAPI, request: Request) -> list[str]:
    methods: set[str] = set()
    for route in app.router.routes:
        match, _ = route.matches(request.scope)
        if match is Match.PARTIAL:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> Response:
        return _error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> Response:
        return _error_response(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # FastAPI: a body that is not even text ("error parsing")
            return _error_response(422, "invalid_request", f"invalid request: {exc.detail}")
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names only the first route's methods
            headers["Allow"] = ", ".join(_allowed_methods(app, request))
        return _error_response(exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(StorageError)
    async def storage_error(_request: Request, exc: StorageError) -> Response:
        log.error("storage error: %s", exc)
        return _error_response(503, "storage_unavailable", "the database is unavailable")

    # A backstop only: _Guard answers (and logs) the exceptions the routes let through, so that
    # Starlette does not re-raise them to the server, which would log the raw traceback.
    @app.exception_handler(Exception)
    async def internal_error(_request: Request, exc: Exception) -> Response:
        log.error("internal error", exc_info=exc)
        return _error_response(500, "internal_error", "internal server error")


# -- guards: secrets in logs, request rate and size, unexpected errors -------------------------


class _Redactor(logging.Filter):
    """Masks the secrets the API knows (database password, API token) and any URL's
    credentials in every record of its logger, tracebacks included: a driver or launcher error
    may quote a connection string."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def add(self, *secrets: str | None) -> None:
        for secret in secrets:
            if secret:
                self.secrets |= {secret, urllib.parse.quote(secret, safe="")}

    def redact(self, text: str) -> str:
        text = redact_credentials(text)
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + "".join(traceback.format_exception(record.exc_info[1])).rstrip()
        elif record.exc_text:
            text += "\n" + record.exc_text
        record.msg, record.args = self.redact(text), ()
        record.exc_info, record.exc_text = None, None
        return True


_REDACTOR = _Redactor()
log.addFilter(_REDACTOR)

#: largest request body read (a registration is well under 3 KiB)
MAX_BODY_BYTES = 64 * 1024


def _route_path(scope: Scope) -> str:
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


async def _read_capped(receive: Receive) -> list[Message] | None:
    """The messages of a body sent without Content-Length; None once it passes the cap."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            return None
        if not message.get("more_body", False):
            return messages


class _Guard:
    """What is checked before routing and parsing, and the last resort for errors.

    * ``POST /repositories``: at most ``limit`` attempts per client address in a moving
      window, whatever their answer: refused URLs, malformed bodies and missing tokens count
      too, since probing is what the limit is for (and counting before parsing is cheapest).
      The count is per process (memory), behind a proxy per proxy unless the server is told
      to trust its X-Forwarded-For (uvicorn's ``--forwarded-allow-ips``).
    * A body over ``MAX_BODY_BYTES`` is refused (413) unread: by its Content-Length, or by
      counting one streamed without it.
    * An exception no handler answered becomes a bare 500, logged (redacted) here: left to
      Starlette, it would be re-raised to the server, which logs its raw traceback.
    """

    def __init__(self, app: ASGIApp, limit: RateLimitItem) -> None:
        self.app = app
        self.limit = limit
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope) or await self._oversized(scope, receive)
        if isinstance(refusal, Response):
            await refusal(scope, receive, send)
            return
        if refusal is not None:  # a body read ahead: replay it
            buffered = refusal

            async def replay() -> Message:
                return buffered.pop(0) if buffered else await receive()

            receive = replay
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.error("internal error on %s %s", scope["method"], _route_path(scope), exc_info=exc)
            if not started:
                await _error_response(500, "internal_error", "internal server error")(
                    scope, receive, send
                )

    def _refusal(self, scope: Scope) -> Response | None:
        if scope["method"] != "POST" or _route_path(scope) != "/repositories":
            return None
        client = scope.get("client")
        who = client[0] if client else "unknown"
        if self.limiter.hit(self.limit, "register", who):
            return None
        reset = self.limiter.get_window_stats(self.limit, "register", who).reset_time
        retry = max(1, math.ceil(reset - time.time()))
        return _error_response(
            429, "rate_limited",
            f"too many registrations from this client (at most {self.limit}): "
            f"retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )  # fmt: skip

    async def _oversized(self, scope: Scope, receive: Receive) -> Response | list[Message] | None:
        length = Headers(scope=scope).get("content-length")
        if length is None:
            messages = await _read_capped(receive)
            return _too_large() if messages is None else messages
        if not length.strip().isdigit():
            return _error_response(422, "invalid_request", "invalid request: bad Content-Length")
        return _too_large() if int(length) > MAX_BODY_BYTES else None


def _too_large() -> Response:
    return _error_response(
        413, "body_too_large", f"the request body is over {MAX_BODY_BYTES // 1024} KiB"
    )


# -- encoding ----------------------------------------------------------------------------------


def _dumps(content: Any) -> bytes:
    # non-finite floats become null: metric rows may hold them, and JSON has no such numbers
    return pydantic_core.to_json(content, inf_nan_mode="null")


class _JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return content if isinstance(content, bytes) else _dumps(content)


_CSV_TYPE = "text/csv; charset=utf-8"


def _media_ranges(accept: str) -> Iterator[tuple[str, str, float]]:
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        kind, _, subtype = media.lower().partition("/")
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        if kind:
            yield kind, subtype or "*", q if math.isfinite(q) else 0.0


def _quality(ranges: list[tuple[str, str, float]], kind: str, subtype: str) -> float:
    """The q of the most specific media range matching ``kind/subtype`` (0: not acceptable)."""
    best, specificity = 0.0, -1
    for k, s, q in ranges:
        if (k, s) == (kind, subtype):
            level = 2
        elif k == kind and s == "*":
            level = 1
        elif k == "*" and s == "*":
            level = 0
        else:
            continue
        if level > specificity:
            best, specificity = q, level
    return best


def wants_csv(request: Request) -> bool:
    """True when the Accept header prefers text/csv to application/json (ties: JSON)."""
    accept = request.headers.get("accept")
    if not accept or "text/" not in accept.lower():
        return False
    ranges = list(_media_ranges(accept))
    return _quality(ranges, "text", "csv") > _quality(ranges, "application", "json")


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _inert(text: str) -> str:
    """Text a spreadsheet would run as a formula (= + - @, or a tab or CR before one) behind
    a single quote, as OWASP advises; a plain number (``-3``, ``-0.5``) stays as it is."""
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, (list, dict)):
        return _dumps(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def to_csv(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Rows as CSV (RFC 4180): a header of every key in first-seen order, lists and objects
    as JSON, booleans as true/false, null as an empty cell; text that a spreadsheet would take
    for a formula behind a single quote (rows carry author names, paths, commit data)."""
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    if not columns:
        return ""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_inert(str(c)) for c in columns])
    for row in rows:
        cells = (_cell(row.get(c)) for c in columns)
        writer.writerow([_inert(v) if isinstance(v, str) else v for v in cells])
    return buffer.getvalue()


def _csv_response(rows: list[dict[str, Any]], columns: list[str] | None = None) -> Response:
    return Response(to_csv(rows, columns), media_type=_CSV_TYPE)


def _with_csv(model: Any, description: str) -> dict[str, Any]:
    return {
        "model": model,
        "description": description,
        "content": {"text/csv": {"schema": {"type": "string"},
                                 "example": "period,value\r\n2026-01,42\r\n"}},
    }  # fmt: skip


# -- presenting records ------------------------------------------------------------------------


def run_out(run: RunRecord) -> dict[str, Any]:
    return {
        "id": run.id, "repository": run.repo_id, "kind": run.kind, "metrics": run.metrics,
        "status": run.status, "error": run.error, "prefect_flow_run_id": run.prefect_flow_run_id,
        "created_at": run.created_at.isoformat(), "updated_at": run.updated_at.isoformat(),
    }  # fmt: skip


def _ingested(record: RepositoryRecord) -> bool:
    """Whether metrics can be computed (``repometer.compute`` refuses otherwise)."""
    return not (record.generation == 0 and record.status != "ok")


def _check_key(key: str) -> None:
    if len(key) > _MAX_KEY or _CONTROL.search(key):
        raise ApiError(404, "unknown_repository", "unknown repository")


# -- the application ---------------------------------------------------------------------------


class _Api:
    """What the endpoints share: settings, one store, the metric registry, the run launcher."""

    def __init__(self, settings: Settings, start_run: StartRun) -> None:
        self.settings = settings
        self.store: Store = open_store(settings.database_url)
        self.registry = registry_for(settings)
        self.start_run_fn = start_run
        self.default_keys = {m.name: m.parameters_key() for m in self.registry}
        self.registering = threading.Lock()
        # synchronous computations (non-default parameters) at once; more wait their turn
        self.computing = threading.BoundedSemaphore(max(1, min(settings.workers, 4)))

    # -- lookups

    def repository(self, key: str) -> RepositoryRecord:
        _check_key(key)
        try:
            record = self.store.find_repository(key)
        except UnknownRepositoryError as exc:  # an ambiguous name
            raise ApiError(404, "unknown_repository", str(exc)) from None
        if record is None:
            raise ApiError(404, "unknown_repository", f"unknown repository: {key}")
        return record

    def metric(self, name: str) -> Metric:
        try:
            return self.registry.get(name)
        except UnknownMetricError:
            shown = name if len(name) <= 100 and not _CONTROL.search(name) else "(invalid name)"
            raise ApiError(404, "unknown_metric", f"unknown metric: {shown}") from None

    def run(self, run_id: str) -> RunRecord | None:
        """The run, its state refreshed; the stored state when its launcher cannot be asked."""
        try:
            return runs_module.run_state(self.store, run_id)
        except StorageError:
            raise
        except Exception as exc:  # noqa: BLE001 (e.g. the Prefect API is unreachable)
            log.warning("cannot refresh run %s: %s", run_id, exc)
            return self.store.get_run(run_id)

    def active_run(self, record: RepositoryRecord) -> RunRecord | None:
        for run in self.store.active_runs(record.id):
            current = self.run(run.id)
            if current is not None and not current.finished:
                return current
        return None

    def summary(self, record: RepositoryRecord) -> dict[str, Any]:
        summary = repository_summary(self.store, record)
        run = self.active_run(record)
        if run is not None and summary["status"] == "new":
            summary["status"] = "ingesting"
        summary["run"] = run_out(run) if run is not None else None
        return summary

    def start_run(
        self, record: RepositoryRecord, kind: str, metrics: list[str] | None = None
    ) -> RunRecord:
        try:
            return self.start_run_fn(self.store, self.settings, record, kind, metrics=metrics)
        except StorageError:
            raise
        except Exception as exc:
            log.error("cannot start a %s run of %s", kind, record.id, exc_info=exc)
            raise ApiError(503, "run_not_started", "the run could not be started") from None

    # -- parameters

    def resolve(self, metric: Metric, query: Any) -> dict[str, Any]:
        given: dict[str, str] = {}
        for key, value in query.multi_items():
            if key in given:
                raise ApiError(422, "invalid_parameter", f"parameter {key!r} is given twice")
            if _CONTROL.search(key) or _CONTROL.search(value) or len(value) > _MAX_VALUE:
                raise ApiError(422, "invalid_parameter", f"parameter {key[:100]!r}: invalid value")
            given[key] = value
        try:
            resolved = metric.resolve(given)
        except ParameterError as exc:
            raise ApiError(422, "invalid_parameter", str(exc)) from None
        return resolved


def _rows_json(text: str | None) -> bytes:
    """Stored rows (JSON text) as response bytes: as they are, unless they hold the NaN or
    Infinity that Python's json writes and JSON lacks (then re-encoded, as null)."""
    if text is None:
        return b"null"
    data = text.encode()
    if b"NaN" in data or b"Infinity" in data:
        return _dumps(json.loads(text))
    return data


def _result_response(
    record: RepositoryRecord,
    metric: Metric,
    params: dict[str, Any],
    result: ResultRecord,
    rows_text: str | None,
) -> Response:
    """The result as JSON; the rows are spliced in as stored (no parsing, no re-encoding)."""
    head = _dumps({
        "repository": record.id, "repository_name": record.name, "metric": metric.name,
        "version": metric.version, "parameters": params, "status": result.status,
        "error": result.error,
        "computed_from": {"head": result.head, "generation": result.generation,
                          "computed_at": result.computed_at.isoformat()},
    })  # fmt: skip
    rows = _rows_json(rows_text) if result.status == "ok" else b"null"
    return _JSON(b"".join((head[:-1], b',"rows":', rows, b"}")))


def _answer(
    request: Request,
    record: RepositoryRecord,
    metric: Metric,
    params: dict[str, Any],
    result: ResultRecord,
    text: str | None,
) -> Response:
    if result.status == "ok" and wants_csv(request):
        return _csv_response(json.loads(text) if text is not None else [])
    return _result_response(record, metric, params, result, text)


def _missing_result(
    api: _Api,
    record: RepositoryRecord,
    metric: Metric,
    params: dict[str, Any],
    key: str,
    result: ResultRecord | None,
    text: str | None,
    request: Request,
) -> Response:
    """No fresh result: start a run (default parameters, or a repository never ingested:
    202), or compute it now (other parameters: 200)."""
    if key == api.default_keys[metric.name] or not _ingested(record):
        if _ingested(record):
            run = api.start_run(record, "compute", [metric.name])
        else:
            run = api.start_run(record, "analyze")
        stale = text if result is not None and result.status == "ok" else None
        body = b"".join((b'{"run":', _dumps(run_out(run)), b',"stale":', _rows_json(stale), b"}"))
        return _JSON(body, status_code=202, headers={"Location": f"/runs/{run.id}"})
    with api.computing:
        computed, _ = get_or_compute(api.store, record, api.settings, metric, params)
    text = json.dumps(computed.rows) if computed.rows is not None else None
    return _answer(request, record, metric, params, computed, text)


def create_app(settings: Settings | None = None, *, start_run: StartRun | None = None) -> FastAPI:
    """The REST API over ``settings``' store (default: the environment's settings).

    ``start_run`` launches runs (default ``app.runs.start_run``: a Prefect deployment run, or
    a local background process).
    """
    settings = settings or get_settings()
    limit = settings.registration_limit
    try:
        _REDACTOR.add(sa.make_url(settings.database_url).password, settings.api_token)
    except sa.exc.ArgumentError:
        _REDACTOR.add(settings.database_url, settings.api_token)  # unparsable: mask it whole
    api = _Api(settings, start_run or runs_module.start_run)
    metric_names = sorted(m.name for m in api.registry)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        yield
        api.store.engine.dispose()

    try:
        package_version = version("repometer")
    except PackageNotFoundError:  # pragma: no cover
        package_version = "0"
    app = FastAPI(
        title="repometer",
        version=package_version,
        summary="Git history metrics: register repositories, follow runs, read cached metrics.",
        description=_DESCRIPTION,
        openapi_tags=[
            {"name": "repositories", "description": "Register repositories and see their state."},
            {"name": "metrics", "description": "The metric catalogue and cached results."},
            {"name": "runs", "description": "Runs started on your behalf: poll them."},
        ],
        lifespan=lifespan,
    )
    app.state.api = api
    _install_error_handlers(app)
    app.add_middleware(_Guard, limit=limit)

    write_dependencies = []
    write_errors: tuple[int, ...] = ()
    if settings.api_token:
        write_dependencies = [Depends(_token_check(settings.api_token))]
        write_errors = (401,)

    # -- repositories

    @app.post(
        "/repositories",
        tags=["repositories"],
        summary="Register a repository and start analysing it",
        description=(
            "Validates the URL, registers the repository (without cloning: its first run "
            "mirrors it) and starts a run that ingests it and computes the catalogue. A "
            "repository registered before is returned as it is (200); a new run starts only "
            "if it was never ingested. Local paths are refused unless "
            "REPOMETER_ALLOW_LOCAL_PATHS is set."
        ),
        status_code=201,
        response_model=RegistrationOut,
        dependencies=write_dependencies,
        responses={
            201: {"description": "Registered; `run` ingests it.", "headers": _LOCATION},
            200: {
                "model": RegistrationOut,
                "description": "Already registered.",
                "headers": _LOCATION,
            },
            **_errors(*write_errors, 413, 422),
            429: {"model": ErrorOut, "description": _DESCRIPTIONS[429], "headers": _RETRY_AFTER},
        },
    )
    def register(body: RepositoryIn, response: Response) -> Any:
        url = body.url
        if _CONTROL.search(url):
            raise ApiError(422, "refused_target", "refused: the URL contains control characters")
        policy = UrlPolicy.for_services(settings)
        if not looks_remote(url) and not policy.local_paths:
            raise ApiError(422, "local_path_refused", "local paths are not accepted by the API")
        with api.registering:
            try:
                record, created = add_repository(
                    api.store, settings, url, ref=body.ref, clone=False, policy=policy
                )
            except BlockedAddressError as exc:
                raise ApiError(422, "blocked_address", str(exc)) from None
            except (RefusedTargetError, NotAGitRepositoryError) as exc:
                raise ApiError(422, "refused_target", str(exc)) from None
            except GitCommandError as exc:  # a local repository without that ref
                raise ApiError(422, "invalid_ref", str(exc)) from None
            run = api.start_run(record, "analyze") if created or not _ingested(record) else None
        response.status_code = 201 if created else 200
        response.headers["Location"] = f"/repositories/{record.id}"
        return {"repository": api.summary(record), "run": run_out(run) if run else None}

    @app.get(
        "/repositories",
        tags=["repositories"],
        summary="List registered repositories",
        response_model=list[RepositoryOut],
        responses={200: _with_csv(list[RepositoryOut], "Every repository (CSV: one per line).")},
    )
    def list_repositories(request: Request) -> Any:
        summaries = [api.summary(r) for r in api.store.list_repositories()]
        if wants_csv(request):
            for s in summaries:
                run = s.pop("run")
                s["run_id"], s["run_status"] = (run["id"], run["status"]) if run else (None, None)
            return _csv_response(summaries, _REPOSITORY_CSV_COLUMNS)
        return summaries

    @app.get(
        "/repositories/{repo_id}",
        tags=["repositories"],
        summary="One repository",
        response_model=RepositoryOut,
        responses=_errors(404),
    )
    def get_repository(repo_id: str = Path(description="Repository id.")) -> Any:
        return api.summary(api.repository(repo_id))

    # -- metrics

    @app.get(
        "/metrics",
        tags=["metrics"],
        summary="The metric catalogue",
        response_model=list[MetricOut],
        responses={200: _with_csv(list[MetricOut], "Every metric (CSV: parameters as JSON).")},
    )
    def list_metrics(request: Request) -> Any:
        described = [m.describe() for m in api.registry]
        if wants_csv(request):
            return _csv_response(described)  # parameters as JSON
        return described

    @app.get(
        "/metrics/{name}",
        tags=["metrics"],
        summary="One metric",
        response_model=MetricOut,
        responses=_errors(404),
    )
    def get_metric(
        name: str = Path(description="Metric name.", json_schema_extra={"enum": metric_names}),
    ) -> Any:
        return api.metric(name).describe()

    @app.get(
        "/repositories/{repo_id}/metrics/{name}",
        tags=["metrics"],
        summary="A metric's result for a repository",
        description=(
            "Query parameters are the metric's parameters (see `GET /metrics/{name}`; every "
            "metric takes `since` and `until`). A fresh cached result answers 200 (CSV of its "
            "rows with `Accept: text/csv`); a metric that failed on this history answers 200 "
            "with `status: failed` and the error. Otherwise, with default parameters, a run is "
            "started (an analysis when the repository was never ingested) and the answer is 202 "
            "with the run, `Location: /runs/{id}` and the stale rows if any; with other "
            "parameters the result is computed during the request (200), once the repository "
            "is ingested."
        ),
        response_model=MetricResultOut,
        responses={
            200: _with_csv(MetricResultOut, "A fresh result (CSV: its rows)."),
            202: {
                "model": PendingResultOut,
                "headers": _LOCATION,
                "description": "No fresh result: a run computes it; poll Location.",
            },
            **_errors(404, 422),
        },
    )
    async def metric_result(
        request: Request,
        repo_id: str = Path(description="Repository id."),
        name: str = Path(description="Metric name.", json_schema_extra={"enum": metric_names}),
        since: str = Query(
            "",
            description="First author day (UTC), inclusive; empty: no limit.",
            json_schema_extra=_DATE_SCHEMA,
            examples=["2024-01-01"],
        ),
        until: str = Query(
            "",
            description="Last author day (UTC), inclusive; empty: no limit.",
            json_schema_extra=_DATE_SCHEMA,
            examples=["2024-12-31"],
        ),
    ) -> Any:
        # the cached answer is a few quick reads: served on the event loop (no thread hop,
        # requests answered in arrival order); starting a run or computing goes to a thread
        record = api.repository(repo_id)
        metric = api.metric(name)
        params = api.resolve(metric, request.query_params)
        key = metric.parameters_key(params)
        found = api.store.get_result_text(record.id, metric.name, metric.version, key)
        result, text = found if found is not None else (None, None)
        if result is None or not is_fresh(result, record):
            return await run_in_threadpool(
                _missing_result, api, record, metric, params, key, result, text, request
            )
        return _answer(request, record, metric, params, result, text)

    # -- runs

    @app.get(
        "/runs/{run_id}",
        tags=["runs"],
        summary="A run and its state",
        response_model=RunOut,
        responses=_errors(404),
    )
    def get_run(run_id: str = Path(description="Run id.")) -> Any:
        run = api.run(run_id) if _RUN_ID.match(run_id) else None
        if run is None:
            raise ApiError(404, "unknown_run", "unknown run")
        return run_out(run)

    return app


def _token_check(token: str) -> Callable[..., None]:
    bearer = HTTPBearer(
        auto_error=False, description="The value of REPOMETER_API_TOKEN (writes only)."
    )
    expected = token.encode()

    def require_token(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        given = credentials.credentials.encode() if credentials is not None else b""
        if not hmac.compare_digest(given, expected):
            raise ApiError(
                401, "unauthorized", "this endpoint needs Authorization: Bearer <token>",
                headers={"WWW-Authenticate": "Bearer"},
            )  # fmt: skip

    return require_token


_LOCATION = {"Location": {"description": "Where to follow up.", "schema": {"type": "string"}}}
_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer", "minimum": 1}}
}

_REPOSITORY_CSV_COLUMNS = [
    "id", "name", "url", "ref", "head", "status", "error", "commits", "merges", "authors",
    "lines_added", "lines_deleted", "added_at", "last_ingested", "run_id", "run_status",
]  # fmt: skip

_DESCRIPTION = """
Register git repositories, follow the runs that ingest them, and read cached metric results.

* Reads are open. When `REPOMETER_API_TOKEN` is set, writes (`POST`) need
  `Authorization: Bearer <token>`.
* Errors are always `{"error": {"code": "...", "message": "..."}}`.
* `GET /repositories`, `GET /metrics` and metric results answer CSV when `Accept` prefers
  `text/csv`.
"""

__all__ = ["create_app", "to_csv", "wants_csv"]
