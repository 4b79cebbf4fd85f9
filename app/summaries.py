"""What front-ends show about a repository, computed once for the CLI, the API and the dashboard."""

from __future__ import annotations

from typing import Any

from repometer.storage import RepositoryRecord, Store


def repository_summary(store: Store, record: RepositoryRecord) -> dict[str, Any]:
    """Registration, ingestion state and totals (the numbers git itself would give)."""
    totals = store.totals(record.id)
    return {
        "id": record.id,
        "name": record.name,
        "url": record.url,
        "head": record.head,
        "ref": record.ref,
        "status": record.status,
        "error": record.error,
        "commits": totals.commits,
        "merges": totals.merges,
        "authors": totals.authors,
        "lines_added": totals.lines_added,
        "lines_deleted": totals.lines_deleted,
        "added_at": record.added_at.isoformat(),
        "last_ingested": record.last_ingested.isoformat() if record.last_ingested else None,
    }
