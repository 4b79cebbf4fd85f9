"""Running repometer's flows from the command line, with progress bars.

The flows run on Dask workers in other processes: settings reach them through the
environment, and so does the Prefect API (an embedded one when none is configured).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from repometer.errors import RepometerError
from repometer.settings import Settings, get_settings


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        if task.fields.get("unit") != "commits":
            return Text("")
        speed = task.finished_speed or task.speed
        if not speed and task.completed and task.elapsed:
            speed = task.completed / task.elapsed  # a single update gives rich no speed sample
        return Text(f"{speed:,.0f} commits/s" if speed else "", style="progress.data.speed")


def use_embedded_prefect(settings: Settings) -> bool:
    """Prepare the environment for an embedded Prefect API when none is configured.

    Must run before Prefect is imported (it reads its settings once): the Prefect database
    then lives under repometer's data directory, and the console shows only repometer's output.
    """
    if os.environ.get("PREFECT_API_URL"):
        return False
    os.environ.setdefault("PREFECT_HOME", str(settings.home / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # the command line reports each repository's failure itself, in one line: Prefect's own
    # report of it (a traceback per task and flow) would bury it
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
    os.environ.setdefault("PREFECT_LOGGING_SERVER_LEVEL", "ERROR")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")
    return True


def _die_with_parent() -> None:
    """In the server's process: ask Linux to end it when its parent dies, even by SIGKILL
    (a killed run must not leave a server behind)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not Linux: the server is stopped on every exit but SIGKILL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedPrefectServer:
    """Prefect's API server in a subprocess on a free loopback port, for one run.

    It is what Prefect's own ephemeral mode starts, but started here so that every process
    of the run (the Dask workers included) uses this one server: left alone, each worker
    would start a temporary server of its own on the same SQLite file ("database is
    locked", 15-25 s runs). Starting it first lets it boot while this process imports.
    """

    def __init__(self, settings: Settings) -> None:
        self.log_path = settings.home / "prefect" / "server.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self._start()

    def _start(self) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}/api"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory",
                 "prefect.server.api.server:create_app", "--host", "127.0.0.1",
                 "--port", str(port), "--log-level", "error", "--lifespan", "on"],
                env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                     "PREFECT__SERVER_FINAL": "1"},
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=_die_with_parent,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        restarts = 0
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                if self.process.returncode == 3 and restarts < 3:  # port taken meanwhile
                    restarts += 1
                    self._start()
                    continue
                raise RepometerError(
                    f"the embedded Prefect server exited ({self.process.returncode}); "
                    f"see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                    if response.status == 200:
                        return self.url
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RepometerError(f"the embedded Prefect server did not start; see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@contextmanager
def prefect_api(settings: Settings) -> Iterator[str]:
    """The Prefect API the run reports to: ``PREFECT_API_URL`` when set (runs show in its
    UI), else an embedded server for the duration."""
    if not use_embedded_prefect(settings):
        yield os.environ["PREFECT_API_URL"]
        return
    server = EmbeddedPrefectServer(settings)
    try:
        url = server.wait_ready()
        os.environ["PREFECT_API_URL"] = url  # for the Dask worker processes
        from prefect.logging.handlers import APILogWorker
        from prefect.settings import PREFECT_API_URL, temporary_settings

        try:
            with temporary_settings(updates={PREFECT_API_URL: url}):
                yield url
        finally:
            APILogWorker.drain_all(timeout=5)  # the last log lines, before their server goes
            os.environ.pop("PREFECT_API_URL", None)
    finally:
        server.stop()


def export_settings(settings: Settings) -> None:
    """Make ``settings`` what every process of the run reads (Dask workers included)."""
    for name, value in settings.as_environment().items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()


@contextmanager
def _progress(console: Console, names: dict[str, str]) -> Iterator[None]:
    from flows.runtime import listening

    bars: dict[tuple[str, str], TaskID] = {}
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        _RateColumn(), TimeElapsedColumn(), TimeRemainingColumn(), console=console,
    ) as progress:  # fmt: skip

        def update(stage: str, repo_id: str, done: int, total: int) -> None:
            key = (stage, repo_id)
            if key not in bars:
                unit = "commits" if stage == "ingest" else "metrics"
                label = f"{names.get(repo_id, repo_id)} {stage}"
                bars[key] = progress.add_task(label, total=total, unit=unit)
            progress.update(bars[key], completed=done, total=total)

        with listening(update):
            yield


def run_flow(
    flow_name: str, settings: Settings, console: Console, names: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    """Run ``analyze_repository`` or ``refresh_all`` and return one result per repository.

    Raises ``RepositoriesFailedError`` (with every result attached) when some failed.
    """
    export_settings(settings)
    use_embedded_prefect(settings)  # before Prefect is imported: it reads its settings once
    with ExitStack() as stack:
        with console.status("starting the Prefect API and the workers"):
            if settings.dask_address:
                stack.enter_context(prefect_api(settings))
            else:
                from flows.runtime import local_cluster

                # the workers start (and import what they need) while the API server boots
                with ThreadPoolExecutor(max_workers=1) as pool:
                    starting = pool.submit(stack.enter_context, local_cluster(settings))
                    stack.enter_context(prefect_api(settings))
                    address = starting.result()
                export_settings(settings.model_copy(update={"dask_address": address}))
        from flows import analyze  # after the export: its task runner reads the address

        with _progress(console, names):
            if flow_name == "analyze_repository":
                return [analyze.analyze_repository(**params)]
            return analyze.refresh_all(**params)
