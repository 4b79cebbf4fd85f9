"""Retries for transient failures only (network, timeouts, the database); never for
deterministic ones, which would fail the same way again."""

from __future__ import annotations

from typing import Any

from prefect.tasks import exponential_backoff

from repometer.errors import is_transient


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


TRANSIENT_RETRIES: dict[str, Any] = {
    "retries": 3,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.2,
    "retry_condition_fn": retry_if_transient,
}
