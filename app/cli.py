"""The ``repometer`` command line."""

from __future__ import annotations

import csv
import json
import sys
import time
from collections import Counter
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from app.orchestrate import use_embedded_prefect
from app.summaries import repository_summary
from metrics.api import Metric, ParameterError
from metrics.registry import PluginError, UnknownMetricError
from repometer.compute import (
    MetricFailedError,
    cached_rows,
    get_or_compute,
    registry_for,
    stale_metrics,
)
from repometer.errors import RepometerError, RepositoriesFailedError
from repometer.git import resolve_commit
from repometer.registry import add_repository, git_dir_of
from repometer.settings import Settings, load_settings
from repometer.storage import RepositoryRecord, Store, open_store

app = typer.Typer(
    name="repometer",
    help="Measure git repositories: ingest their history, compute metrics, serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # messages stay one line each, never wrapped


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


class _State:
    settings: Settings


state = _State()


@app.callback()
def main_options(
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL (default: SQLite under --home).")
    ] = None,
    home: Annotated[
        Path | None, typer.Option("--home", help="Data directory (REPOMETER_HOME).")
    ] = None,
) -> None:
    overrides: dict[str, Any] = {}
    if db:
        overrides["db_url"] = db
    if home:
        overrides["home"] = home
    state.settings = load_settings(**overrides)
    use_embedded_prefect(state.settings)


def _store() -> Store:
    return open_store(state.settings.database_url)


def _report_ingestion(name: str, result: dict[str, Any], seconds: float) -> None:
    if result["up_to_date"]:
        err_console.print(f"{name}: up to date at {_short(result['head'])}")
    else:
        err_console.print(
            f"{name}: {result['added']:,} commits added, {result['removed']:,} removed, "
            f"head {_short(result['head'])} ({seconds:.1f} s)"
        )


def _report_metrics(name: str, outcomes: list[dict[str, Any]]) -> None:
    counts = Counter(o["status"] for o in outcomes)
    err_console.print(
        f"{name}: {counts['computed']} metrics computed, {counts['cached']} cached, "
        f"{counts['failed']} failed ({sum(o['seconds'] for o in outcomes):.1f} s)"
    )
    for o in outcomes:
        if o["error"]:
            err_console.print(f"[red]{o['metric']} failed:[/red] {o['error']}", highlight=False)


def _analyze(
    records: list[RepositoryRecord], flow_name: str, **params: Any
) -> list[dict[str, Any]]:
    """Run a flow over ``records``; report each repository; exit 1 if any failed."""
    from app.orchestrate import run_flow

    names = {r.id: r.name for r in records}
    started = time.perf_counter()
    try:
        results = run_flow(flow_name, state.settings, err_console, names, **params)
        failed = False
    except RepositoriesFailedError as exc:
        results, failed = exc.results, True
    seconds = time.perf_counter() - started
    for result in results:
        name = names.get(result["repo_id"], result["repo_id"])
        ingested = result.get("ingest") or (result if "added" in result else None)
        if ingested and not ingested.get("error"):
            _report_ingestion(name, ingested, seconds)
        if result.get("metrics"):
            _report_metrics(name, result["metrics"])
        if result.get("error"):
            err_console.print(f"[red]error:[/red] {name}: {result['error']}", highlight=False)
    if failed or any(o["status"] == "failed" for r in results for o in (r.get("metrics") or [])):
        raise typer.Exit(1)
    return results


def _up_to_date(store: Store, record: RepositoryRecord) -> bool:
    """A local repository whose ref still points at the ingested head needs no ingestion
    (a remote one must be fetched to know)."""
    if record.is_remote or record.status != "ok":
        return False
    try:
        return resolve_commit(git_dir_of(record, state.settings), record.ref) == record.head
    except RepometerError:
        return False


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "(no commits)"


Target = Annotated[str, typer.Argument(help="Local path or URL (https, ssh, git@host:path).")]
Ref = Annotated[str, typer.Option(help="Ingest what this ref reaches instead of HEAD.")]
Repos = Annotated[
    list[str] | None, typer.Argument(help="Ids, names or URLs (default: every repository).")
]


def _register(store: Store, target: str, ref: str) -> tuple[RepositoryRecord, bool]:
    with err_console.status(f"registering {target}"):
        return add_repository(store, state.settings, target, ref=ref)


def _records(store: Store, repos: list[str] | None) -> list[RepositoryRecord]:
    """The named repositories, or every one; says so when none is registered."""
    records = [store.get_repository(r) for r in repos] if repos else store.list_repositories()
    if not records:
        err_console.print("no repositories registered; add one with `repometer add TARGET`")
    return records


