"""repometer's built-in metric catalogue, registered through the ``repometer.metrics`` entry point."""

from metrics.builtin.activity import (
    activity_dates_times,
    commit_lag,
    commit_size,
    commits,
    lines_changed,
    merges,
    timezones,
)
from metrics.builtin.content import complexity, language_distribution
from metrics.builtin.files import (
    authors_per_file,
    change_frequency,
    churn,
    hotspots,
    knowledge_loss,
    ownership,
    temporal_coupling,
)
from metrics.builtin.organizations import elephant_factor, organizational_diversity
from metrics.builtin.people import (
    bot_activity,
    contribution_attribution,
    contributor_absence_factor,
    contributors,
    email_domains,
    inactive_contributors,
    new_contributors,
    occasional_contributors,
)
from metrics.builtin.releases import release_frequency

__all__ = [
    "activity_dates_times", "authors_per_file", "bot_activity", "change_frequency", "churn",
    "commit_lag", "commit_size", "commits", "complexity", "contribution_attribution",
    "contributor_absence_factor", "contributors", "elephant_factor", "email_domains",
    "hotspots", "inactive_contributors", "knowledge_loss", "language_distribution",
    "lines_changed", "merges", "new_contributors", "occasional_contributors",
    "organizational_diversity", "ownership", "release_frequency", "temporal_coupling",
    "timezones",
]  # fmt: skip
