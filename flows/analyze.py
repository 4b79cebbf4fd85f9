"""Flows: analyse one repository (ingest, then compute what is stale), or all of them."""

from __future__ import annotations

from typing import Any

from prefect import flow

from flows.compute import compute_repositories
from flows.ingest import ingest_repositories, raise_failures
from flows.runtime import task_runner
from tasks.registry import resolve_repositories


def analyze_repositories(
    repo_ids: list[str],
    *,
    ingest: bool = True,
    compute: bool = True,
    metrics: list[str] | None = None,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Within a flow: ingest, then compute the metrics of the repositories that ingested."""
    results = {rid: {"repo_id": rid, "ingest": None, "metrics": None, "error": None}
               for rid in repo_ids}  # fmt: skip
    ready = list(repo_ids)
    if ingest:
        for outcome in ingest_repositories(repo_ids):
            results[outcome["repo_id"]].update(ingest=outcome, error=outcome["error"])
        ready = [rid for rid in repo_ids if not results[rid]["error"]]
    if compute and ready:
        for outcome in compute_repositories(ready, metrics, force):
            results[outcome["repo_id"]].update(metrics=outcome["outcomes"], error=outcome["error"])
    return list(results.values())


@flow(name="analyze-repository", task_runner=task_runner())
def analyze_repository(repository: str) -> dict[str, Any]:
    """Ingest one repository's new history, then compute every stale metric."""
    (repo_id,) = resolve_repositories([repository])
    return raise_failures(analyze_repositories([repo_id]), "analysis")[0]


@flow(name="refresh-all", task_runner=task_runner())
def refresh_all(
    repositories: list[str] | None = None,
    ingest: bool = True,
    compute: bool = True,
    metrics: list[str] | None = None,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Every registered repository (or those named): ingest, then compute, all in parallel."""
    repo_ids = resolve_repositories(repositories)
    results = analyze_repositories(
        repo_ids, ingest=ingest, compute=compute, metrics=metrics, force=force
    )
    return raise_failures(results, "refresh")
