"""Registering repositories and keeping the mirrors of remote ones on this machine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from repometer import git
from repometer.errors import (
    GitCommandError,
    NotAGitRepositoryError,
    RefusedTargetError,
    RepositoryBusyError,
)
from repometer.settings import Settings
from repometer.storage import RepositoryRecord, Store
from repometer.targets import (
    Target,
    UrlPolicy,
    check_host,
    parse_remote,
    parse_target,
    pinned_transfer_config,
)


def mirror_dir(settings: Settings, repo_id: str) -> Path:
    return settings.mirrors_dir / f"{repo_id}.git"


def git_dir_of(record: RepositoryRecord, settings: Settings) -> Path:
    """Where git finds the repository on this machine (mirrors live under the data dir)."""
    return mirror_dir(settings, record.id) if record.is_remote else Path(record.git_dir)


@contextmanager
def repository_lock(settings: Settings, repo_id: str, timeout: float = -1) -> Iterator[None]:
    """Serialise work on one repository across processes on this machine."""
    settings.locks_dir.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(settings.locks_dir / f"{repo_id}.lock")
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise RepositoryBusyError(
            f"repository {repo_id} is being ingested by another process"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _git_limits(settings: Settings) -> dict[str, float | int]:
    return {
        "timeout": settings.git_timeout,
        "low_speed_limit": settings.git_low_speed_limit,
        "low_speed_time": settings.git_low_speed_time,
        "max_size": int(settings.max_mirror_size),
    }


def _transfer_config(target: Target, settings: Settings) -> list[str]:
    """Check the URL's host again, just before git connects to it, and pin its addresses."""
    addresses = check_host(target, UrlPolicy.for_cli(settings))
    return pinned_transfer_config(target, addresses)


def ensure_mirror(record: RepositoryRecord, settings: Settings, *, fetch: bool = True) -> Path:
    """Clone a remote repository's mirror if this machine lacks it, else fetch (if asked).

    The stored URL passes the URL policy again first: the policy may have been tightened,
    and the host may resolve elsewhere than it did at registration.
    """
    git_dir = git_dir_of(record, settings)
    if not record.is_remote:
        if not git_dir.is_dir():
            raise NotAGitRepositoryError(f"not a git repository any more: {record.url} is gone")
        return git_dir
    if not git_dir.exists() or fetch:
        target = parse_remote(record.url)
        with repository_lock(settings, f"{record.id}.mirror"):
            config = _transfer_config(target, settings)
            if not git_dir.exists():
                git.clone_mirror(record.url, git_dir, **_git_limits(settings), config=config)
            else:
                git.fetch_mirror(git_dir, record.url, **_git_limits(settings), config=config)
    return git_dir


def add_repository(
    store: Store,
    settings: Settings,
    target: str | Target,
    *,
    ref: str = "HEAD",
    clone: bool = True,
    policy: UrlPolicy | None = None,
) -> tuple[RepositoryRecord, bool]:
    """Register ``target`` (cloning a remote one); return the record and whether it is new.

    ``policy`` is what the calling front-end accepts (the CLI's by default). Registering a
    known repository again changes nothing. With ``clone=False`` a remote repository is
    registered at once and mirrored by its first ingestion (for front-ends that must answer
    quickly); its URL and host are still checked.
    """
    policy = policy or UrlPolicy.for_cli(settings)
    resolved = parse_target(target, policy) if isinstance(target, str) else target
    existing = store.find_repository(resolved.id)
    if existing is not None:
        return existing, False
    if resolved.is_remote:
        git_dir = mirror_dir(settings, resolved.id)
        try:
            addresses = check_host(resolved, policy)
        except GitCommandError as exc:  # a host that does not resolve is no repository
            raise RefusedTargetError(f"refused: {exc}") from None
        if clone and not git_dir.exists():
            config = pinned_transfer_config(resolved, addresses)
            git.clone_mirror(resolved.url, git_dir, **_git_limits(settings), config=config)
    else:
        assert resolved.local_git_dir is not None
        git_dir = resolved.local_git_dir
    if git_dir.exists():
        git.resolve_commit(git_dir, ref)  # an unknown --ref is refused before anything is stored
    return store.add_repository(
        id=resolved.id,
        name=resolved.name,
        url=resolved.url,
        is_remote=resolved.is_remote,
        git_dir=str(git_dir),
        ref=ref,
    )
