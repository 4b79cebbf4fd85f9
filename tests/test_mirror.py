"""Mirroring remote repositories: bare clones from a real ``git daemon`` on 127.0.0.1.

Everything runs against servers started here on the loopback interface: a ``git daemon``
exporting test repositories, and a TCP server that accepts connections and never answers.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from conftest import GitDaemon, git_env

from repometer import git
from repometer.errors import GitCommandError, GitTimeoutError, RefusedTargetError
from repometer.ingest import ingest_repository
from repometer.registry import add_repository, mirror_dir
from repometer.settings import Settings
from repometer.storage import Store
from repometer.targets import parse_remote, parse_target

if TYPE_CHECKING:
    from conftest import GitRepo

HOOKS = (
    "post-checkout", "post-merge", "post-rewrite", "reference-transaction", "post-index-change",
)  # fmt: skip


# --------------------------------------------------------------------------- servers


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # the test git daemon listens on loopback, which the URL policy refuses by default
    return settings.model_copy(update={"allow_private_hosts": True})


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.05)
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


# --------------------------------------------------------------------------- helpers


def git_out(git_dir: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "--git-dir", str(git_dir), *args],
        env=git_env(),
        capture_output=True,
        check=True,
    )
    return proc.stdout.decode().strip()


def rev_list(git_dir: Path, ref: str = "HEAD") -> list[str]:
    return git_out(git_dir, "rev-list", ref).split()


def refs(git_dir: Path) -> dict[str, str]:
    lines = git_out(git_dir, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads",
                    "refs/tags").splitlines()  # fmt: skip
    return dict(line.split(" ", 1) for line in lines)


def install_hooks(hooks_dir: Path, marker: Path) -> None:
    """Hooks that would leave ``marker`` behind if git ever ran them."""
    hooks_dir.mkdir(parents=True, exist_ok=True)
    for name in HOOKS:
        hook = hooks_dir / name
        hook.write_text(f"#!/bin/sh\necho {name} >> '{marker}'\n")
        hook.chmod(0o755)


def processes_mentioning(needle: str, wait: float = 3.0) -> list[str]:
    """Live processes whose command line contains ``needle``, once given ``wait`` seconds to
    finish dying (SIGKILL is delivered asynchronously: a killed child may need a moment)."""
    deadline = time.monotonic() + wait
    while (found := _processes_mentioning(needle)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _processes_mentioning(needle: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = (entry / "status").read_text()
        except OSError:
            continue
        state = next((ln for ln in status.splitlines() if ln.startswith("State:")), "")
        if needle in cmdline and "\tZ" not in state:
            found.append(f"{entry.name} [{state}] {cmdline}")
    return found


def push_commits(work: GitRepo, count: int, start_day: int = 10) -> list[str]:
    shas = []
    for i in range(count):
        work.write(f"new/{start_day + i}.txt", f"{i}\n" * (i + 1))
        shas.append(work.commit(f"new {i}", date=f"2024-02-{start_day + i:02d}T10:00:00+0000"))
    work.git("push", "-q", "origin", "main")
    return shas


# --------------------------------------------------------------------------- tests


def test_add_remote_clones_a_bare_mirror_without_running_hooks(
    store: Store,
    settings: Settings,
    daemon: GitDaemon,
    origin: tuple[GitRepo, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, bare = origin
    marker = tmp_path / "a-hook-ran"
    install_hooks(bare / "hooks", marker)
    # a template directory with hooks, which a clone would copy if git were let read it
    templates = tmp_path / "templates"
    install_hooks(templates / "hooks", marker)
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(templates))

    url = daemon.url("origin.git")
    record, created = add_repository(store, settings, url)

    assert created
    assert record.name == "origin" == parse_remote(url).name
    assert record.id == parse_target(url).id
    assert record.is_remote and record.url == url
    mirror = mirror_dir(settings, record.id)
    assert Path(record.git_dir) == mirror
    assert [p.name for p in settings.mirrors_dir.iterdir()] == [mirror.name]  # no staging left
    assert git_out(mirror, "rev-parse", "--is-bare-repository") == "true"
    assert not (mirror / "index").exists()  # nothing was ever checked out
    assert refs(mirror) == refs(bare)
    assert git_out(mirror, "rev-parse", "HEAD") == git_out(bare, "rev-parse", "HEAD")
    assert not (mirror / "hooks").exists()  # no template directory was copied

    result = ingest_repository(store, record, settings)

    expected = rev_list(bare)
    assert len(expected) == 5
    assert result.added == len(expected) and result.removed == 0 and not result.up_to_date
    assert store.stored_shas(record.id) == set(expected)
    stored = store.get_repository(record.id)
    assert stored.head == expected[0] and stored.status == "ok"
    totals = store.totals(record.id)
    assert (totals.commits, totals.merges, totals.authors) == (5, 1, 2)
    assert not marker.exists(), marker.read_text()

    # registering the same repository again, under another spelling, changes nothing
    again, created = add_repository(store, settings, daemon.url("origin"))
    assert not created and again.id == record.id
    assert len(store.list_repositories()) == 1


def test_fetch_ingests_only_new_commits_and_follows_force_pushes(
    store: Store,
    settings: Settings,
    daemon: GitDaemon,
    origin: tuple[GitRepo, Path],
    tmp_path: Path,
) -> None:
    work, bare = origin
    record, _ = add_repository(store, settings, daemon.url("origin.git"))
    ingest_repository(store, record, settings)
    mirror = mirror_dir(settings, record.id)
    marker = tmp_path / "a-hook-ran"
    install_hooks(mirror / "hooks", marker)  # a fetch updates refs: reference-transaction

    new = push_commits(work, 4)
    calls: list[tuple[int, int]] = []
    result = ingest_repository(store, record, settings, progress=lambda d, t: calls.append((d, t)))

    assert result.added == 4 and result.removed == 0
    assert calls and all(total == 4 for _, total in calls) and calls[-1][0] == 4
    assert store.stored_shas(record.id) == set(rev_list(bare))
    assert store.get_repository(record.id).head == new[-1] == git_out(bare, "rev-parse", "HEAD")
    assert refs(mirror) == refs(bare)

    # nothing new: no work at all
    assert ingest_repository(store, record, settings).up_to_date

    # rewrite history on the origin: drop the last three commits, add another
    gone = new[1:]
    work.git("reset", "-q", "--hard", new[0])
    work.write("rewritten.txt", "rewritten\n")
    replacement = work.commit("rewritten", date="2024-03-01T10:00:00+0000")
    work.git("push", "-q", "--force", "origin", "main")
    work.git("push", "-q", "origin", ":side")  # a deleted branch is pruned from the mirror

    result = ingest_repository(store, record, settings)

    assert result.added == 1 and result.removed == len(gone)
    stored = store.stored_shas(record.id)
    assert stored == set(rev_list(bare))
    assert replacement in stored and not stored.intersection(gone)
    assert store.get_repository(record.id).head == replacement
    assert refs(mirror) == refs(bare)
    assert "refs/heads/side" not in refs(mirror)
    assert store.totals(record.id).commits == len(rev_list(bare))
    assert not marker.exists(), marker.read_text()


def test_a_missing_mirror_is_cloned_again(
    store: Store, settings: Settings, daemon: GitDaemon, origin: tuple[GitRepo, Path]
) -> None:
    work, bare = origin
    record, _ = add_repository(store, settings, daemon.url("origin.git"))
    ingest_repository(store, record, settings)
    mirror = mirror_dir(settings, record.id)
    shutil.rmtree(mirror)  # a worker machine that never had it
    new = push_commits(work, 2)

    result = ingest_repository(store, record, settings)

    assert git_out(mirror, "rev-parse", "--is-bare-repository") == "true"
    assert refs(mirror) == refs(bare)
    assert result.added == 2 and result.removed == 0
    assert store.stored_shas(record.id) == set(rev_list(bare))
    assert store.get_repository(record.id).head == new[-1]


def test_an_upstream_deleted_after_ingestion_fails_its_runs_and_keeps_everything(
    store: Store, settings: Settings, daemon: GitDaemon, origin: tuple[GitRepo, Path]
) -> None:
    _, bare = origin
    record, _ = add_repository(store, settings, daemon.url("origin.git"))
    ingest_repository(store, record, settings)
    ingested = store.get_repository(record.id)
    stored, mirror_refs = store.stored_shas(record.id), refs(mirror_dir(settings, record.id))
    shutil.rmtree(bare)  # deleted, renamed or made private upstream

    with pytest.raises(GitCommandError, match="no such repository"):
        ingest_repository(store, record, settings)

    after = store.get_repository(record.id)
    assert after.status == "failed" and "no such repository" in after.error
    assert (after.head, after.generation) == (ingested.head, ingested.generation)
    assert store.stored_shas(record.id) == stored  # nothing purged
    assert refs(mirror_dir(settings, record.id)) == mirror_refs  # the mirror as it was


def _leftovers(settings: Settings) -> list[str]:
    if not settings.mirrors_dir.exists():
        return []
    return sorted(p.name for p in settings.mirrors_dir.iterdir())


def test_a_failed_clone_raises_git_s_message_and_leaves_nothing(
    store: Store, settings: Settings, daemon: GitDaemon, origin: tuple[GitRepo, Path]
) -> None:
    with pytest.raises(GitCommandError) as wrong_path:
        add_repository(store, settings, daemon.url("nosuch.git"))
    message = str(wrong_path.value)
    assert "git clone failed" in message and "no such repository" in message, message
    assert "\n" not in message
    assert _leftovers(settings) == []
    assert store.list_repositories() == []

    daemon.stop()
    with pytest.raises(GitCommandError) as refused:
        add_repository(store, settings, daemon.url("origin.git"))
    message = str(refused.value)
    assert "git clone failed" in message and "Connection refused" in message, message
    assert "\n" not in message
    assert _leftovers(settings) == []
    assert store.list_repositories() == []


@pytest.mark.parametrize("scheme", ["git", "ssh"])
def test_a_stalled_git_is_killed_at_its_timeout(
    silent_server: SilentServer, tmp_path: Path, scheme: str
) -> None:
    """Over ssh, git runs ssh as a child: the whole process group must die, not just git."""
    if scheme == "ssh" and shutil.which("ssh") is None:
        pytest.skip("no ssh client")
    name = f"stalled-{silent_server.port}"  # in the command line of git and of its ssh child
    url = f"{scheme}://127.0.0.1:{silent_server.port}/{name}.git"
    started = time.monotonic()
    with pytest.raises(GitTimeoutError, match=r"killed after 0\.5 s"):
        git.run_git(["clone", "--bare", "--quiet", "--end-of-options", url, str(tmp_path / "out")],
                    timeout=0.5)  # fmt: skip
    assert time.monotonic() - started < 5
    assert silent_server.accepted  # git did connect: the time went waiting for an answer
    assert processes_mentioning(name) == []

    # through clone_mirror: nothing is left under the mirrors directory either
    mirrors = tmp_path / "mirrors"
    started = time.monotonic()
    with pytest.raises(GitTimeoutError):
        git.clone_mirror(url, mirrors / f"{name}.git", timeout=0.5)
    assert time.monotonic() - started < 5
    assert list(mirrors.iterdir()) == []
    assert processes_mentioning(name) == []


SAME_REPOSITORY = [
    "https://github.com/owner/repo.git",
    "https://github.com/owner/repo",
    "https://github.com/owner/repo/",
    "HTTPS://GitHub.com/owner/repo.git",
    "https://github.com:443/owner/repo.git",
    "ssh://git@github.com/owner/repo.git",
    "ssh://git@github.com:22/owner/repo.git",
    "ssh://github.com/owner/repo",
    "git@github.com:owner/repo.git",
    "github.com:owner/repo",
    "git://github.com/owner/repo.git",
]


def test_remote_forms_of_one_repository_share_an_id() -> None:
    targets = [parse_target(url) for url in SAME_REPOSITORY]
    assert {t.id for t in targets} == {targets[0].id}
    assert {t.name for t in targets} == {"owner/repo"}
    assert all(t.is_remote for t in targets)
    others = [
        "https://github.com/owner/other.git",
        "https://gitlab.com/owner/repo.git",
        "https://github.com:8443/owner/repo.git",
        "git@github.com:other/repo.git",
    ]
    assert len({parse_target(url).id for url in others} | {targets[0].id}) == len(others) + 1


@pytest.mark.parametrize(
    "target",
    [
        "ext::sh -c touch% pwned",
        "fd::17",
        "fd::7,8/repo",
        "file:///srv/git/repo.git",
        "http://example.com/repo.git",
        "ftp://example.com/repo.git",
        "https://user:secret@example.com/repo.git",
        "https://token@example.com/repo.git",
        "ssh://user:secret@example.com/repo.git",
        "-oProxyCommand=touch pwned",
        "--upload-pack=touch pwned",
        "ssh://-oProxyCommand=touch/repo.git",
        "ssh://-user@example.com/repo.git",
        "git@-oProxyCommand:repo.git",
        "https://example.com/repo\n.git",
        "https://example.com/re\x00po.git",
        "https://example.com/repo.git\x1b[2J",
        "https://example.com/../repo.git",
        "https://example.com/",
        "https://example.com/repo.git?x=1",
        "https://example.com:99999/repo.git",
        "https://exa mple.com/repo.git",
        "",
        "   ",
    ],
)
def test_refused_targets(target: str) -> None:
    with pytest.raises(RefusedTargetError):
        parse_target(target)


def test_a_streamed_git_command_is_killed_at_its_time_limit(make_repo) -> None:
    """A git command that outlives its time limit is killed, children included."""
    import time

    from repometer.errors import GitTimeoutError
    from repometer.git import stream_git

    repo = make_repo()
    repo.write("a.txt", "a\n")
    repo.commit("one")
    started = time.monotonic()
    with pytest.raises(GitTimeoutError, match=r"git slow was killed after 0.5 s"):
        # a shell alias: git runs `sleep` as a child of its own, which must die with it
        with stream_git(["-c", "alias.slow=!sleep 30", "slow"], git_dir=repo.path / ".git",
                        timeout=0.5) as out:  # fmt: skip
            assert out.read() == b""
    assert time.monotonic() - started < 5
