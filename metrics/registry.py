"""Finding metrics: the ``repometer.metrics`` entry-point group and a plugins directory.

The built-in catalogue is registered through the same entry-point group as third-party
packages (see ``pyproject.toml``), so it goes through exactly the path plugins use.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from metrics.api import Metric, MetricDefinitionError

ENTRY_POINT_GROUP = "repometer.metrics"


class PluginError(Exception):
    """A plugin could not be loaded, or declares a metric whose name is already taken."""


class UnknownMetricError(KeyError):
    """No registered metric has that name."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry:
    """The registered metrics by name."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def register(self, metric: Metric, plugin: str) -> None:
        existing = self._metrics.get(metric.name)
        if existing is not None:
            raise PluginError(
                f"plugin {plugin!r} declares metric {metric.name!r}, "
                f"already provided by plugin {existing.plugin!r}"
            )
        self._metrics[metric.name] = metric.with_plugin(plugin)

    def get(self, name: str) -> Metric:
        try:
            return self._metrics[name]
        except KeyError:
            raise UnknownMetricError(f"unknown metric: {name}") from None

    def __iter__(self) -> Iterator[Metric]:
        return iter(sorted(self._metrics.values(), key=lambda m: m.name))

    def __len__(self) -> int:
        return len(self._metrics)

    def __contains__(self, name: object) -> bool:
        return name in self._metrics


def metrics_in(module: ModuleType) -> list[Metric]:
    """The metrics defined in ``module`` or its submodules (not ones it merely imports)."""
    prefix = module.__name__
    found = {}
    for value in vars(module).values():
        if isinstance(value, Metric):
            origin = getattr(value.fn, "__module__", "")
            if origin == prefix or origin.startswith(prefix + "."):
                found[id(value)] = value
    return list(found.values())


def _register_module(registry: Registry, module: ModuleType, plugin: str) -> None:
    metrics = metrics_in(module)
    if not metrics:
        raise PluginError(f"plugin {plugin!r} defines no metrics")
    for metric in metrics:
        registry.register(metric, plugin)


def _load_file(path: Path) -> ModuleType:
    name = f"repometer_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_registry(
    plugins_dir: Path | None = None, *, groups: Iterable[str] = (ENTRY_POINT_GROUP,)
) -> Registry:
    """Every metric from the entry-point groups, then from ``plugins_dir/*.py``.

    A plugin that fails to import or declares a duplicate name stops loading with a
    ``PluginError`` naming it.
    """
    registry = Registry()
    for group in groups:
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            plugin = f"{ep.name} ({ep.value})"
            try:
                loaded = ep.load()
            except Exception as exc:
                raise PluginError(f"plugin {plugin!r} failed to load: {exc}") from exc
            if not isinstance(loaded, ModuleType):
                raise PluginError(f"plugin {plugin!r} must name a module, not {loaded!r}")
            _register_module(registry, loaded, plugin)
    if plugins_dir is not None:
        if not plugins_dir.is_dir():
            raise PluginError(f"plugins directory {plugins_dir} does not exist")
        for path in sorted(plugins_dir.glob("*.py")):
            plugin = str(path.name)
            try:
                module = _load_file(path)
            except (Exception, MetricDefinitionError) as exc:
                raise PluginError(f"plugin {plugin!r} failed to load: {exc}") from exc
            _register_module(registry, module, plugin)
    return registry
