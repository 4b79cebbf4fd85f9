"""The plugin against a real repository, ingested by repometer into a SQLite file."""

import os
import subprocess

from metrics.registry import load_registry
from repometer.compute import get_or_compute
from repometer.ingest import ingest_repository
from repometer.registry import add_repository
from repometer.settings import Settings
from repometer.storage import open_store


def _commit(repo, date, name="Ada", email="ada@example.org"):
    env = {
        **os.environ,
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_DATE": date,
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", date], cwd=repo, env=env, check=True
    )


def test_weekend_commits_counts_local_weekends(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    _commit(repo, "2024-03-01T12:00:00+0000")  # Friday
    _commit(repo, "2024-03-02T12:00:00+0000")  # Saturday
    _commit(repo, "2024-03-03T23:30:00-0500")  # Sunday locally, Monday in UTC
    _commit(repo, "2024-03-09T10:00:00+0000", "dependabot[bot]", "bot@example.org")  # a bot

    settings = Settings(home=tmp_path / "home")
    store = open_store(settings.database_url)
    record, _ = add_repository(store, settings, str(repo))
    ingest_repository(store, record, settings)
    record = store.get_repository(record.id)
    metric = load_registry().get("weekend_commits")

    result, _ = get_or_compute(store, record, settings, metric)
    assert result.rows == [{"value": 2, "share": 2 / 3}]
    with_bots, _ = get_or_compute(store, record, settings, metric, {"exclude_bots": False})
    assert with_bots.rows == [{"value": 3, "share": 3 / 4}]
