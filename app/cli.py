"""The ``repometer`` command line."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from metrics.api import Metric, ParameterError
from metrics.registry import PluginError, UnknownMetricError
from repometer.compute import (
    MetricFailedError,
    Outcome,
    cached_rows,
    compute_repository,
    get_or_compute,
    registry_for,
)
from repometer.errors import RepometerError
from repometer.ingest import IngestResult, ingest_repository
from repometer.registry import add_repository
from repometer.settings import Settings
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
    state.settings = Settings(**overrides)


def _store() -> Store:
    return open_store(state.settings.database_url)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed and task.completed and task.elapsed:
            speed = task.completed / task.elapsed  # a single update gives rich no speed sample
        return Text(f"{speed:,.0f} commits/s" if speed else "", style="progress.data.speed")


@contextmanager
def _ingest_progress(name: str):
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    ) as bar:
        task_id = bar.add_task(name, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task_id, completed=done, total=total)

        yield update


def _ingest_one(store: Store, record: RepositoryRecord) -> IngestResult:
    with _ingest_progress(record.name) as progress:
        result = ingest_repository(store, record, state.settings, progress=progress)
    if result.up_to_date:
        err_console.print(f"{record.name}: up to date at {_short(result.head)}")
    else:
        err_console.print(
            f"{record.name}: {result.added:,} commits added, {result.removed:,} removed, "
            f"head {_short(result.head)} ({result.seconds:.1f} s)"
        )
    return result


def _short(sha: str | None) -> str:
    return sha[:12] if sha else "(no commits)"


@app.command()
def add(
    target: Annotated[str, typer.Argument(help="Local path or URL (https, ssh, git@host:path).")],
    ref: Annotated[str, typer.Option(help="Ingest what this ref reaches instead of HEAD.")] = "HEAD",
) -> None:
    """Register a repository (a remote one is mirrored under the data directory)."""
    store = _store()
    with err_console.status(f"registering {target}"):
        record, created = add_repository(store, state.settings, target, ref=ref)
    if created:
        err_console.print(f"added {record.name} (id {record.id})")
    else:
        err_console.print(f"{record.name} is already registered (id {record.id}); nothing to do")


@app.command()
def ingest(
    repos: Annotated[
        list[str] | None, typer.Argument(help="Ids, names or URLs (default: every repository).")
    ] = None,
) -> None:
    """Bring the stored history of repositories up to date with git."""
    store = _store()
    records = [store.get_repository(r) for r in repos] if repos else store.list_repositories()
    if not records:
        err_console.print("no repositories registered; add one with `repometer add TARGET`")
        return
    failures = 0
    for record in records:
        try:
            _ingest_one(store, record)
        except RepometerError as exc:
            failures += 1
            err_console.print(f"[red]error:[/red] {record.name}: {exc}", highlight=False)
    if failures:
        raise typer.Exit(1)


@app.command()
def run(
    target: Annotated[str, typer.Argument(help="Local path or URL of a git repository.")],
    ref: Annotated[str, typer.Option(help="Ingest what this ref reaches instead of HEAD.")] = "HEAD",
) -> None:
    """Register a repository if needed, ingest it now and compute the whole catalogue."""
    store = _store()
    with err_console.status(f"registering {target}"):
        record, _ = add_repository(store, state.settings, target, ref=ref)
    if record.ref != ref:
        store.set_ref(record.id, ref)
    _ingest_one(store, record)
    record = store.get_repository(record.id)
    _compute_one(store, record, _selected_metrics(None), force=False)
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


def _repository_summary(store: Store, record: RepositoryRecord) -> dict[str, Any]:
    totals = store.totals(record.id)
    return {
        "id": record.id,
        "name": record.name,
        "url": record.url,
        "head": record.head,
        "ref": record.ref,
        "status": record.status,
        "error": record.error,
        "commits": totals.commits,
        "merges": totals.merges,
        "authors": totals.authors,
        "lines_added": totals.lines_added,
        "lines_deleted": totals.lines_deleted,
        "last_ingested": record.last_ingested.isoformat() if record.last_ingested else None,
    }


def _print_repositories(
    store: Store, records: list[RepositoryRecord], output: OutputFormat
) -> None:
    summaries = [_repository_summary(store, r) for r in records]
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


def _compute_one(store: Store, record: RepositoryRecord, metrics: list[Metric], force: bool):
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[current]}"), TimeElapsedColumn(), console=err_console,
    ) as bar:  # fmt: skip
        task_id = bar.add_task(f"{record.name} metrics", total=len(metrics), current="")

        def advance(outcome: Outcome) -> None:
            bar.update(task_id, advance=1, current=f"{outcome.metric}: {outcome.status}")

        outcomes = compute_repository(
            store, record, state.settings, metrics, force=force, progress=advance
        )
    counts = Counter(o.status for o in outcomes)
    err_console.print(
        f"{record.name}: {counts['computed']} computed, {counts['cached']} cached, "
        f"{counts['failed']} failed ({sum(o.seconds for o in outcomes):.1f} s)"
    )
    for o in outcomes:
        if o.error:
            err_console.print(f"[red]{o.metric} failed:[/red] {o.error}", highlight=False)
    return outcomes


@app.command()
def compute(
    repos: Annotated[
        list[str] | None, typer.Argument(help="Ids, names or URLs (default: every repository).")
    ] = None,
    metric_names: Annotated[
        list[str] | None, typer.Option("--metric", "-m", help="Only these metrics (repeatable).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Recompute even fresh results.")] = False,
) -> None:
    """Compute the metrics whose cached results are missing or stale."""
    store = _store()
    records = [store.get_repository(r) for r in repos] if repos else store.list_repositories()
    metrics = _selected_metrics(metric_names)
    failed = False
    for record in records:
        outcomes = _compute_one(store, record, metrics, force)
        failed = failed or any(o.status == "failed" for o in outcomes)
    if failed:
        raise typer.Exit(1)


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
