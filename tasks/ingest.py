"""Ingestion as a Prefect task: only a repository identifier crosses the task boundary."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import task

from repometer.ingest import ingest_repository
from repometer.settings import get_settings
from repometer.storage import open_store


@task(name="ingest-repository", task_run_name="ingest {repository}")
def ingest(repository: str) -> dict[str, Any]:
    """Bring one repository's stored history up to date; returns the counts as plain data."""
    settings = get_settings()
    store = open_store(settings.database_url)
    try:
        result = ingest_repository(store, store.get_repository(repository), settings)
    finally:
        store.engine.dispose()
    return asdict(result)
