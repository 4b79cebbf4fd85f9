"""What the dashboard reads and starts: one store per process, short-lived read caches, results
loaded the way every page needs them, and the runs that compute what is missing.

Reads are cached for a few seconds (``st.cache_data``), keyed by the database URL and by the
repository's generation, so that a page with cached results renders at once and a finished
run shows up within seconds. Nothing here draws anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import streamlit as st

from app.runs import run_state, start_run
from app.summaries import repository_summary
from metrics.api import Metric, ParameterError
from metrics.registry import Registry
from repometer import git
from repometer.compute import (
    NotIngestedError,
    get_or_compute,
    is_fresh,
    registry_for,
    stale_metrics,
)
from repometer.errors import RepometerError
from repometer.registry import add_repository, git_dir_of
from repometer.settings import Settings, get_settings
from repometer.storage import RepositoryRecord, Store, open_store
from repometer.storage.store import HistoryFilter, RunRecord
from repometer.targets import Target, UrlPolicy, parse_target

#: seconds a read stays cached: short, so that runs finishing elsewhere show up quickly
READ_TTL = 5
#: metrics that read the files at the head: the date range does not change their result
HEAD_SNAPSHOT = frozenset({"language_distribution", "complexity"})


# -- settings, store, catalogue ------------------------------------------------------------


def settings() -> Settings:
    return get_settings()


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    return open_store(url)


def store() -> Store:
    """The store of the configured database (one engine per process and URL)."""
    return _store(settings().database_url)


def registry() -> Registry:
    return registry_for(settings())


def metric(name: str) -> Metric:
    return registry().get(name)


def clear_caches() -> None:
    """Forget every cached read (after a run finished, or a repository was added)."""
    st.cache_data.clear()


# -- repositories ------------------------------------------------------------------------


@st.cache_data(ttl=READ_TTL, show_spinner=False)
def _records(url: str) -> list[RepositoryRecord]:
    return _store(url).list_repositories()


def repositories() -> list[RepositoryRecord]:
    return _records(settings().database_url)


def find_repository(key: str) -> RepositoryRecord | None:
    for record in repositories():
        if key in (record.id, record.name, record.url):
            return record
    return None


def is_ingested(record: RepositoryRecord) -> bool:
    return record.generation > 0 or record.status == "ok"


@st.cache_data(ttl=READ_TTL, show_spinner=False)
def _overview(url: str, repo_id: str, generation: int, status: str) -> dict[str, Any]:
    s = _store(url)
    record = s.get_repository(repo_id)
    summary = repository_summary(s, record)
    catalogue = list(registry())
    stale = stale_metrics(s, record, catalogue) if is_ingested(record) else catalogue
    failed = [
        r.metric for r in s.list_results(record.id)
        if r.status != "ok" and is_fresh(r, record)
    ]  # fmt: skip
    summary.update(metrics=len(catalogue), fresh=len(catalogue) - len(stale),
                   stale=[m.name for m in stale], failed_metrics=sorted(set(failed)))  # fmt: skip
    return summary


def overview(record: RepositoryRecord) -> dict[str, Any]:
    """``repository_summary`` plus freshness: how many default results are up to date."""
    return _overview(settings().database_url, record.id, record.generation, record.status)


@st.cache_data(ttl=60, show_spinner=False)
def _day_range(url: str, repo_id: str, generation: int) -> tuple[str, str] | None:
    df = _store(url).aggregate_commits(repo_id, ["author_day"], HistoryFilter())
    days = sorted(d for d in df["author_day"].tolist() if d)
    return (days[0], days[-1]) if days else None


def day_range(record: RepositoryRecord) -> tuple[date, date] | None:
    """The first and last author day (UTC) of the stored history."""
    found = _day_range(settings().database_url, record.id, record.generation)
    return (date.fromisoformat(found[0]), date.fromisoformat(found[1])) if found else None


# -- registering ---------------------------------------------------------------------------


class RefusedError(Exception):
    """What the user typed cannot be registered here; the message says why."""


def validate_target(text: str) -> Target:
    """The form check of what the user typed (the host is checked when it is registered)."""
    text = (text or "").strip()
    if not text:
        raise RefusedError("Enter a repository URL (https://, ssh://, git:// or git@host:path).")
    try:
        return parse_target(text, UrlPolicy.for_services(settings()))
    except RepometerError as exc:
        raise RefusedError(str(exc)) from None


def register(text: str, ref: str = "HEAD") -> tuple[RepositoryRecord, bool, RunRecord]:
    """Validate, register (without cloning) and start an analysis: (record, is new, run)."""
    target = validate_target(text)
    s = store()
    try:
        record, new = add_repository(
            s,
            settings(),
            target,
            ref=(ref or "HEAD").strip(),
            clone=False,
            policy=UrlPolicy.for_services(settings()),
        )
    except RepometerError as exc:
        raise RefusedError(str(exc)) from None
    run = start_run(s, settings(), record, "analyze")
    clear_caches()
    return record, new, run


# -- runs --------------------------------------------------------------------------------


def active_run(record: RepositoryRecord) -> RunRecord | None:
    """The newest unfinished run of ``record``, its state brought up to date."""
    s = store()
    for run in s.active_runs(record.id):
        current = run_state(s, run.id)
        if current is not None and not current.finished:
            return current
    return None


def follow(run_id: str) -> RunRecord | None:
    return run_state(store(), run_id)


@st.cache_data(ttl=120, show_spinner=False)
def _reachable(url: str, repo_id: str, head: str | None) -> int | None:
    """Commits reachable from the repository's ref now (what an ingestion will store)."""
    s = _store(url)
    record = s.get_repository(repo_id)
    git_dir = git_dir_of(record, get_settings())
    if not git_dir.exists():
        return None
    try:
        tip = git.resolve_commit(git_dir, record.ref)
        return len(git.rev_list(git_dir, tip)) if tip else 0
    except RepometerError:
        return None


