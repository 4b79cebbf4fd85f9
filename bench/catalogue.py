"""Benchmark: compute the whole metric catalogue on an ingested repository.

Usage: python bench/catalogue.py PATH_TO_REPOSITORY [--rounds 3] [--workers N]

Ingests the repository into a fresh SQLite store (timed: the reference), then computes every
registered metric with its default parameters, ``--rounds`` times (cache bypassed), and
prints the median seconds per metric, the totals of the history metrics and of the content
metrics (those that read blobs at the head) and their ratio to the ingest time.
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
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="repometer-bench-"))
    overrides = {"workers": args.workers} if args.workers else {}
    settings = Settings(home=home, **overrides)
    store = open_store(settings.database_url)
    record, _ = add_repository(store, settings, str(args.repository.resolve()))
    started = time.perf_counter()
    ingest_repository(store, record, settings)
    ingest_seconds = time.perf_counter() - started
    record = store.get_repository(record.id)
    totals = store.totals(record.id)
    print(f"{record.name}: {totals.commits:,} commits ingested in {ingest_seconds:.1f} s "
          f"(workers for content metrics: {settings.workers})")  # fmt: skip

    timings: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        # a fresh context per round: nothing (such as the head tree) carried over
        context = StoreContext(store, record, git_dir_of(record, settings), workers=settings.workers)
        for metric in registry_for(settings):
            result = compute_result(store, record, metric, context)
            if result.status != "ok":
                print(f"  {metric.name} FAILED: {result.error}")
            timings.setdefault(metric.name, []).append(result.seconds)

    medians = {name: statistics.median(values) for name, values in timings.items()}
    for name, seconds in sorted(medians.items(), key=lambda kv: -kv[1]):
        kind = "content" if name in CONTENT_METRICS else "history"
        print(f"  {name:30s} {seconds:8.2f} s  {kind}")
    history = sum(s for n, s in medians.items() if n not in CONTENT_METRICS)
    content = sum(s for n, s in medians.items() if n in CONTENT_METRICS)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"median of {args.rounds}: history metrics {history:.1f} s = {history / ingest_seconds:.2f}x "
        f"the ingest time; content metrics {content:.1f} s = {content / ingest_seconds:.2f}x; "
        f"peak RSS {peak:,.0f} MiB"
    )


if __name__ == "__main__":
    main()
