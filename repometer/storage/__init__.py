"""Storage: the metadata tables and the queries over them, for SQLite, PostgreSQL and CrateDB."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from repometer.storage.backends import backend_for, create_engine
from repometer.storage.store import RepositoryRecord, RepositoryTotals, Store

__all__ = ["RepositoryRecord", "RepositoryTotals", "Store", "open_store", "shared_store"]


def open_store(url: str, *, create: bool = True, **engine_kwargs: Any) -> Store:
    """Connect to the database at ``url`` and, unless ``create`` is false, create its tables."""
    store = Store(create_engine(url, **engine_kwargs), backend_for(url))
    if create:
        store.create_schema()
    return store


@lru_cache(maxsize=8)
def shared_store(url: str) -> Store:
    """One store per database URL and process (its engine pools the connections)."""
    return open_store(url)