def progress(run: RunRecord) -> tuple[float | None, str]:
    """How far a run is: a fraction (None when unknown) and a line saying what it does."""
    s = store()
    record = s.get_repository(run.repo_id)
    if run.status == "scheduled":
        return None, "waiting to start"
    if record.status in ("new", "ingesting") or (run.kind == "analyze" and not is_ingested(record)):
        if record.status == "new":
            return None, "starting the workers, then fetching the history"
        stored = s.totals(record.id).commits
        total = _reachable(settings().database_url, record.id, record.head)
        if total is None:
            return None, f"ingesting: {stored:,} commits stored"
        return min(
            1.0, stored / total
        ) if total else 1.0, f"ingesting: {stored:,} of {total:,} commits"
    names = run.metrics or [m.name for m in registry()]
    wanted = [metric(n) for n in names if n in registry()]
    stale = {m.name for m in stale_metrics(s, record, wanted)}
    done = len(wanted) - len(stale)
    return (done / len(wanted) if wanted else 1.0), f"computing metrics: {done} of {len(wanted)}"


def _started() -> dict[str, str]:
    return st.session_state.setdefault("repometer_started_runs", {})


def ensure_run(record: RepositoryRecord, stale: list[str]) -> RunRecord | None:
    """Start (or join) the run that brings ``record``'s missing results, once per session and
    generation: a run that ended without producing them is shown, not started again."""
    s = store()
    current = active_run(record)
    if current is not None:
        return current
    key = f"{record.id}:{record.generation}"
    previous = _started().get(key)
    if previous is not None:
        return follow(previous)
    kind = "compute" if is_ingested(record) else "analyze"
    metrics = sorted(set(stale)) if kind == "compute" and stale else None
    run = start_run(s, settings(), record, kind, metrics)
    _started()[key] = run.id
    return run


