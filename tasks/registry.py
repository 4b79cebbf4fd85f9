"""Looking up registered repositories by id, name or URL."""

from __future__ import annotations

from prefect import task

from repometer.settings import get_settings
from repometer.storage import shared_store
from tasks.retry import TRANSIENT_RETRIES


@task(name="resolve-repositories", **TRANSIENT_RETRIES)
def resolve_repositories(keys: list[str] | None = None) -> list[str]:
    """The ids of the named repositories, or of every registered one when ``keys`` is None."""
    store = shared_store(get_settings().database_url)
    if keys is None:
        return [r.id for r in store.list_repositories()]
    return [store.get_repository(key).id for key in keys]
