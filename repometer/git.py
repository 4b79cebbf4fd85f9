"""The git CLI, run hardened: argv lists, no prompts, no hooks, no user config, time limits.

pygit2 reads objects; the git CLI does what it does measurably faster (history diffs,
``rev-list``) and everything that talks to the network (clone, fetch).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import IO

from repometer.errors import GitCommandError, GitTimeoutError

#: Transports a mirror may be cloned over; everything else (file, ext, fd, ...) is refused by git.
ALLOWED_PROTOCOLS = ("https", "ssh", "git")

#: Applied to every git invocation: nothing from the user's or the repository's configuration
#: may run code (hooks, fsmonitor, ssh commands), prompt, or change the output we parse.
_HARDENING = (
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-c",
    "core.askPass=",
    "-c",
    "credential.helper=",
    "-c",
    "protocol.allow=never",
    *[arg for proto in ALLOWED_PROTOCOLS for arg in ("-c", f"protocol.{proto}.allow=always")],
    "-c",
    "submodule.recurse=false",
    "-c",
    "fetch.recurseSubmodules=false",
    "-c",
    "transfer.fsckObjects=true",
    "-c",
    "log.showSignature=false",
    "-c",
    "color.ui=false",
    "-c",
    "core.quotePath=false",
)


def git_env() -> dict[str, str]:
    """The environment git runs in: no system/global config, no terminal prompt."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="",
        SSH_ASKPASS="",
        GIT_SSH_COMMAND="ssh -o BatchMode=yes -o ConnectTimeout=30 -o StrictHostKeyChecking=accept-new",
        GIT_PROTOCOL_FROM_USER="0",
        LC_ALL="C",
    )
    return env


def git_argv(args: Sequence[str], git_dir: str | os.PathLike[str] | None = None) -> list[str]:
    argv = ["git", *_HARDENING]
    if git_dir is not None:
        argv += ["--git-dir", os.fspath(git_dir)]
    return [*argv, *args]


@lru_cache(maxsize=256)
def _working_directory(git_dir: str) -> str:
    """Where git runs for ``git_dir``: its work tree, or the git directory when it is bare.

    With ``--git-dir`` git takes the current directory for the work tree, and reads
    ``.mailmap`` and ``.gitattributes`` from there; it must be the repository's own.
    """
    import pygit2

    try:
        workdir = pygit2.Repository(git_dir).workdir
    except pygit2.GitError:
        workdir = None
    return workdir or git_dir


def _cwd(git_dir: str | os.PathLike[str] | None) -> str | None:
    if git_dir is None or not os.path.isdir(git_dir):
        return None
    return _working_directory(os.fspath(git_dir))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _error_line(stderr: bytes, argv: Sequence[str]) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    fatal = [i for i, ln in enumerate(lines) if ln.startswith(("fatal:", "error:"))]
    if not lines:
        return f"git {_command_name(argv)} failed: no error output"
    last = fatal[-1] if fatal else len(lines) - 1
    detail = lines[last]
    if detail.endswith(":"):
        # git continues some messages on the next lines, e.g. "fatal: unable to connect to
        # host:" followed by "host[0: 1.2.3.4]: errno=Connection refused"
        detail = " ".join([detail, *lines[last + 1 : last + 3]])
    return f"git {_command_name(argv)} failed: {detail}"


def _command_name(argv: Sequence[str]) -> str:
    # the subcommand is the first argument after the hardening options and --git-dir
    skip = False
    for arg in argv[1:]:
        if skip:
            skip = False
        elif arg in ("-c", "--git-dir", "-C"):
            skip = True
        elif not arg.startswith("-"):
            return arg
    return "?"


