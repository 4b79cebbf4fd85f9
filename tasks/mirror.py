"""This worker's copy of a repository: the workers of a cluster keep mirrors of their own."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pygit2

from repometer.registry import ensure_mirror
from repometer.settings import Settings
from repometer.storage import RepositoryRecord


def _lacks(git_dir: Path, shas: Sequence[str]) -> bool:
    odb = pygit2.Repository(str(git_dir)).odb
    return any(sha not in odb for sha in shas)


def mirror_with(record: RepositoryRecord, settings: Settings, shas: Sequence[str]) -> Path:
    """The repository on this worker, with every commit in ``shas``.

    A worker without the mirror clones it; one whose mirror is older than the plan (made and
    fetched on another worker) fetches, once, before it reads the new commits.
    """
    git_dir = ensure_mirror(record, settings, fetch=False)
    if record.is_remote and shas and _lacks(git_dir, shas):
        git_dir = ensure_mirror(record, settings, fetch=True)
    return git_dir
