"""Benchmark: cached metric results read through the REST API under concurrent load.

Usage: python bench/api.py PATH_TO_REPOSITORY [--requests 5000] [--concurrency 50]
       [--rounds 3] [--metric commits] [--max-seconds 60] [--client httpx raw]

Ingests the repository into a fresh SQLite store under a temporary REPOMETER_HOME and caches
a few metrics (not timed), then, for each round, starts ``repometer api`` on a free loopback
port and, for each client in turn, warms it up and sends ``--requests`` GETs of the cached
result (``/repositories/{id}/metrics/{metric}``) over ``--concurrency`` connections, each
connection sending its next request when the last one is answered. Clients: an
``httpx.AsyncClient`` limited to that many connections, and a minimal HTTP/1.1 client on
asyncio streams. Both run in this process on the same machine: the httpx client costs
several times the server's CPU per request, so with it the latency measured is mostly the
client's own; the minimal one shows the server's. Prints p50/p99 latency, requests per
second, the server's CPU per request and its peak RSS per round, then the medians of the
rounds. Target: p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from repometer.compute import get_or_compute, registry_for
from repometer.ingest import ingest_repository
from repometer.registry import add_repository
from repometer.settings import Settings
from repometer.storage import open_store

CACHED = ("commits", "contributors", "lines_changed", "merges", "hotspots")

_SCRIPT = Path(sys.executable).with_name("repometer")
REPOMETER = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "from app.cli import main; main()"]
)


@dataclass
class Round:
    p50_ms: float
    p99_ms: float
    rps: float
    peak_rss_mib: float
    requests: int
    errors: int
    server_cpu_ms: float


def prepare(repository: Path, home: Path, metric: str) -> tuple[str, str, int]:
    """Ingest and cache (not timed); returns the repository id, its name and commit count."""
    settings = Settings(home=home)
    store = open_store(settings.database_url)
    record, _ = add_repository(store, settings, str(repository.resolve()))
    started = time.perf_counter()
    ingest_repository(store, record, settings)
    record = store.get_repository(record.id)
    commits = store.totals(record.id).commits
    print(f"{record.name}: {commits:,} commits ingested in {time.perf_counter() - started:.1f} s",
          flush=True)  # fmt: skip
    registry = registry_for(settings)
    for name in dict.fromkeys((metric, *CACHED)):
        result, _ = get_or_compute(store, record, settings, registry.get(name))
        if result.status != "ok":
            raise SystemExit(f"{name} failed: {result.error}")
    store.engine.dispose()
    return record.id, record.name, commits


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOMETER_")}
    server = subprocess.Popen(
        [*REPOMETER, "--home", str(home), "api", "--port", str(port)],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"repometer api exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{base}/metrics", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_server(server)
    raise SystemExit("repometer api did not start within 120 s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (Linux; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(") ", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set so far (Linux's VmHWM; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


async def load(url: str, requests: int, concurrency: int, max_seconds: float) -> tuple[
    list[float], int, float
]:  # fmt: skip
    """``requests`` GETs over ``concurrency`` connections (stopping at ``max_seconds``)."""
    latencies: list[float] = []
    errors = 0
    remaining = requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        started = time.perf_counter()
        deadline = started + max_seconds

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                sent = time.perf_counter()
                try:
                    response = await client.get(url)
                    await response.aread()
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - sent)
                errors += not ok

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return latencies, errors, elapsed


async def load_raw(url: str, requests: int, concurrency: int, max_seconds: float) -> tuple[
    list[float], int, float
]:  # fmt: skip
    """The same load from a minimal HTTP/1.1 keep-alive client on asyncio streams, whose own
    cost per request is a small fraction of httpx's (so that the server's latency shows)."""
    parts = httpx.URL(url)
    host, port = parts.host, parts.port or 80
    request = (f"GET {parts.raw_path.decode()} HTTP/1.1\r\nHost: {host}:{port}\r\n"
               "Accept: application/json\r\n\r\n").encode()  # fmt: skip
    latencies: list[float] = []
    errors = 0
    remaining = requests
    started = time.perf_counter()
    deadline = started + max_seconds

    async def worker() -> None:
        nonlocal remaining, errors
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while remaining > 0 and time.perf_counter() < deadline:
                remaining -= 1
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - sent)
                errors += status != 200
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


CLIENTS = {"httpx": load, "raw": load_raw}


def one_round(home: Path, path: str, args: argparse.Namespace, show_size: bool) -> dict[str, Round]:
    """A fresh server; each client's load in turn (after a warm-up)."""
    server, base = start_server(home)
    results = {}
    try:
        first = httpx.get(base + path, timeout=30)
        if first.status_code != 200:
            raise SystemExit(f"GET {path}: {first.status_code} {first.text[:500]}")
        if show_size:
            rows = len(first.json()["rows"])
            print(f"GET {path}: {rows:,} rows, {len(first.content):,} bytes", flush=True)
        for name in args.client:
            client = CLIENTS[name]
            asyncio.run(client(base + path, min(500, args.requests), args.concurrency, 30))
            cpu_before = cpu_seconds(server.pid)
            latencies, errors, elapsed = asyncio.run(
                client(base + path, args.requests, args.concurrency, args.max_seconds)
            )
            server_cpu = cpu_seconds(server.pid) - cpu_before
            results[name] = Round(
                p50_ms=percentile(latencies, 0.50) * 1000,
                p99_ms=percentile(latencies, 0.99) * 1000,
                rps=len(latencies) / elapsed,
                peak_rss_mib=peak_rss_mib(server.pid),
                requests=len(latencies),
                errors=errors,
                server_cpu_ms=server_cpu / max(1, len(latencies)) * 1000,
            )
    finally:
        stop_server(server)
    return results


def _line(r: Round) -> str:
    return (f"p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, {r.rps:,.0f} requests/s, "
            f"server CPU {r.server_cpu_ms:.2f} ms/request, "
            f"server peak RSS {r.peak_rss_mib:,.0f} MiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repository", type=Path)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--metric", default="commits")
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument(
        "--client", nargs="+", choices=list(CLIENTS), default=list(CLIENTS),
        help="httpx.AsyncClient and/or a minimal asyncio HTTP/1.1 client",
    )  # fmt: skip
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="repometer-bench-api-"))
    try:
        repo_id, name, _ = prepare(args.repository, home, args.metric)
        path = f"/repositories/{repo_id}/metrics/{args.metric}"
        rounds: dict[str, list[Round]] = {c: [] for c in args.client}
        for number in range(1, args.rounds + 1):
            for client, result in one_round(home, path, args, number == 1).items():
                rounds[client].append(result)
                print(f"round {number}, {client} client: {result.requests:,} requests, "
                      f"{result.errors} errors, {_line(result)}", flush=True)  # fmt: skip
        print(f"medians of {args.rounds} rounds, GET {path} ({name}, {args.metric}), "
              f"{args.concurrency} connections:")  # fmt: skip
        for client, results in rounds.items():
            median = Round(*(statistics.median(getattr(r, f) for r in results)
                             for f in Round.__dataclass_fields__))  # fmt: skip
            verdict = "met" if median.p99_ms < 50 else "NOT met"
            print(f"  {client:5s} client: {_line(median)} (target p99 < 50 ms: {verdict})")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
