"""Metric processing: compute what is missing or stale, and cache it in the store.

A result is keyed by (repository, metric, metric version, resolved parameters) and stamped
with the ingested head and generation it was computed from; it is fresh while the
repository's generation is unchanged. A metric that raises has its error stored as its
result, and the others still complete.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from metrics.api import Metric
from metrics.registry import Registry, load_registry
from repometer.context import FanOut, StoreContext
from repometer.errors import RepometerError
from repometer.registry import git_dir_of
from repometer.settings import Settings
from repometer.storage import RepositoryRecord, Store
from repometer.storage.store import ResultRecord


class NotIngestedError(RepometerError):
    """Metrics need an ingested history first."""


class MetricFailedError(RepometerError):
    """A metric raised while computing; its error is stored as its result."""


@dataclass(frozen=True)
class Outcome:
    """What happened to one metric of one repository in a compute run."""

    metric: str
    version: int
    status: str  # "cached", "computed" or "failed"
    seconds: float
    error: str | None = None


def cached_rows(
    store: Store,
    record: RepositoryRecord,
    metric: Metric,
    parameters: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]] | None:
    """A fresh, successful cached result's rows, or None."""
    result = store.get_result(
        record.id, metric.name, metric.version, metric.parameters_key(parameters)
    )
    if is_fresh(result, record) and result is not None and result.status == "ok":
        return result.rows
    return None


def stale_metrics(
    store: Store, record: RepositoryRecord, metrics: Iterable[Metric]
) -> list[Metric]:
    """The metrics (default parameters) without a fresh result: what a compute run would do."""
    fresh = {
        (r.metric, r.version, r.parameters)
        for r in store.list_results(record.id)
        if is_fresh(r, record)
    }
    return [m for m in metrics if (m.name, m.version, m.parameters_key()) not in fresh]


def registry_for(settings: Settings) -> Registry:
    """The metrics of every installed plugin and of the configured plugins directory."""
    return _registry(settings.plugins_dir)


@lru_cache(maxsize=8)
def _registry(plugins_dir: Path | None) -> Registry:
    return load_registry(plugins_dir)


def is_fresh(result: ResultRecord | None, record: RepositoryRecord) -> bool:
    return (
        result is not None and result.generation == record.generation and result.head == record.head
    )


def _require_ingested(record: RepositoryRecord) -> None:
    if record.generation == 0 and record.status != "ok":
        raise NotIngestedError(
            f"{record.name} has not been ingested yet: run `repometer ingest {record.name}`"
        )


def compute_result(
    store: Store,
    record: RepositoryRecord,
    metric: Metric,
    context: StoreContext,
    parameters: Mapping[str, Any] | None = None,
) -> ResultRecord:
    """Compute one metric now and store its rows, or its error."""
    resolved = metric.resolve(parameters)
    key = metric.parameters_key(resolved)
    scoped = context.scoped(resolved["since"], resolved["until"])
    started = time.perf_counter()
    try:
        rows, status, error = metric.compute(scoped, resolved), "ok", None
    except Exception as exc:  # a metric's own failure is its result; the others go on
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        rows, status = None, "failed"
        error = f"{type(exc).__name__}: {exc} (at {frame.filename}:{frame.lineno})"
    result = ResultRecord(
        repo_id=record.id, metric=metric.name, version=metric.version, parameters=key,
        status=status, error=error, head=record.head, generation=record.generation,
        computed_at=datetime.now(UTC), seconds=time.perf_counter() - started, rows=rows,
    )  # fmt: skip
    store.put_result(result)
    return result


def get_or_compute(
    store: Store,
    record: RepositoryRecord,
    settings: Settings,
    metric: Metric,
    parameters: Mapping[str, Any] | None = None,
    *,
    force: bool = False,
) -> tuple[ResultRecord, bool]:
    """The cached result when fresh, else a new one; and whether it was computed now."""
    _require_ingested(record)
    resolved = metric.resolve(parameters)
    cached = store.get_result(
        record.id, metric.name, metric.version, metric.parameters_key(resolved)
    )
    if not force and is_fresh(cached, record):
        assert cached is not None
        return cached, False
    git_dir = git_dir_of(record, settings)
    with StoreContext(
        store, record, git_dir, workers=settings.workers, max_blob_size=settings.max_blob_size
    ) as context:
        return compute_result(store, record, metric, context, resolved), True


def compute_repository(
    store: Store,
    record: RepositoryRecord,
    settings: Settings,
    metrics: Iterable[Metric],
    *,
    force: bool = False,
    progress: Callable[[Outcome], None] | None = None,
    fan_out: FanOut | None = None,
) -> list[Outcome]:
    """Compute each metric (default parameters) that is missing or stale for ``record``."""
    _require_ingested(record)
    git_dir = git_dir_of(record, settings)
    outcomes = []
    with StoreContext(
        store,
        record,
        git_dir,
        workers=settings.workers,
        fan_out=fan_out,
        max_blob_size=settings.max_blob_size,
    ) as context:
        for metric in metrics:
            resolved = metric.resolve({})
            cached = store.get_result(
                record.id, metric.name, metric.version, metric.parameters_key(resolved)
            )
            if not force and is_fresh(cached, record):
                assert cached is not None
                outcome = Outcome(metric.name, metric.version, "cached", 0.0, cached.error)
            else:
                result = compute_result(store, record, metric, context, resolved)
                status = "computed" if result.status == "ok" else "failed"
                outcome = Outcome(metric.name, metric.version, status, result.seconds, result.error)
            outcomes.append(outcome)
            if progress is not None:
                progress(outcome)
    return outcomes