@app.command()
def add(target: Target, ref: Ref = "HEAD") -> None:
    """Register a repository (a remote one is mirrored under the data directory)."""
    record, created = _register(_store(), target, ref)
    if created:
        err_console.print(f"added {record.name} (id {record.id})")
    else:
        err_console.print(f"{record.name} is already registered (id {record.id}); nothing to do")


@app.command()
def ingest(repos: Repos = None) -> None:
    """Bring the stored history of repositories up to date with git."""
    store = _store()
    records = _records(store, repos)
    stale = []
    for record in records:
        if _up_to_date(store, record):
            err_console.print(f"{record.name}: up to date at {_short(record.head)}")
        else:
            stale.append(record)
    if stale:
        _analyze(stale, "refresh_all", repositories=[r.id for r in stale], compute=False)


@app.command()
def run(target: Target, ref: Ref = "HEAD") -> None:
    """Register a repository if needed, ingest it now and compute the whole catalogue."""
    store = _store()
    record, _ = _register(store, target, ref)
    if record.ref != ref:
        store.set_ref(record.id, ref)
        record = store.get_repository(record.id)
    registry = registry_for(state.settings)
    if _up_to_date(store, record) and not stale_metrics(store, record, registry):
        err_console.print(f"{record.name}: up to date at {_short(record.head)}, metrics cached")
    else:
        _analyze([record], "analyze_repository", repository=record.id)
    record = store.get_repository(record.id)
    _print_repositories(store, [record], OutputFormat.table)
    _print_headlines(store, record)


def _print_headlines(store: Store, record: RepositoryRecord) -> None:
    """A few headline figures from the freshly computed catalogue."""
    registry = registry_for(state.settings)
    lines = []

    def rows(name: str) -> list[dict[str, Any]]:
        return (cached_rows(store, record, registry.get(name)) or []) if name in registry else []

    if absence := rows("contributor_absence_factor"):
        authors = ", ".join(absence[0]["authors"][:3])
        lines.append(f"contributor absence factor {absence[0]['value']} ({authors})")
    if elephant := rows("elephant_factor"):
        lines.append(f"elephant factor {elephant[0]['value']}")
    if languages := rows("language_distribution"):
        lines.append("languages " + ", ".join(
            f"{r['language']} {r['share']:.0%}" for r in languages[:3]))  # fmt: skip
    if hotspots := rows("hotspots"):
        lines.append("hotspots " + ", ".join(r["path"] for r in hotspots[:3]))
    for line in lines:
        console.print(f"  {line}", highlight=False)
    console.print(f"  see a metric with `repometer show {record.name} METRIC`", highlight=False)


def _print_repositories(
    store: Store, records: list[RepositoryRecord], output: OutputFormat
) -> None:
    summaries = [repository_summary(store, r) for r in records]
    if output is OutputFormat.json:
        print(json.dumps(summaries, indent=2))
        return
    table = Table("name", "id", "head", "commits", "merges", "authors", "+lines", "-lines",
                  "status", "last ingested")  # fmt: skip
    for s in summaries:
        last = datetime.fromisoformat(s["last_ingested"]) if s["last_ingested"] else None
        table.add_row(
            s["name"], s["id"], _short(s["head"]), f"{s['commits']:,}", f"{s['merges']:,}",
            f"{s['authors']:,}", f"{s['lines_added']:,}", f"{s['lines_deleted']:,}",
            s["status"] if not s["error"] else f"{s['status']}: {s['error']}",
            last.strftime("%Y-%m-%d %H:%M:%S") if last else "never",
        )  # fmt: skip
    _print_table(table)


def _print_table(table: Table) -> None:
    if console.is_terminal:
        console.print(table)
    else:  # piped or redirected: the table's natural width, never ids squeezed into "…"
        wide = Console(width=10_000)
        Console(width=Measurement.get(wide, wide.options, table).maximum).print(table)


@app.command()
def repos(
    output: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.table
    ),
) -> None:
    """List registered repositories with their ingested totals."""
    store = _store()
    records = store.list_repositories()
    if not records and output is OutputFormat.table:
        err_console.print("no repositories registered; add one with `repometer add TARGET`")
        return
    _print_repositories(store, records, output)


class ResultFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command("metrics")
def list_metrics(
    output: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.table
    ),
) -> None:
    """List every registered metric (built-in and plugins) with its parameters."""
    registry = registry_for(state.settings)
    if output is OutputFormat.json:
        print(json.dumps([m.describe() for m in registry], indent=2))
        return
    table = Table("name", "version", "unit", "shape", "parameters", "description", "plugin")
    for m in registry:
        params = ", ".join(f"{p.name}={p.default}" for p in m.parameters)
        table.add_row(m.name, str(m.version), m.unit, m.shape, params, m.description, m.plugin)
    _print_table(table)


