"""The mirror size cap: a clone or fetch that would make a mirror larger than
``max_mirror_size`` is killed, and leaves no trace.

Repositories of incompressible random data are served by a real ``git daemon`` on 127.0.0.1,
either directly (the transfer is over before the size watchdog first looks: the check after
git finishes catches it) or through a TCP proxy throttled to a slow link (the watchdog kills
git mid-transfer).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import GitDaemon
from pydantic import ByteSize
from test_faults import TcpProxy, fsck_output, has_object, transfer_leftovers
from test_mirror import processes_mentioning, refs, rev_list

from repometer.errors import RepositoryTooLargeError, is_transient
from repometer.ingest import ingest_repository
from repometer.registry import add_repository, mirror_dir
from repometer.settings import Settings
from repometer.storage import Store

if TYPE_CHECKING:
    from conftest import GitRepo

CAP = 1024**2
BIG = 4 * 1024**2
#: Bytes per second of the slow link: a whole transfer of BIG takes four seconds there.
SLOW_LINK = 1024**2


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite only: the cap does not depend on the database. The daemon listens on loopback,
    which the URL policy refuses by default."""
    return Settings(home=tmp_path / "repometer-home", db_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                    batch_size=3, allow_private_hosts=True, max_mirror_size=CAP)  # fmt: skip


@pytest.fixture(params=["fast-link", "slow-link"])
def link(request: pytest.FixtureRequest, daemon: GitDaemon):
    """How the daemon is reached: ``url(path)`` and the throttled proxy (None when direct)."""
    if request.param == "fast-link":
        yield daemon.url, None
        return
    proxy = TcpProxy(daemon.port, rate=SLOW_LINK)
    try:
        yield (lambda path: f"git://127.0.0.1:{proxy.port}/{path}"), proxy
    finally:
        proxy.close()


def add_big_commit(work: GitRepo, name: str = "big.bin") -> str:
    work.write(name, os.urandom(BIG))  # random bytes: nothing for zlib or deltas to shrink
    sha = work.commit(f"add {name}", date="2024-03-01T10:00:00+0000")
    work.git("push", "-q", "origin", "main")
    return sha


def assert_names_the_cap(exc: RepositoryTooLargeError, what: str) -> None:
    message = str(exc)
    assert "\n" not in message
    assert f"git {what} stopped" in message, message
    assert "max_mirror_size" in message and ByteSize(CAP).human_readable() in message, message
    assert not is_transient(exc)  # the same repository would be as large on the next attempt


def test_a_clone_larger_than_max_mirror_size_is_killed_and_leaves_nothing(
    store: Store, settings: Settings, origin: tuple[GitRepo, Path], link
) -> None:
    url, proxy = link
    work, _ = origin
    add_big_commit(work)

    started = time.monotonic()
    with pytest.raises(RepositoryTooLargeError) as raised:
        add_repository(store, settings, url("origin.git"))
    seconds = time.monotonic() - started

    assert_names_the_cap(raised.value, "clone")
    if proxy is not None:
        # killed near the cap: the whole transfer would take BIG / SLOW_LINK = 4 s
        assert proxy.sent_down < BIG / 2 and seconds < 3, (proxy.sent_down, seconds)
    assert not settings.mirrors_dir.exists() or list(settings.mirrors_dir.iterdir()) == []
    assert store.list_repositories() == []
    assert processes_mentioning(url("origin.git")) == []


def test_a_fetch_that_outgrows_max_mirror_size_is_killed_and_the_old_mirror_kept(
    store: Store, settings: Settings, origin: tuple[GitRepo, Path], link
) -> None:
    url, proxy = link
    work, bare = origin
    record, _ = add_repository(store, settings, url("origin.git"))
    ingest_repository(store, record, settings)
    mirror = mirror_dir(settings, record.id)
    before = refs(mirror)
    stored = store.stored_shas(record.id)
    head = store.get_repository(record.id).head
    big = add_big_commit(work)
    sent_before = proxy.sent_down if proxy else 0

    started = time.monotonic()
    with pytest.raises(RepositoryTooLargeError) as raised:
        ingest_repository(store, record, settings)
    seconds = time.monotonic() - started

    assert_names_the_cap(raised.value, "fetch")
    if proxy is not None:
        assert proxy.sent_down - sent_before < BIG / 2 and seconds < 3, (proxy.sent_down, seconds)
    assert refs(mirror) == before
    assert fsck_output(mirror, strict=True) == ""
    assert transfer_leftovers(mirror) == []
    # nothing of the big commit was kept: the mirror is as small as before the fetch
    assert not has_object(mirror, big)
    assert processes_mentioning(url("origin.git")) == []
    failed = store.get_repository(record.id)
    assert (failed.status, failed.error, failed.head) == ("failed", str(raised.value), head)
    assert store.stored_shas(record.id) == stored

    # the mirror still works: with room for the big commit, the next run fetches it
    if proxy is not None:
        proxy.rate = None
    roomy = settings.model_copy(update={"max_mirror_size": ByteSize(16 * BIG)})
    result = ingest_repository(store, record, roomy)
    assert result.added == 1 and result.head == big
    assert refs(mirror) == refs(bare)
    assert store.stored_shas(record.id) == set(rev_list(bare))
