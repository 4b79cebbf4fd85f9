"""Declaring metrics: the ``@metric`` decorator and the ``Metric`` definition it returns."""

from __future__ import annotations

import inspect
import math
import json
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from typing import Any, Literal

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Shape(StrEnum):
    """What a metric's rows look like, so front-ends know how to draw them."""

    SERIES = "series"
    """One row per period: ``{"period": "YYYY-MM-DD" | "YYYY-MM", "value": ..., ...}``."""
    TABLE = "table"
    """One row per entity (file, author, organisation, ...), named by ``entity``."""
    SCALAR = "scalar"
    """A single row ``{"value": ...}`` (and any explanatory columns)."""


Period = Literal["day", "week", "month"]
"""The grouping periods of time-series metrics (author time in UTC)."""


class MetricDefinitionError(Exception):
    """A metric is declared wrongly (bad name, version, parameter or duplicate)."""


class ParameterError(ValueError):
    """A parameter value does not fit the metric's declared parameters."""


_SCALARS: dict[type, str] = {int: "int", float: "float", str: "str", bool: "bool"}


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # "int", "float", "str", "bool" or "date" (YYYY-MM-DD, or "" for none)
    default: Any
    choices: tuple[Any, ...] | None = None

    def coerce(self, value: Any) -> Any:
        """``value`` (a string from a command line or query string, or a Python value) -> typed."""
        try:
            if self.type == "bool":
                if isinstance(value, bool):
                    result: Any = value
                elif str(value).lower() in ("1", "true", "yes", "on"):
                    result = True
                elif str(value).lower() in ("0", "false", "no", "off"):
                    result = False
                else:
                    raise ValueError(value)
            elif self.type == "int":
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError(value)
                result = int(value)
                if not -(2**63) <= result < 2**63:  # what every database can store
                    raise ValueError(value)
            elif self.type == "float":
                result = float(value)
                if not math.isfinite(result):
                    raise ValueError(value)
            elif self.type == "date":
                result = "" if value in (None, "") else str(value)
                if result and not _DATE.match(result):
                    raise ValueError(value)
                if result:
                    date.fromisoformat(result)  # a real day: no 2024-13-45
            else:
                result = str(value)
        except (TypeError, ValueError):
            raise ParameterError(
                f"parameter {self.name!r} must be of type {self.type}, not {value!r}"
            ) from None
        if self.choices is not None and result not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise ParameterError(f"parameter {self.name!r} must be one of {allowed}, not {value!r}")
        return result

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "default": self.default,
                "choices": list(self.choices) if self.choices else None}  # fmt: skip


#: Parameters every metric has: the date range (inclusive author days, UTC) of the history it
#: reads. The context applies them to every read, so metric functions never see them.
COMMON_PARAMETERS = (Parameter("since", "date", ""), Parameter("until", "date", ""))


