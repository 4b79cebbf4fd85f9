"""Ingestion tasks: plan, extract a chunk of commits, finish. Only identifiers cross."""

from __future__ import annotations

from prefect import task

from repometer.ingest import (
    IngestPlan,
    finish_ingestion,
    ingest_commits,
    plan_ingestion,
    recording_failure,
)
from repometer.settings import get_settings
from repometer.storage import Store, shared_store
from tasks.mirror import mirror_with
from tasks.retry import TRANSIENT_RETRIES


def _store() -> Store:
    return shared_store(get_settings().database_url)


@task(name="plan-ingestion", task_run_name="plan {repo_id}", **TRANSIENT_RETRIES)
def plan(repo_id: str) -> IngestPlan:
    """Fetch the repository and list the commits to extract (the caller holds its lock)."""
    store = _store()
    return plan_ingestion(store, store.get_repository(repo_id), get_settings())


@task(name="extract-commits", task_run_name="extract {repo_id}", **TRANSIENT_RETRIES)
def extract(repo_id: str, shas: list[str]) -> int:
    """Extract and store some commits; a worker without the mirror clones it first, one
    whose mirror lacks the commits fetches."""
    settings = get_settings()
    store = _store()
    with recording_failure(store, repo_id):
        git_dir = mirror_with(store.get_repository(repo_id), settings, shas)
        return ingest_commits(
            store, repo_id, git_dir, shas, batch_size=settings.batch_size,
            rename_limit=settings.rename_limit, max_blob_size=settings.max_blob_size,
        )  # fmt: skip


@task(name="finish-ingestion", task_run_name="finish {plan.repo_id}", **TRANSIENT_RETRIES)
def finish(plan: IngestPlan, added: int) -> None:
    """Advance the repository's watermark once every planned commit is stored."""
    finish_ingestion(_store(), plan, added)
