"""Benchmark: full ingestion of a repository into a fresh SQLite store vs ``git log --numstat -M``.

Usage: python bench/ingest.py PATH_TO_REPOSITORY [--rounds 3] [--db URL]

Each round runs, in turn, the reference (``git log --numstat -M HEAD`` into /dev/null) and
``repometer run PATH`` end to end (process start-up, registration, ingestion, summary) in a
fresh data directory. Rounds interleave the two so that a noisy machine slows both alike;
the report gives per-round figures and medians: seconds, commits/s, the ratio to git log in
the same round, and peak RSS (of the repometer process, and of git log).
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


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run to completion; return (wall seconds, peak RSS in MiB of that process)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary home)")
    args = parser.parse_args()
    repository = args.repository.resolve()

    count = subprocess.run(
        git_argv(["rev-list", "--count", "HEAD"], repository), env=git_env(),
        capture_output=True, check=True,
    ).stdout.decode().strip()  # fmt: skip
    commits = int(count)
    print(f"repository: {repository.name}, {commits:,} commits reachable from HEAD")
    reference = git_argv(["log", "--numstat", "-M", "HEAD"], repository)
    rows = []
    for round_no in range(1, args.rounds + 1):
        git_s, git_rss = _run(reference, env=git_env())
        home = Path(tempfile.mkdtemp(prefix="repometer-bench-"))
        env = {**os.environ, "REPOMETER_HOME": str(home)}
        if args.db:
            env["REPOMETER_DB_URL"] = args.db
        cli = [sys.executable, "-c", "from app.cli import main; main()", "run", str(repository)]
        try:
            ours_s, ours_rss = _run(cli, env=env)
            db_mib = sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) / 2**20
        finally:
            shutil.rmtree(home, ignore_errors=True)
        rows.append((git_s, ours_s, ours_s / git_s, ours_rss, git_rss))
        print(
            f"round {round_no}: git log {git_s:6.1f} s | repometer run {ours_s:6.1f} s "
            f"({commits / ours_s:,.0f} commits/s) | ratio {ours_s / git_s:.2f} | "
            f"peak RSS repometer {ours_rss:,.0f} MiB, git log {git_rss:,.0f} MiB | "
            f"store {db_mib:,.0f} MiB",
            flush=True,
        )
    med = [statistics.median(col) for col in zip(*rows, strict=True)]
    print(
        f"median of {len(rows)}: git log --numstat -M {med[0]:.1f} s, repometer run {med[1]:.1f} s"
        f" = {commits / med[1]:,.0f} commits/s, ratio {med[2]:.2f}x, "
        f"peak RSS {med[3]:,.0f} MiB (git log alone {med[4]:,.0f} MiB)"
    )


if __name__ == "__main__":
    main()