@dataclass(frozen=True)
class Metric:
    """A metric definition: call it with a context (and parameters) to compute its rows."""

    name: str
    version: int
    description: str
    unit: str
    shape: Shape
    entity: str | None
    parameters: tuple[Parameter, ...]
    fn: Callable[..., Any] = field(repr=False, compare=False)
    plugin: str | None = None
    """The plugin (entry point or file) that provided it; set when it is registered."""

    def resolve(self, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """All parameters with defaults filled in and values checked; unknown names refused."""
        given = dict(given or {})
        known = {p.name: p for p in (*self.parameters, *COMMON_PARAMETERS)}
        unknown = sorted(set(given) - set(known))
        if unknown:
            names = ", ".join(known) or "none"
            raise ParameterError(
                f"metric {self.name!r} has no parameter {unknown[0]!r} (parameters: {names})"
            )
        return {
            name: param.coerce(given[name]) if name in given else param.default
            for name, param in known.items()
        }

    def parameters_key(self, given: Mapping[str, Any] | None = None) -> str:
        """The canonical text of the resolved parameters (part of the cache key)."""
        return json.dumps(self.resolve(given), sort_keys=True, separators=(",", ":"))

    def compute(self, context: Any, resolved: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Rows for ``resolved`` parameters; the date range is already in ``context``."""
        own = {p.name: resolved[p.name] for p in self.parameters}
        return to_rows(self.fn(context, **own))

    def __call__(self, context: Any, **params: Any) -> list[dict[str, Any]]:
        return self.compute(context, self.resolve(params))

    def with_plugin(self, plugin: str) -> Metric:
        return replace(self, plugin=plugin)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "description": self.description,
            "unit": self.unit, "shape": str(self.shape), "entity": self.entity,
            "parameters": [p.describe() for p in (*self.parameters, *COMMON_PARAMETERS)],
            "plugin": self.plugin,
        }  # fmt: skip


def _parameter(name: str, annotation: Any, default: Any) -> Parameter:
    if default is inspect.Parameter.empty:
        raise MetricDefinitionError(f"parameter {name!r} needs a default value")
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        kinds = {type(c) for c in choices}
        if len(kinds) != 1 or next(iter(kinds)) not in _SCALARS:
            raise MetricDefinitionError(f"parameter {name!r}: Literal choices must share one type")
        return Parameter(name, _SCALARS[kinds.pop()], default, tuple(choices))
    if annotation not in _SCALARS:
        raise MetricDefinitionError(
            f"parameter {name!r} must be annotated int, float, str, bool or a Literal"
        )
    return Parameter(name, _SCALARS[annotation], default)


def metric(
    *,
    version: int,
    unit: str,
    shape: Shape | str,
    entity: str | None = None,
    name: str | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], Metric]:
    """Declare a metric: ``fn(context, *, param: type = default, ...)`` returning rows.

    The name defaults to the function's name, the description to its docstring's first line.
    Bump ``version`` whenever the output changes: cached results of older versions are
    recomputed.
    """

    def decorate(fn: Callable[..., Any]) -> Metric:
        metric_name = name or fn.__name__
        if not _NAME.match(metric_name):
            raise MetricDefinitionError(f"metric name {metric_name!r} is not snake_case")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise MetricDefinitionError(f"metric {metric_name!r}: version must be an int >= 1")
        summary = description or (inspect.getdoc(fn) or "").strip().splitlines()[:1]
        summary = summary if isinstance(summary, str) else (summary[0] if summary else "")
        if not summary:
            raise MetricDefinitionError(f"metric {metric_name!r} needs a description or docstring")
        hints = typing.get_type_hints(fn)
        signature = inspect.signature(fn)
        params = list(signature.parameters.values())
        if not params or params[0].kind not in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            raise MetricDefinitionError(f"metric {metric_name!r} must take the context first")
        declared = tuple(_parameter(p.name, hints.get(p.name, Any), p.default) for p in params[1:])
        clash = {p.name for p in declared} & {p.name for p in COMMON_PARAMETERS}
        if clash:
            raise MetricDefinitionError(
                f"metric {metric_name!r}: {', '.join(sorted(clash))} is set by the context"
            )
        try:
            shape_value = Shape(shape)
        except ValueError:
            raise MetricDefinitionError(
                f"metric {metric_name!r}: unknown shape {shape!r}"
            ) from None
        definition = Metric(
            name=metric_name,
            version=version,
            description=summary,
            unit=unit,
            shape=shape_value,
            entity=entity,
            parameters=declared,
            fn=fn,
        )
        for param in declared:
            param.coerce(param.default)  # a default outside its own choices is a definition bug
        return definition

    return decorate


def _plain(value: Any) -> Any:
    """numpy/pandas scalars and timestamps -> JSON-ready Python values."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN -> None
    if hasattr(value, "item"):  # numpy scalar
        return _plain(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def to_rows(result: Any) -> list[dict[str, Any]]:
    """A metric's return value (rows, one row, a DataFrame or a number) -> list of plain dicts."""
    if hasattr(result, "to_dict") and hasattr(result, "columns"):  # a pandas DataFrame
        result = result.to_dict(orient="records")
    elif isinstance(result, Mapping):
        result = [result]
    elif isinstance(result, (int, float)) and not isinstance(result, bool):
        result = [{"value": result}]
    if not isinstance(result, Sequence):
        raise TypeError(f"a metric must return rows, not {type(result).__name__}")
    return [{str(k): _plain(v) for k, v in dict(row).items()} for row in result]
