"""Flow: ingest one registered repository."""

from __future__ import annotations

from typing import Any

from prefect import flow

from tasks.ingest import ingest


@flow(name="ingest-repository")
def ingest_repository(repository: str) -> dict[str, Any]:
    """Ingest the new history of ``repository`` (an id, name or URL registered before)."""
    return ingest(repository)
