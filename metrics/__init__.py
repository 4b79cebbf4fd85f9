"""The metric plugin API: pure Python (no Prefect, SQLAlchemy, pygit2 or Streamlit).

A metric is a function declared with ``@metric`` that reads one repository's ingested history
through a ``MetricContext`` and returns rows::

    from metrics import Shape, metric

    @metric(version=1, unit="commits", shape=Shape.SCALAR)
    def weekend_commits(ctx, *, exclude_bots: bool = True):
        \"\"\"Commits authored on a Saturday or Sunday (author's local time).\"\"\"
        df = ctx.commits(["author_local_weekday"], exclude_bots=exclude_bots)
        return {"value": int((df.author_local_weekday >= 5).sum())}

Packages register their module under the ``repometer.metrics`` entry-point group.
"""

from metrics.api import (
    COMMON_PARAMETERS,
    Metric,
    MetricDefinitionError,
    Parameter,
    ParameterError,
    Period,
    Shape,
    metric,
    to_rows,
)
from metrics.context import MetricContext, RepositoryInfo, Tag, TreeEntry

__all__ = [
    "COMMON_PARAMETERS",
    "Metric",
    "MetricContext",
    "MetricDefinitionError",
    "Parameter",
    "ParameterError",
    "Period",
    "RepositoryInfo",
    "Shape",
    "Tag",
    "TreeEntry",
    "metric",
    "to_rows",
]