def _selected_metrics(names: list[str] | None) -> list[Metric]:
    registry = registry_for(state.settings)
    return [registry.get(n) for n in names] if names else list(registry)


@app.command()
def compute(
    repos: Repos = None,
    metric_names: Annotated[
        list[str] | None, typer.Option("--metric", "-m", help="Only these metrics (repeatable).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Recompute even fresh results.")] = False,
) -> None:
    """Compute the metrics whose cached results are missing or stale."""
    store = _store()
    records = _records(store, repos)
    metrics = _selected_metrics(metric_names)  # unknown names fail here
    stale = [r for r in records if force or stale_metrics(store, r, metrics)]
    for record in records:
        if record not in stale:
            err_console.print(f"{record.name}: {len(metrics)} metrics cached, nothing to compute")
    if stale:
        _analyze(stale, "refresh_all", repositories=[r.id for r in stale], ingest=False,
                 metrics=[m.name for m in metrics] if metric_names else None, force=force)  # fmt: skip


def _parse_params(items: list[str] | None) -> dict[str, str]:
    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParameterError(f"--param takes key=value, not {item!r}")
        params[key.strip()] = value
    return params


@app.command()
def show(
    repo: Annotated[str, typer.Argument(help="Repository id, name or URL.")],
    metric_name: Annotated[str, typer.Argument(metavar="METRIC", help="Metric name.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Parameter as key=value.")
    ] = None,
    output: Annotated[ResultFormat, typer.Option("--format", help="Output format.")] = (
        ResultFormat.table
    ),
) -> None:
    """Print a metric's result, computing it first when it is missing or stale."""
    store = _store()
    record = store.get_repository(repo)
    metric = registry_for(state.settings).get(metric_name)
    params = metric.resolve(_parse_params(param))
    result, _ = get_or_compute(store, record, state.settings, metric, params)
    if result.status != "ok":
        raise MetricFailedError(f"metric {metric.name} failed: {result.error}")
    rows = result.rows or []
    if output is ResultFormat.json:
        print(json.dumps({
            "repository": record.name, "metric": metric.name, "version": metric.version,
            "parameters": params,
            "computed_from": {"head": result.head, "generation": result.generation,
                              "computed_at": result.computed_at.isoformat()},
            "rows": rows,
        }, indent=2))  # fmt: skip
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    if output is ResultFormat.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(v) for k, v in row.items()})
        return
    table = Table(*columns, title=f"{metric.name} of {record.name} ({metric.unit})")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    _print_table(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Serve the REST API (OpenAPI document at /docs)."""
    import uvicorn

    from app.orchestrate import export_settings

    export_settings(state.settings)
    uvicorn.run("app.api:create_app", factory=True, host=host, port=port, log_level="warning")


@app.command()
def dashboard(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8501,
) -> None:
    """Serve the Streamlit dashboard."""
    import subprocess

    from app.orchestrate import export_settings

    export_settings(state.settings)
    script = Path(__file__).with_name("dashboard") / "main.py"
    command = [sys.executable, "-m", "streamlit", "run", str(script),
               "--server.address", host, "--server.port", str(port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "viewer",
               # flags outrank config files and STREAMLIT_* variables: no local config can
               # switch the cross-site request checks off
               "--server.enableXsrfProtection", "true", "--server.enableCORS", "true"]  # fmt: skip
    err_console.print(f"dashboard on http://{host}:{port}")
    raise typer.Exit(subprocess.call(command))


def main() -> None:
    """Entry point: run the CLI, turning repometer's errors into one line on stderr."""
    try:
        # without standalone mode, click returns (not raises) the code of a typer.Exit
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except (RepometerError, ParameterError, PluginError, UnknownMetricError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        if isinstance(exc, _click_exception_types()):
            if hasattr(exc, "show"):
                exc.show()
            else:
                err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            sys.exit(getattr(exc, "exit_code", 1))
        raise


def _click_exception_types() -> tuple[type[Exception], ...]:
    """Click's exception base, and typer's: typer >= 0.20 vendors click as ``typer._click``,
    whose usage errors (unknown option, missing argument) do not derive from click's."""
    types: list[type[Exception]] = []
    try:
        import click

        types.append(click.ClickException)
    except ImportError:
        pass
    try:
        from typer.exceptions import TyperException

        types.append(TyperException)
    except ImportError:
        pass
    return tuple(types)
