"""Benchmark: compute the whole metric catalogue on an ingested repository.

Usage: python bench/catalogue.py PATH_TO_REPOSITORY [--rounds 3] [--workers 1 2]

Ingests the repository into a fresh SQLite store (timed: the reference), then computes every
registered metric with its default parameters, ``--rounds`` times (cache bypassed), and
prints the median seconds per metric, the totals of the history metrics and of the content
metrics (those that read blobs at the head, fanned out over worker processes: timed for each
``--workers`` count) and their ratio to the ingest time.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from repometer.compute import compute_result, registry_for
from repometer.context import StoreContext
from repometer.ingest import ingest_repository
from repometer.registry import add_repository, git_dir_of
from repometer.settings import Settings
from repometer.storage import open_store

#: Metrics that read file contents at the head; they fan out over worker processes.
CONTENT_METRICS = {"language_distribution", "complexity", "hotspots"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="repometer-bench-"))
    settings = Settings(home=home)
    store = open_store(settings.database_url)
    record, _ = add_repository(store, settings, str(args.repository.resolve()))
    started = time.perf_counter()
    ingest_repository(store, record, settings)
    ingest_seconds = time.perf_counter() - started
    record = store.get_repository(record.id)
    totals = store.totals(record.id)
    print(f"{record.name}: {totals.commits:,} commits ingested in {ingest_seconds:.1f} s",
          flush=True)  # fmt: skip
    git_dir = git_dir_of(record, settings)
    catalogue = list(registry_for(settings))
    timings: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for workers in args.workers:
            # a fresh context per round: nothing (such as the head tree) carried over
            with StoreContext(store, record, git_dir, workers=workers) as context:
                for metric in catalogue:
                    if workers != args.workers[0] and metric.name not in CONTENT_METRICS:
                        continue  # history metrics run in one process: timed once
                    result = compute_result(store, record, metric, context)
                    if result.status != "ok":
                        print(f"  {metric.name} FAILED: {result.error}")
                    timings.setdefault((metric.name, workers), []).append(result.seconds)

    medians = {key: statistics.median(values) for key, values in timings.items()}
    for (name, workers), seconds in sorted(medians.items(), key=lambda kv: -kv[1]):
        kind = f"content, {workers} workers" if name in CONTENT_METRICS else "history"
        print(f"  {name:30s} {seconds:8.2f} s  {kind}")
    history = sum(s for (n, _), s in medians.items() if n not in CONTENT_METRICS)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"median of {args.rounds}: history metrics {history:.1f} s = "
          f"{history / ingest_seconds:.2f}x the ingest time")  # fmt: skip
    for workers in args.workers:
        content = sum(s for (n, w), s in medians.items() if n in CONTENT_METRICS and w == workers)
        print(f"  content metrics with {workers} workers: {content:.1f} s = "
              f"{content / ingest_seconds:.2f}x the ingest time")  # fmt: skip
    print(f"peak RSS {peak:,.0f} MiB (this process; worker processes have their own)")


if __name__ == "__main__":
    main()
