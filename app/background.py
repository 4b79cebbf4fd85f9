"""A run started by ``app.runs.start_run`` without a Prefect server: ``python -m app.background ID``."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from datetime import UTC, datetime

from rich.console import Console

from app.orchestrate import run_flow
from repometer.errors import RepometerError
from repometer.settings import get_settings
from repometer.storage import open_store


def main(run_id: str) -> int:
    settings = get_settings()
    store = open_store(settings.database_url)
    run = store.get_run(run_id)
    if run is None:
        print(f"unknown run {run_id}", file=sys.stderr)
        return 1
    store.put_run(replace(run, status="running", pid=os.getpid(), updated_at=datetime.now(UTC)))
    quiet = Console(file=sys.stderr, force_terminal=False)
    try:
        if run.kind == "analyze":
            run_flow("analyze_repository", settings, quiet, {}, repository=run.repo_id)
        else:
            run_flow("refresh_all", settings, quiet, {}, repositories=[run.repo_id],
                     ingest=False, metrics=run.metrics)  # fmt: skip
    except Exception as exc:
        message = str(exc) if isinstance(exc, RepometerError) else f"{type(exc).__name__}: {exc}"
        store.put_run(replace(run, status="failed", error=message, pid=os.getpid(),
                              updated_at=datetime.now(UTC)))  # fmt: skip
        return 1
    store.put_run(replace(run, status="completed", pid=os.getpid(), updated_at=datetime.now(UTC)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
