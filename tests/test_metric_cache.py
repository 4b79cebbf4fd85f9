"""The results cache: nothing computed twice, stale results recomputed, failures recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from metrics import Shape, metric
from metrics.registry import Registry, load_registry
from repometer.compute import compute_repository, get_or_compute
from repometer.ingest import ingest_repository

CLI = [sys.executable, "-c", "from app.cli import main; main()"]
EXAMPLE_PLUGIN = Path(__file__).resolve().parents[1] / "examples" / "metric-plugin"


def _history(make_repo):
    repo = make_repo()
    repo.write("a.txt", "1\n2\n")
    repo.commit("one", date="2024-01-01T10:00:00+0000")
    repo.write("b.txt", "x\n")
    repo.commit("two", date="2024-01-06T10:00:00+0000")  # a Saturday
    repo.write("a.txt", "1\n")
    repo.commit("three", date="2024-01-08T10:00:00+0000")
    return repo


@metric(version=1, unit="commits", shape=Shape.SCALAR)
def counted(ctx):
    """Commits in the history."""
    return {"value": len(ctx.commits(["sha"]))}


@metric(version=1, unit="x", shape=Shape.SCALAR)
def exploding(ctx):
    """Always fails."""
    raise RuntimeError("kaboom")


def _registry(*metrics, plugin="test"):
    registry = Registry()
    for m in metrics:
        registry.register(m, plugin)
    return registry


def test_second_run_does_no_work(make_repo, ingest, store, settings) -> None:
    record = ingest(_history(make_repo))
    catalogue = list(load_registry())
    first = compute_repository(store, record, settings, catalogue)
    assert {o.status for o in first} == {"computed"}, [o for o in first if o.error]
    stamps = {r.metric: r.computed_at for r in store.list_results(record.id)}

    second = compute_repository(store, record, settings, catalogue)
    assert {o.status for o in second} == {"cached"}
    assert {r.metric: r.computed_at for r in store.list_results(record.id)} == stamps


def test_version_bump_recomputes_only_that_metric(make_repo, ingest, store, settings) -> None:
    record = ingest(_history(make_repo))
    compute_repository(store, record, settings, [counted, *load_registry()])

    @metric(version=2, unit="commits", shape=Shape.SCALAR, name="counted")
    def counted_v2(ctx):
        """Commits in the history, negated (a changed definition)."""
        return {"value": -len(ctx.commits(["sha"]))}

    outcomes = compute_repository(store, record, settings, [counted_v2, *load_registry()])
    by_status = {o.metric for o in outcomes if o.status == "computed"}
    assert by_status == {"counted"}
    v1 = store.get_result(record.id, "counted", 1, counted.parameters_key())
    v2 = store.get_result(record.id, "counted", 2, counted_v2.parameters_key())
    assert (v1.rows, v2.rows) == ([{"value": 3}], [{"value": -3}])


def test_new_commits_and_force_push_make_results_stale(make_repo, ingest, store, settings) -> None:
    repo = _history(make_repo)
    record = ingest(repo)
    commits_metric = load_registry().get("commits")
    result, computed = get_or_compute(store, record, settings, commits_metric)
    assert computed and sum(r["value"] for r in result.rows) == 3

    repo.write("c.txt", "new\n")
    repo.commit("four", date="2024-01-09T10:00:00+0000")
    ingest_repository(store, record, settings)
    record = store.get_repository(record.id)
    result, computed = get_or_compute(store, record, settings, commits_metric)
    assert computed and sum(r["value"] for r in result.rows) == 4
    assert result.head == repo.head() and result.generation == 2

    _, computed = get_or_compute(store, record, settings, commits_metric)
    assert not computed

    repo.git("reset", "-q", "--hard", "HEAD~2")
    ingest_repository(store, record, settings)
    record = store.get_repository(record.id)
    result, computed = get_or_compute(store, record, settings, commits_metric)
    assert computed
    assert result.rows == [
        {"period": "2024-01-01", "value": 1},
        {"period": "2024-01-06", "value": 1},
    ]


def test_parameters_are_part_of_the_key(make_repo, ingest, store, settings) -> None:
    record = ingest(_history(make_repo))
    commits_metric = load_registry().get("commits")
    by_day, _ = get_or_compute(store, record, settings, commits_metric)
    by_week, computed = get_or_compute(store, record, settings, commits_metric, {"period": "week"})
    assert computed
    assert [r["period"] for r in by_day.rows] == ["2024-01-01", "2024-01-06", "2024-01-08"]
    assert by_week.rows == [
        {"period": "2024-01-01", "value": 2},
        {"period": "2024-01-08", "value": 1},
    ]
    ranged, _ = get_or_compute(store, record, settings, commits_metric, {"since": "2024-01-02"})
    assert ranged.rows == [
        {"period": "2024-01-06", "value": 1},
        {"period": "2024-01-08", "value": 1},
    ]


def test_a_failing_metric_is_recorded_and_the_others_complete(
    make_repo, ingest, store, settings
) -> None:
    record = ingest(_history(make_repo))
    outcomes = compute_repository(store, record, settings, [exploding, counted])
    assert [(o.metric, o.status) for o in outcomes] == [
        ("exploding", "failed"),
        ("counted", "computed"),
    ]
    failed = store.get_result(record.id, "exploding", 1, exploding.parameters_key())
    assert failed.status == "failed" and failed.rows is None
    assert failed.error.startswith("RuntimeError: kaboom (at ")
    # a failure is a result too: not retried until the data or the metric changes
    again = compute_repository(store, record, settings, [exploding, counted])
    assert [o.status for o in again] == ["cached", "cached"]
    assert again[0].error == failed.error


def _cli(home: Path, db_url: str, *args: str, env: dict | None = None):
    return subprocess.run(
        [*CLI, "--home", str(home), "--db", db_url, *args],
        capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "PREFECT_HOME": os.environ["PREFECT_HOME"], **(env or {})},
    )  # fmt: skip


def test_cli_show_and_compute(make_repo, tmp_path, db_url) -> None:
    repo = _history(make_repo)
    home = tmp_path / "cli-home"
    run = _cli(home, db_url, "run", str(repo.path))
    assert run.returncode == 0, run.stderr
    assert "0 failed" in run.stderr

    shown = _cli(home, db_url, "show", "repo", "commits", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert set(document) == {
        "repository",
        "metric",
        "version",
        "parameters",
        "computed_from",
        "rows",
    }
    assert document["rows"] == [
        {"period": "2024-01-01", "value": 1},
        {"period": "2024-01-06", "value": 1},
        {"period": "2024-01-08", "value": 1},
    ]
    assert document["computed_from"]["head"] == repo.head()
    assert document["parameters"] == {
        "period": "day",
        "exclude_bots": False,
        "since": "",
        "until": "",
    }

    csv = _cli(home, db_url, "show", "repo", "commits", "-p", "period=month", "--format", "csv")
    assert csv.stdout == "period,value\n2024-01,3\n"

    again = _cli(home, db_url, "compute")
    assert again.returncode == 0 and "metrics cached" in again.stderr

    bad = _cli(home, db_url, "show", "repo", "commits", "-p", "period=year")
    assert bad.returncode == 1
    assert (
        bad.stderr.strip()
        == "error: parameter 'period' must be one of day, week, month, not 'year'"
    )
    unknown = _cli(home, db_url, "show", "repo", "nope")
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "error: unknown metric: nope")

    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "failing.py").write_text(
        "from metrics import metric\n\n"
        "@metric(version=1, unit='x', shape='scalar')\n"
        "def failing(ctx):\n    '''Fails.'''\n    raise ValueError('no good')\n"
    )
    failing = _cli(home, db_url, "compute", "-m", "failing", "-m", "commits",
                   env={"REPOMETER_PLUGINS_DIR": str(plugins)})  # fmt: skip
    assert failing.returncode == 1
    assert "failing failed: ValueError: no good" in failing.stderr


def test_example_plugin_is_cached_and_recomputed_after_a_version_bump(
    make_repo, ingest, store, settings, tmp_path
) -> None:
    record = ingest(_history(make_repo))
    installed = load_registry().get("weekend_commits")
    result, computed = get_or_compute(store, record, settings, installed)
    assert computed and result.rows == [{"value": 1, "share": 1 / 3}]
    _, computed = get_or_compute(store, record, settings, installed)
    assert not computed

    plugins = tmp_path / "bumped"
    plugins.mkdir()
    source = (EXAMPLE_PLUGIN / "repometer_example_metrics" / "__init__.py").read_text()
    assert "version=1" in source
    (plugins / "weekend.py").write_text(source.replace("version=1", "version=2"))
    bumped = load_registry(plugins, groups=()).get("weekend_commits")
    assert bumped.version == 2
    result, computed = get_or_compute(store, record, settings, bumped)
    assert computed and result.version == 2
