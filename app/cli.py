"""The ``repometer`` command line."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
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
err_console = Console(stderr=True)


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
    """Register a repository if needed and ingest it now."""
    store = _store()
    with err_console.status(f"registering {target}"):
        record, _ = add_repository(store, state.settings, target, ref=ref)
    if record.ref != ref:
        store.set_ref(record.id, ref)
    _ingest_one(store, record)
    _print_repositories(store, [store.get_repository(record.id)], OutputFormat.table)


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
    console.print(table)


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


def main() -> None:
    """Entry point: run the CLI, turning repometer's errors into one line on stderr."""
    try:
        app(standalone_mode=False)
    except RepometerError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