def started_run(record: RepositoryRecord) -> RunRecord | None:
    """The run this session started for ``record``'s current history, if any."""
    previous = _started().get(f"{record.id}:{record.generation}")
    return follow(previous) if previous is not None else None


def restart_run(record: RepositoryRecord, stale: list[str]) -> RunRecord:
    _started().pop(f"{record.id}:{record.generation}", None)
    run = ensure_run(record, stale)
    assert run is not None
    return run


# -- results -------------------------------------------------------------------------------


@dataclass
class Loaded:
    """A metric's rows as the page should show them."""

    metric: Metric
    rows: list[dict[str, Any]] | None
    fresh: bool
    """Up to date with the ingested history (else the rows, if any, are an older result)."""
    error: str | None = None
    computed_at: str | None = None
    needs_run: bool = False
    """The default result is missing or stale: a compute (or analyze) run brings it."""
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.metric.name


@st.cache_data(ttl=READ_TTL, show_spinner=False)
def _result(
    url: str, repo_id: str, generation: int, head: str | None, name: str, version: int, key: str
) -> dict[str, Any] | None:
    result = _store(url).get_result(repo_id, name, version, key)
    if result is None:
        return None
    return {"rows": result.rows, "status": result.status, "error": result.error,
            "generation": result.generation, "head": result.head,
            "computed_at": result.computed_at.strftime("%Y-%m-%d %H:%M UTC")}  # fmt: skip


def applicable(m: Metric, wanted: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``wanted`` that ``m`` declares (since/until always, exclude_bots and
    period only for metrics that take them); empty values are left to the defaults."""
    names = {p.name for p in m.parameters} | {"since", "until"}
    params = {k: v for k, v in wanted.items() if k in names and v not in (None, "")}
    if m.name in HEAD_SNAPSHOT:
        params.pop("since", None)
        params.pop("until", None)
    return params


def load(record: RepositoryRecord, name: str, params: dict[str, Any] | None = None) -> Loaded:
    """The rows of ``name`` for ``record`` with ``params``.

    A fresh cached result is used as it is. Other parameters than the defaults are computed
    now (history metrics are fast). A default result that is missing or stale (or a
    repository not ingested yet) is shown as cached, marked stale, and flagged for a run.
    """
    m = metric(name)
    params = dict(params or {})
    try:
        key = m.parameters_key(params)
    except ParameterError as exc:
        return Loaded(m, None, False, error=str(exc))
    default = key == m.parameters_key({})
    url = settings().database_url
    cached = _result(url, record.id, record.generation, record.head, m.name, m.version, key)
    fresh = (
        cached is not None
        and cached["generation"] == record.generation
        and cached["head"] == record.head
    )
    if fresh:
        assert cached is not None
        return Loaded(
            m, cached["rows"], True, error=cached["error"], computed_at=cached["computed_at"]
        )
    if not default and is_ingested(record) and record.status != "ingesting":
        try:
            result, _ = get_or_compute(store(), record, _in_process(settings()), m, params)
        except (NotIngestedError, RepometerError) as exc:
            return Loaded(m, None, False, error=str(exc))
        return Loaded(m, result.rows, True, error=result.error,
                      computed_at=result.computed_at.strftime("%Y-%m-%d %H:%M UTC"))  # fmt: skip
    # the default result is missing or stale, or the history is not there yet: what is cached
    notes = []
    if cached is None and not default:
        cached = _result(url, record.id, record.generation, record.head, m.name, m.version,
                         m.parameters_key({}))  # fmt: skip
        if cached is not None:
            notes.append("shown for the whole history with the default parameters")
    rows = cached["rows"] if cached is not None else None
    return Loaded(m, rows, False, error=cached["error"] if cached else None,
                  computed_at=cached["computed_at"] if cached else None, needs_run=True,
                  notes=notes)  # fmt: skip


def _in_process(s: Settings) -> Settings:
    """On-demand computations run in the dashboard's process, without a worker pool."""
    return s.model_copy(update={"workers": 1})


def parameters_text(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True) if params else "defaults"
