"""Flow: compute the missing or stale metrics of repositories, spread over the workers."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.futures import as_completed

from flows.ingest import raise_failures
from flows.runtime import report, task_runner
from repometer.compute import registry_for
from repometer.settings import get_settings
from tasks.compute import compute
from tasks.registry import resolve_repositories


def metric_groups(names: list[str], workers: int) -> list[list[str]]:
    """Round-robin groups, one per worker: each group reads the history once."""
    n = max(1, min(workers, len(names)))
    return [names[i::n] for i in range(n) if names[i::n]]


def compute_repositories(
    repo_ids: list[str], metric_names: list[str] | None = None, force: bool = False
) -> list[dict[str, Any]]:
    """Within a flow: compute the metrics of every repository, groups of metrics in parallel.

    A metric that fails is stored with its error; a repository fails only when its tasks do.
    """
    settings = get_settings()
    registry = registry_for(settings)
    names = (
        [registry.get(n).name for n in metric_names] if metric_names else [m.name for m in registry]
    )
    groups = metric_groups(names, settings.workers)
    results = {rid: {"repo_id": rid, "outcomes": [], "error": None} for rid in repo_ids}
    futures = {compute.submit(rid, group, force): rid for rid in repo_ids for group in groups}
    for future in as_completed(list(futures)):
        rid = futures[future]
        try:
            results[rid]["outcomes"].extend(future.result())
        except Exception as exc:
            results[rid]["error"] = results[rid]["error"] or f"{type(exc).__name__}: {exc}"
        report("metrics", rid, len(results[rid]["outcomes"]), len(names))
    order = {name: i for i, name in enumerate(names)}
    for result in results.values():
        result["outcomes"].sort(key=lambda o: order[o["metric"]])
    return list(results.values())


@flow(name="compute-metrics", task_runner=task_runner())
def compute_metrics(
    repository: str, metrics: list[str] | None = None, force: bool = False
) -> dict[str, Any]:
    """Compute the metrics (all by default) whose cached results are missing or stale."""
    (repo_id,) = resolve_repositories([repository])
    return raise_failures(compute_repositories([repo_id], metrics, force), "metrics")[0]