def run_git(
    args: Sequence[str],
    *,
    git_dir: str | os.PathLike[str] | None = None,
    timeout: float = 600.0,
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run git to completion; kill its whole process group when ``timeout`` passes."""
    argv = git_argv(args, git_dir)
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env or git_env(),
        cwd=_cwd(git_dir),
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        raise GitTimeoutError(f"git {_command_name(argv)} was killed after {timeout:g} s") from None
    except BaseException:
        _kill_group(proc)
        raise
    if check and proc.returncode != 0:
        raise GitCommandError(_error_line(err, argv))
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@contextmanager
def stream_git(
    args: Sequence[str],
    *,
    git_dir: str | os.PathLike[str],
    stdin_data: bytes | None = None,
    timeout: float = 6 * 3600,
) -> Iterator[IO[bytes]]:
    """Yield git's stdout as a stream; raise ``GitCommandError`` if git fails.

    ``stdin_data`` is written from a thread so that a large revision list cannot deadlock
    against git's output filling the pipe. After ``timeout`` seconds git's process group is
    killed and ``GitTimeoutError`` raised.
    """

    argv = git_argv(args, git_dir)
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errfile,
            env=git_env(),
            cwd=_cwd(git_dir),
            start_new_session=True,
        )
        feeder = None
        if stdin_data is not None:

            def feed() -> None:
                try:
                    proc.stdin.write(stdin_data)
                    proc.stdin.close()
                except (BrokenPipeError, OSError):
                    pass

            feeder = threading.Thread(target=feed, daemon=True)
            feeder.start()
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            _kill_group(proc)

        watchdog = threading.Timer(timeout, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            yield proc.stdout
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            watchdog.cancel()
            proc.stdout.close()
            if feeder is not None:
                feeder.join()
        if timed_out.is_set():
            raise GitTimeoutError(f"git {_command_name(argv)} was killed after {timeout:g} s")
        if proc.wait() != 0:
            errfile.seek(0)
            raise GitCommandError(_error_line(errfile.read(), argv))


def clone_mirror(
    url: str,
    destination: Path,
    *,
    timeout: float,
    low_speed_limit: int = 1000,
    low_speed_time: int = 60,
) -> None:
    """Clone ``url`` as a bare mirror of its branches and tags into ``destination``.

    The clone goes to a temporary sibling directory that is renamed into place only when it
    is complete, so a failed clone leaves nothing behind.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        run_git(
            [
                "-c",
                f"http.lowSpeedLimit={low_speed_limit}",
                "-c",
                f"http.lowSpeedTime={low_speed_time}",
                "clone",
                "--bare",
                "--no-recurse-submodules",
                "--quiet",
                "--end-of-options",
                url,
                os.fspath(staging / "repo.git"),
            ],
            timeout=timeout,
        )
        # A plain bare clone would not update its branches on fetch; mirror heads and tags only
        # (not refs/pull/* and friends, which can outnumber the real history by far).
        config = ["config", "--replace-all", "remote.origin.fetch"]
        run_git([*config, "+refs/heads/*:refs/heads/*"], git_dir=staging / "repo.git")
        run_git(
            ["config", "--add", "remote.origin.fetch", "+refs/tags/*:refs/tags/*"],
            git_dir=staging / "repo.git",
        )
        os.replace(staging / "repo.git", destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_mirror(
    git_dir: Path, *, timeout: float, low_speed_limit: int = 1000, low_speed_time: int = 60
) -> None:
    """Bring a mirror up to date with its origin, pruning branches deleted there."""
    run_git(
        [
            "-c",
            f"http.lowSpeedLimit={low_speed_limit}",
            "-c",
            f"http.lowSpeedTime={low_speed_time}",
            "fetch",
            "--prune",
            "--no-recurse-submodules",
            "--quiet",
            "origin",
        ],
        git_dir=git_dir,
        timeout=timeout,
    )


def resolve_commit(git_dir: Path, ref: str) -> str | None:
    """The commit ``ref`` points to, or None when it is unborn (an empty repository)."""
    proc = run_git(
        ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
        git_dir=git_dir,
        check=False,
    )
    if proc.returncode == 0:
        return proc.stdout.decode().strip()
    symbolic = run_git(["symbolic-ref", "--quiet", ref], git_dir=git_dir, check=False)
    if ref == "HEAD" and symbolic.returncode == 0:
        return None  # HEAD names a branch that has no commit yet
    raise GitCommandError(f"git rev-parse failed: unknown revision {ref!r}")


def rev_list(git_dir: Path, head: str) -> list[str]:
    """Every commit reachable from ``head``, newest first (as ``git rev-list`` orders them)."""
    proc = run_git(["rev-list", "--end-of-options", head], git_dir=git_dir, timeout=3600)
    return proc.stdout.decode().split()
