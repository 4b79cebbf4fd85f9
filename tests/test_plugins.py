"""Declaring and discovering metrics: the decorator, entry points, the plugins directory."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal

import pytest

from metrics import Metric, MetricDefinitionError, ParameterError, Shape, metric
from metrics.registry import ENTRY_POINT_GROUP, PluginError, UnknownMetricError, load_registry

CLI = [sys.executable, "-c", "from app.cli import main; main()"]

GOOD_PLUGIN = '''
from metrics import Shape, metric

@metric(version=1, unit="commits", shape=Shape.SCALAR)
def merge_count(ctx):
    """Merge commits in the history."""
    return {"value": int(ctx.commits(["is_merge"])["is_merge"].sum())}
'''


def test_builtin_catalogue_registers_through_the_entry_point_group() -> None:
    (builtin,) = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "builtin"]
    assert builtin.value == "metrics.builtin"
    registry = load_registry()
    builtins = [m for m in registry if m.plugin == "builtin (metrics.builtin)"]
    assert len(builtins) >= 25
    for name in (
        "commits",
        "lines_changed",
        "contributors",
        "contributor_absence_factor",
        "elephant_factor",
        "hotspots",
        "temporal_coupling",
        "complexity",
    ):
        assert registry.get(name).plugin == "builtin (metrics.builtin)"


def test_example_plugin_is_installed_and_discovered() -> None:
    metric_ = load_registry().get("weekend_commits")
    assert metric_.plugin == "example (repometer_example_metrics)"
    assert (
        metric_.description
        == "Commits authored on a Saturday or Sunday, in the author's own time zone."
    )


def test_plugins_directory_adds_metrics(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(GOOD_PLUGIN)
    registry = load_registry(tmp_path)
    assert registry.get("merge_count").plugin == "mine.py"
    assert "commits" in registry  # installed plugins still load


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("import no_such_module_anywhere\n", "plugin 'broken.py' failed to load: No module named"),
        ("def oops(:\n", "plugin 'broken.py' failed to load"),
        ("x = 1\n", "plugin 'broken.py' defines no metrics"),
        (
            GOOD_PLUGIN.replace("merge_count", "commits"),
            "plugin 'broken.py' declares metric 'commits', already provided by plugin 'builtin",
        ),
        (GOOD_PLUGIN.replace("version=1", "version=0"), "version must be an int >= 1"),
    ],
    ids=["import-error", "syntax-error", "no-metrics", "duplicate-name", "bad-version"],
)
def test_broken_plugin_fails_loudly_naming_it(tmp_path: Path, source: str, message: str) -> None:
    (tmp_path / "broken.py").write_text(source)
    with pytest.raises(PluginError) as error:
        load_registry(tmp_path)
    assert message in str(error.value)


def test_missing_plugins_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PluginError, match="does not exist"):
        load_registry(tmp_path / "nowhere")


def test_cli_lists_metrics_and_names_a_broken_plugin(tmp_path: Path) -> None:
    env = {"REPOMETER_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"}
    listed = subprocess.run([*CLI, "metrics", "--format", "json"], env=env,
                            capture_output=True, text=True, check=True)  # fmt: skip
    by_name = {m["name"]: m for m in json.loads(listed.stdout)}
    assert by_name["commits"]["parameters"][0] == {
        "name": "period",
        "type": "str",
        "default": "day",
        "choices": ["day", "week", "month"],
    }
    assert by_name["commits"]["unit"] == "commits"
    assert by_name["weekend_commits"]["plugin"] == "example (repometer_example_metrics)"

    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "bad.py").write_text("raise RuntimeError('boom')\n")
    broken = subprocess.run([*CLI, "metrics"], capture_output=True, text=True,
                            env={**env, "REPOMETER_PLUGINS_DIR": str(tmp_path / "plugins")})  # fmt: skip
    assert broken.returncode == 1
    assert broken.stderr.strip() == "error: plugin 'bad.py' failed to load: boom"


def test_decorator_reads_the_signature_and_docstring() -> None:
    @metric(version=3, unit="files", shape="table", entity="file")
    def widest(
        ctx,
        *,
        by: Literal["file", "directory"] = "file",
        limit: int = 10,
        share: float = 0.5,
        bots: bool = False,
    ):
        """Widest things first.

        More text that is not the description.
        """
        return [{"limit": limit}]

    assert isinstance(widest, Metric)
    assert (widest.name, widest.version, widest.shape, widest.entity) == (
        "widest",
        3,
        Shape.TABLE,
        "file",
    )
    assert widest.description == "Widest things first."
    assert [(p.name, p.type, p.default, p.choices) for p in widest.parameters] == [
        ("by", "str", "file", ("file", "directory")),
        ("limit", "int", 10, None),
        ("share", "float", 0.5, None),
        ("bots", "bool", False, None),
    ]
    assert widest.resolve({"limit": "3", "bots": "yes", "since": "2024-01-01"}) == {
        "by": "file",
        "limit": 3,
        "share": 0.5,
        "bots": True,
        "since": "2024-01-01",
        "until": "",
    }
    assert widest(None, limit=4) == [{"limit": 4}]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "many"}, "parameter 'limit' must be of type int, not 'many'"),
        ({"limit": 2.5}, "parameter 'limit' must be of type int"),
        ({"limit": str(2**64)}, "parameter 'limit' must be of type int"),
        ({"since": "2024-02-30"}, "parameter 'since' must be of type date"),
        ({"by": "repo"}, "parameter 'by' must be one of file, directory, not 'repo'"),
        ({"bots": "maybe"}, "parameter 'bots' must be of type bool"),
        ({"since": "last week"}, "parameter 'since' must be of type date"),
        ({"colour": "red"}, "metric 'sample' has no parameter 'colour'"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(params: dict, message: str) -> None:
    @metric(version=1, unit="x", shape="scalar")
    def sample(
        ctx, *, by: Literal["file", "directory"] = "file", limit: int = 1, bots: bool = False
    ):
        """Sample."""
        return 1

    with pytest.raises(ParameterError) as error:
        sample.resolve(params)
    assert message in str(error.value)


def _declare(**kwargs):
    def fn(ctx, *, n: int = 1):
        """Doc."""

    options = {"version": 1, "unit": "x", "shape": "scalar", **kwargs}
    return metric(**options)(fn)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad-Name"}, "is not snake_case"),
        ({"version": 0}, "version must be an int >= 1"),
        ({"version": "2"}, "version must be an int >= 1"),
        ({"shape": "pie"}, "unknown shape 'pie'"),
    ],
)
def test_bad_declarations_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(MetricDefinitionError, match=message):
        _declare(**kwargs)


def test_parameters_need_defaults_types_and_no_clash_with_the_date_range() -> None:
    with pytest.raises(MetricDefinitionError, match="needs a default"):

        @metric(version=1, unit="x", shape="scalar")
        def no_default(ctx, n: int):
            """Doc."""

    with pytest.raises(MetricDefinitionError, match="annotated int, float, str, bool"):

        @metric(version=1, unit="x", shape="scalar")
        def listy(ctx, *, items: list = []):  # noqa: B006
            """Doc."""

    with pytest.raises(MetricDefinitionError, match="since is set by the context"):

        @metric(version=1, unit="x", shape="scalar")
        def dated(ctx, *, since: str = ""):
            """Doc."""

    with pytest.raises(MetricDefinitionError, match="needs a description"):

        @metric(version=1, unit="x", shape="scalar")
        def undocumented(ctx):
            return 1


def test_unknown_metric_is_a_clear_error() -> None:
    with pytest.raises(UnknownMetricError, match="unknown metric: nope"):
        load_registry().get("nope")
