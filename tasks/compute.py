"""Metric tasks: compute a group of metrics of one repository on a worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from prefect import task

from repometer.compute import compute_repository, registry_for
from repometer.context import FanOut, apply_batch
from repometer.settings import get_settings
from repometer.storage import shared_store
from tasks.mirror import mirror_with
from tasks.retry import TRANSIENT_RETRIES


def _apply_on_this_worker(
    repo_id: str, head: str, fn: Callable[..., Any], batch: list[tuple[str, str]]
) -> list[Any]:
    """``apply_batch`` on whichever worker got the batch, with that worker's own mirror
    (workers on other machines do not share the calling worker's paths)."""
    settings = get_settings()
    record = shared_store(settings.database_url).get_repository(repo_id)
    git_dir = str(mirror_with(record, settings, [head]))
    return apply_batch(git_dir, fn, batch, settings.max_blob_size)


def dask_fan_out(repo_id: str, head: str) -> FanOut:
    """Spread per-file batches of one repository over the whole Dask cluster."""

    def fan_out(
        apply: Callable[..., list[Any]], git_dir: str, fn: Callable[..., Any], batches: list
    ) -> list[list[Any]]:
        from distributed import worker_client

        n = len(batches)
        with worker_client() as client:
            futures = client.map(
                _apply_on_this_worker, [repo_id] * n, [head] * n, [fn] * n, batches, pure=False
            )
            return client.gather(futures)

    return fan_out


def _inside_dask_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


@task(name="compute-metrics", task_run_name="metrics {repo_id}", **TRANSIENT_RETRIES)
def compute(repo_id: str, metric_names: list[str], force: bool = False) -> list[dict[str, Any]]:
    """Compute the named metrics that are missing or stale (a metric's own failure is stored
    as its result; only storage trouble fails the task). A worker without the mirror, or
    with one older than the ingested head, clones or fetches it first."""
    settings = get_settings()
    store = shared_store(settings.database_url)
    registry = registry_for(settings)
    record = store.get_repository(repo_id)
    mirror_with(record, settings, [record.head] if record.head else [])
    outcomes = compute_repository(
        store,
        record,
        settings,
        [registry.get(name) for name in metric_names],
        force=force,
        fan_out=dask_fan_out(repo_id, record.head)
        if _inside_dask_worker() and record.head
        else None,
    )
    return [asdict(o) for o in outcomes]
