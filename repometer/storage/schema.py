"""The metadata tables, portable across SQLite, PostgreSQL and CrateDB.

Primary keys are natural and deterministic (no autoincrement: CrateDB has no SERIAL), no
UNIQUE constraints beyond them (CrateDB has none), timestamps are timezone-aware, and the
grouping columns metrics need (day, week, month, local hour and weekday, email domain) are
computed at ingestion so that metric SQL stays portable. CrateDB-only options (``crate_*``)
are ignored by the other dialects.

``flags`` columns say what was odd about a row's source (sorted, space-separated tokens, NULL
when nothing was): the tokens are listed in the README.
"""

from __future__ import annotations

import sqlalchemy as sa

#: 2: ``flags`` on repositories, commits and file_changes (``Store.create_schema`` upgrades 1).
SCHEMA_VERSION = 2

metadata = sa.MetaData()

#: CrateDB indexes strings and keeps them in a column store, both capped at 32 KiB per value;
#: free text (messages, metric results) is stored, not indexed.
_LARGE_TEXT = {"crate_index": False, "crate_columnstore": False}

#: Rows of one repository live together on one CrateDB shard.
_CLUSTERED_BY_REPOSITORY = {"crate_clustered_by": "repo_id"}

repositories = sa.Table(
    "repositories",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("name", sa.String, nullable=False),
    sa.Column("url", sa.String, nullable=False),
    sa.Column("is_remote", sa.Boolean, nullable=False),
    sa.Column("git_dir", sa.String, nullable=False),
    sa.Column("ref", sa.String, nullable=False),
    sa.Column("head", sa.String),
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String, nullable=False),
    sa.Column("error", sa.Text, **_LARGE_TEXT),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ingest_started_at", sa.DateTime(timezone=True)),
    sa.Column("last_ingested", sa.DateTime(timezone=True)),
    sa.Column("flags", sa.String),  # shallow: ingested from a shallow clone
)

commits = sa.Table(
    "commits",
    metadata,
    sa.Column("repo_id", sa.String, primary_key=True),
    sa.Column("sha", sa.String, primary_key=True),
    sa.Column("parents", sa.String, nullable=False),  # space-separated shas, in order
    sa.Column("is_merge", sa.Boolean, nullable=False),
    sa.Column("is_bot", sa.Boolean, nullable=False),  # author is an automation account
    sa.Column("author_name", sa.String),
    sa.Column("author_email", sa.String),
    sa.Column("author_time", sa.BigInteger),  # seconds since the epoch, as stored in the commit
    sa.Column("author_offset", sa.Integer),  # minutes east of UTC
    sa.Column("committer_name", sa.String),
    sa.Column("committer_email", sa.String),
    sa.Column("committer_time", sa.BigInteger),
    sa.Column("committer_offset", sa.Integer),
    sa.Column("mailmap_name", sa.String),  # the author after .mailmap (git's %aN)
    sa.Column("mailmap_email", sa.String),  # git's %aE
    sa.Column("email_domain", sa.String),  # of mailmap_email, lower-case
    sa.Column("author_day", sa.String),  # YYYY-MM-DD of the author time in UTC
    sa.Column("author_week", sa.String),  # YYYY-MM-DD of that week's Monday (UTC)
    sa.Column("author_month", sa.String),  # YYYY-MM (UTC)
    sa.Column("author_local_hour", sa.SmallInteger),  # 0-23 in the author's own time zone
    sa.Column("author_local_weekday", sa.SmallInteger),  # 0 = Monday, in the author's zone
    sa.Column("files_changed", sa.Integer, nullable=False),
    sa.Column("lines_added", sa.Integer, nullable=False),
    sa.Column("lines_deleted", sa.Integer, nullable=False),
    sa.Column("message", sa.Text, **_LARGE_TEXT),
    sa.Column("flags", sa.String),  # bad_date, renames_skipped, ... (see the README)
    **_CLUSTERED_BY_REPOSITORY,
)

file_changes = sa.Table(
    "file_changes",
    metadata,
    sa.Column("repo_id", sa.String, primary_key=True),
    sa.Column("sha", sa.String, primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),  # position in git's diff output
    sa.Column("path", sa.String, nullable=False),  # the new path; the old one for deletions
    sa.Column("old_path", sa.String),  # the source of a rename (or copy)
    sa.Column("change_type", sa.String, nullable=False),  # A, D, M, R, T (git's status letter)
    sa.Column("lines_added", sa.Integer, nullable=False),  # 0 for binary files
    sa.Column("lines_deleted", sa.Integer, nullable=False),
    sa.Column("is_binary", sa.Boolean, nullable=False),
    sa.Column("flags", sa.String),  # too_large: above max_blob_size, not line-counted
    **_CLUSTERED_BY_REPOSITORY,
)

#: Columns added since version 1, by table: ``Store.create_schema`` adds them to older databases.
ADDED_COLUMNS: dict[str, tuple[str, ...]] = {
    "repositories": ("flags",),
    "commits": ("flags",),
    "file_changes": ("flags",),
}

schema_info = sa.Table(
    "repometer_schema",
    metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

metric_results = sa.Table(
    "metric_results",
    metadata,
    sa.Column("repo_id", sa.String, primary_key=True),
    sa.Column("metric", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("parameters", sa.String, primary_key=True),  # canonical JSON of all parameters
    sa.Column("status", sa.String, nullable=False),  # "ok" or "failed"
    sa.Column("error", sa.Text, **_LARGE_TEXT),
    sa.Column("head", sa.String),  # the ingested head and generation it was computed from
    sa.Column("generation", sa.BigInteger, nullable=False),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("seconds", sa.Double, nullable=False),
    sa.Column("rows", sa.Text, **_LARGE_TEXT),  # JSON list of row objects
    **_CLUSTERED_BY_REPOSITORY,
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("repo_id", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),  # "analyze" or "compute"
    sa.Column("metrics", sa.Text),  # JSON list of metric names, or null for all
    sa.Column("status", sa.String, nullable=False),  # scheduled, running, completed, failed
    sa.Column("error", sa.Text, **_LARGE_TEXT),
    sa.Column("prefect_flow_run_id", sa.String),  # set when a Prefect deployment runs it
    sa.Column("pid", sa.Integer),  # of the local background process otherwise
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    crate_clustered_by="id",
)
