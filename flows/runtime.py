"""Where flows run: the Dask task runner, and a Prefect API when none is configured."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prefect_dask import DaskTaskRunner

from repometer.settings import Settings, get_settings

#: ``listener(stage, repository id, done, total)``: progress of the running flows, for the CLI.
ProgressListener = Callable[[str, str, int, int], None]
_listeners: list[ProgressListener] = []


def report(stage: str, repo_id: str, done: int, total: int) -> None:
    for listener in list(_listeners):
        listener(stage, repo_id, done, total)


@contextmanager
def listening(listener: ProgressListener) -> Iterator[None]:
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


#: What a fresh local worker imports before its first task (so that it is ready earlier).
_WARM_MODULES = ("tasks.ingest", "tasks.compute", "metrics.builtin")


def _cluster_options(settings: Settings) -> dict[str, object]:
    return {
        "n_workers": settings.workers,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": None,
        # no dashboard, but the scheduler serves HTTP anyway: on 8787 unless told otherwise,
        # and with a warning on the console when another cluster already has that port
        "scheduler_kwargs": {"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        "silence_logs": logging.ERROR,
    }


@contextmanager
def local_cluster(settings: Settings) -> Iterator[str]:
    """A LocalCluster for several flow runs (or one that starts while the Prefect API does);
    yields its scheduler address."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(**_cluster_options(settings))
    try:
        # not as a context manager: it may be entered and left in different threads
        client = Client(cluster, set_as_default=False)
        try:
            for module in _WARM_MODULES:
                client.run(importlib.import_module, module)
        finally:
            client.close()
        yield cluster.scheduler_address
    finally:
        cluster.close()


def task_runner(settings: Settings | None = None) -> DaskTaskRunner:
    """The configured Dask scheduler, or a LocalCluster of single-threaded worker processes
    (pygit2 holds the GIL while it diffs), one per core, for the duration of a flow run."""
    settings = settings or get_settings()
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster", cluster_kwargs=_cluster_options(settings)
    )
