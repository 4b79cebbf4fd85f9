"""Flow runs started for the API and the dashboard, and how to follow them.

With a Prefect API configured (``PREFECT_API_URL``) a run is a deployment run, which a
Prefect worker executes; otherwise it is a local background process running the same flow.
Either way it is recorded in the ``runs`` table, which front-ends poll.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from repometer.settings import Settings
from repometer.storage import RepositoryRecord, Store
from repometer.storage.store import RunRecord

#: run kind -> the Prefect deployment that runs it ("<flow name>/<deployment name>")
DEPLOYMENTS = {
    "analyze": "analyze-repository/analyze-repository",
    "compute": "compute-metrics/compute-metrics",
}

_PREFECT_STATES = {
    "SCHEDULED": "scheduled", "PENDING": "scheduled", "PAUSED": "scheduled",
    "RUNNING": "running", "CANCELLING": "running", "COMPLETED": "completed",
    "FAILED": "failed", "CRASHED": "failed", "CANCELLED": "failed",
}  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC)


def _prefect_configured() -> bool:
    return bool(os.environ.get("PREFECT_API_URL"))


def _start_deployment(run: RunRecord) -> str | None:
    """The flow run id, or None when the deployment does not exist on that server."""
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    parameters: dict[str, object] = {"repository": run.repo_id}
    if run.kind == "compute":
        parameters["metrics"] = run.metrics
    try:
        flow_run = run_deployment(
            DEPLOYMENTS[run.kind], parameters=parameters, timeout=0, as_subflow=False
        )
    except ObjectNotFound:
        return None
    return str(flow_run.id)


def _start_background(run: RunRecord, settings: Settings) -> int:
    logs = settings.home / "runs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "REPOMETER_HOME": str(settings.home),
           "REPOMETER_DB_URL": settings.database_url}  # fmt: skip
    with open(logs / f"{run.id}.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.background", run.id],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
        )
    return process.pid


def start_run(
    store: Store,
    settings: Settings,
    record: RepositoryRecord,
    kind: str,
    metrics: list[str] | None = None,
) -> RunRecord:
    """Start (or join) a run that analyses ``record`` or computes its metrics."""
    if kind not in DEPLOYMENTS:
        raise ValueError(f"unknown run kind {kind!r}")
    for active in store.active_runs(record.id):
        current = run_state(store, active.id)
        # an analysis computes every metric: it covers any request for the same repository
        if current is not None and not current.finished and current.kind in (kind, "analyze"):
            return current
    now = _now()
    run = RunRecord(id=uuid.uuid4().hex, repo_id=record.id, kind=kind, metrics=metrics,
                    status="scheduled", error=None, prefect_flow_run_id=None, pid=None,
                    created_at=now, updated_at=now)  # fmt: skip
    store.put_run(run)
    flow_run_id = _start_deployment(run) if _prefect_configured() else None
    if flow_run_id is not None:
        run = replace(run, prefect_flow_run_id=flow_run_id, updated_at=_now())
    else:
        run = replace(run, pid=_start_background(run, settings), updated_at=_now())
    store.put_run(run)
    return run


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a finished child that nobody waited for is a zombie: it counts as gone
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def run_state(store: Store, run_id: str) -> RunRecord | None:
    """The run, its state brought up to date (from Prefect, or from its local process)."""
    run = store.get_run(run_id)
    if run is None or run.finished:
        return run
    if run.prefect_flow_run_id:
        from prefect import get_client

        with get_client(sync_client=True) as client:
            state = client.read_flow_run(uuid.UUID(run.prefect_flow_run_id)).state
        status = _PREFECT_STATES.get(state.type.value, "running") if state else "scheduled"
        error = state.message if status == "failed" and state else None
        if status != run.status:
            run = replace(run, status=status, error=error, updated_at=_now())
            store.put_run(run)
    elif run.pid is not None and not _alive(run.pid):
        run = store.get_run(run_id)  # the process may have recorded its end meanwhile
        if run is not None and not run.finished:
            run = replace(run, status="failed", updated_at=_now(),
                          error="the background run ended without recording a result")  # fmt: skip
            store.put_run(run)
    return run
