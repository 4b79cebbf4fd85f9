"""Benchmark: full ingestion of a repository into a fresh SQLite store vs ``git log --numstat -M``.

Usage: python bench/ingest.py PATH_TO_REPOSITORY [--rounds 3] [--workers 1 2] [--db URL]

Each round runs, one after the other (so that a noisy machine slows all of them alike):
- the reference: ``git log --numstat -M HEAD`` into /dev/null;
- ``sequential``: repometer's in-process ingestion (one git log, one Python process);
- ``repometer ingest`` end to end as a user runs it (process start, Prefect API, Dask
  workers, flow) with 1 and with 2 workers (``--workers``).
Each repometer run gets a fresh data directory; the Prefect database is created once, before
the rounds (a user's first run pays for its migrations once, a few seconds). The report gives per-round figures and
medians: seconds, commits/s, the ratio to git log in the same round, and peak RSS (of the
measured process; Dask workers are processes of their own and not included).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from repometer.git import git_argv, git_env

#: Creates the Prefect database once, so that no timed run pays for its migrations.
_WARM_PREFECT = """
from app.orchestrate import EmbeddedPrefectServer, use_embedded_prefect
from repometer.settings import Settings
settings = Settings()
use_embedded_prefect(settings)
server = EmbeddedPrefectServer(settings)
server.wait_ready()
server.stop()
"""

_SEQUENTIAL = """
import sys
from repometer.ingest import ingest_repository
from repometer.registry import add_repository
from repometer.settings import Settings
from repometer.storage import open_store
settings = Settings()
store = open_store(settings.database_url)
record, _ = add_repository(store, settings, sys.argv[1])
ingest_repository(store, record, settings)
"""


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run to completion; return (wall seconds, peak RSS of that process in MiB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv[:4]} failed: {proc.stderr.read().decode()[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024


def _repometer(args: list[str]) -> list[str]:
    return [sys.executable, "-c", "from app.cli import main; main()", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--db", help="database URL (default: SQLite in each fresh home)")
    args = parser.parse_args()
    repository = str(args.repository.resolve())

    count = subprocess.run(
        git_argv(["-C", repository, "rev-list", "--count", "HEAD"]), env=git_env(),
        capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    commits = int(count)
    print(f"repository: {Path(repository).name}, {commits:,} commits reachable from HEAD",
          flush=True)  # fmt: skip
    prefect_home = Path(tempfile.mkdtemp(prefix="repometer-bench-prefect-"))
    base_env = {**os.environ, "PREFECT_HOME": str(prefect_home)}
    base_env.pop("PREFECT_API_URL", None)
    _run([sys.executable, "-c", _WARM_PREFECT], base_env)
    variants = ["sequential", *(f"ingest, {n} worker{'s' * (n > 1)}" for n in args.workers)]
    measured: dict[str, list[tuple[float, float, float]]] = {v: [] for v in variants}
    for round_no in range(1, args.rounds + 1):
        git_s, git_rss = _run(git_argv(["-C", repository, "log", "--numstat", "-M", "HEAD"]),
                                 env=git_env())  # fmt: skip
        line = [f"round {round_no}: git log {git_s:.1f} s ({git_rss:,.0f} MiB)"]
        for variant in variants:
            home = Path(tempfile.mkdtemp(prefix="repometer-bench-"))
            env = {**base_env, "REPOMETER_HOME": str(home)}
            if args.db:
                env["REPOMETER_DB_URL"] = args.db
            try:
                if variant == "sequential":
                    seconds, rss = _run([sys.executable, "-c", _SEQUENTIAL, repository], env)
                else:
                    env["REPOMETER_WORKERS"] = variant.split(", ")[1].split()[0]
                    _run(_repometer(["add", repository]), env)  # registration is not timed
                    seconds, rss = _run(_repometer(["ingest"]), env)
            finally:
                shutil.rmtree(home, ignore_errors=True)
            measured[variant].append((seconds, seconds / git_s, rss))
            line.append(f"{variant} {seconds:.1f} s = {seconds / git_s:.2f}x ({rss:,.0f} MiB)")
        print(" | ".join(line), flush=True)
    shutil.rmtree(prefect_home, ignore_errors=True)
    print(f"medians of {args.rounds} rounds ({commits:,} commits):")
    for variant, rows in measured.items():
        seconds = statistics.median(r[0] for r in rows)
        ratio = statistics.median(r[1] for r in rows)
        rss = statistics.median(r[2] for r in rows)
        print(f"  {variant:20s} {seconds:7.1f} s  {commits / seconds:8,.0f} commits/s  "
              f"{ratio:.2f}x git log --numstat -M  peak RSS {rss:,.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
