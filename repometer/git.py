"""The git CLI, run hardened: argv lists, no prompts, no hooks, no user config, time limits.

pygit2 reads objects; the git CLI does what it does measurably faster (history diffs,
``rev-list``) and everything that talks to the network (clone, fetch).
"""

from __future__ import annotations

import os
import re
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

from pydantic import ByteSize

from repometer.errors import (
    GitCommandError,
    GitTimeoutError,
    RepositoryTooLargeError,
    redact_credentials,
)

#: Transports a mirror may be cloned over; everything else (file, ext, fd, ...) is refused by git.
ALLOWED_PROTOCOLS = ("https", "ssh", "git")

#: fsck findings in objects git itself once wrote; everything else fsck finds refuses a fetch.
_TOLERATED_FSCK = ("badTimezone", "missingSpaceBeforeDate", "zeroPaddedFilemode")

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
    # real histories contain these (rails, requests); they are read as flagged metadata
    *[arg for msg in _TOLERATED_FSCK for arg in ("-c", f"fetch.fsck.{msg}=ignore")],
    "-c",
    "http.followRedirects=false",
    "-c",
    "init.templateDir=",
    "-c",
    "gc.autoDetach=false",
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
        GIT_NO_REPLACE_OBJECTS="1",
        GIT_LFS_SKIP_SMUDGE="1",
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
    return redact_credentials(f"git {_command_name(argv)} failed: {detail}")


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
        except Exception as exc:
            # git may have died first (a corrupt object) and cut its output short: then what
            # the reader says about that output is a symptom, and git's error the cause
            status = _exit_status(proc)
            _kill_group(proc)
            if status is not None and status > 0:
                errfile.seek(0)
                raise GitCommandError(_error_line(errfile.read(), argv)) from exc
            raise
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


def _exit_status(proc: subprocess.Popen, grace: float = 0.5) -> int | None:
    """git's exit status, or None if it is still running after ``grace`` seconds."""
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        return None


#: What a mirror holds: branches and tags (not refs/pull/* and friends, which can outnumber
#: the real history by far).
MIRROR_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")


def _transfer_settings(
    low_speed_limit: int, low_speed_time: int, config: Sequence[str]
) -> list[str]:
    """``-c`` options of a clone or fetch: the stall limits, then ``config`` (``key=value``)."""
    settings = [f"http.lowSpeedLimit={low_speed_limit}", f"http.lowSpeedTime={low_speed_time}"]
    return [arg for setting in (*settings, *config) for arg in ("-c", setting)]


#: How often the size of a mirror is measured while git transfers into it, in seconds.
_SIZE_POLL = 0.5

#: fsck's finding about one object, as index-pack and unpack-objects report it.
_FSCK_FINDING = re.compile(r"^error: object ([0-9a-f]{40,64}): (\w+): (.+)$")


def _disk_usage(root: Path) -> int:
    """Bytes in the files under ``root`` (their apparent sizes, as ``du -sb`` counts)."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass  # renamed or removed by git since the directory was listed
    return total


def _too_large(command: str, url: str, max_size: int) -> str:
    limit = ByteSize(max_size).human_readable()
    return redact_credentials(
        f"git {command} stopped: the mirror of {url} would be larger than max_mirror_size ({limit})"
    )


def _transfer_error(stderr: bytes, argv: Sequence[str]) -> str:
    """git's reason for a failed clone or fetch, in one line.

    git follows the line that names the cause with generic ones ("fatal: index-pack
    failed"), so the causes a user can act on are looked for first: a full disk, and an
    object that fsck rejects.
    """
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines()]
    failed = f"git {_command_name(argv)} failed: "
    for line in lines:
        if "no space left on device" in line.lower():
            return redact_credentials(failed + line)
    for line in lines:
        if finding := _FSCK_FINDING.match(line):
            sha, kind, detail = finding.groups()
            return failed + f"fsck rejected object {sha}: {kind}: {detail}"
    return _error_line(stderr, argv)


def _run_transfer(
    args: Sequence[str],
    *,
    url: str,
    git_dir: Path | None,
    watch: Path,
    timeout: float,
    max_size: int | None,
) -> None:
    """Run a clone or fetch. Its process group is killed when ``timeout`` passes, and when
    the files under ``watch`` outgrow ``max_size`` bytes (looked at every ``_SIZE_POLL`` s):
    git has no limit of its own on what it receives, and a full disk hurts every mirror."""
    argv = git_argv(args, git_dir)
    with tempfile.TemporaryFile() as errfile:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errfile,
            env=git_env(),
            cwd=_cwd(git_dir),
            start_new_session=True,
        )
        finished, outgrown = threading.Event(), threading.Event()

        def watchdog() -> None:
            assert max_size is not None
            while not finished.wait(_SIZE_POLL):
                if _disk_usage(watch) > max_size:
                    outgrown.set()
                    if proc.returncode is None:
                        try:
                            os.killpg(proc.pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                    return

        watcher = threading.Thread(target=watchdog, daemon=True)
        if max_size is not None:
            watcher.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise GitTimeoutError(
                f"git {_command_name(argv)} was killed after {timeout:g} s"
            ) from None
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            finished.set()
            if watcher.is_alive():
                watcher.join()
        if outgrown.is_set():
            assert max_size is not None
            raise RepositoryTooLargeError(_too_large(_command_name(argv), url, max_size))
        if proc.returncode != 0:
            errfile.seek(0)
            raise GitCommandError(_transfer_error(errfile.read(), argv))


def clone_mirror(
    url: str,
    destination: Path,
    *,
    timeout: float,
    low_speed_limit: int = 1000,
    low_speed_time: int = 60,
    config: Sequence[str] = (),
    max_size: int | None = None,
) -> None:
    """Clone ``url`` as a bare mirror of its branches and tags into ``destination``.

    The clone goes to a temporary sibling directory that is renamed into place only when it
    is complete, so a failed clone leaves nothing behind. ``config`` holds extra
    ``key=value`` settings for this transfer (the pinned addresses of the host). A clone
    larger than ``max_size`` bytes is killed: ``RepositoryTooLargeError``.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        _run_transfer(
            [
                *_transfer_settings(low_speed_limit, low_speed_time, config),
                "clone",
                "--bare",
                "--no-recurse-submodules",
                "--quiet",
                "--end-of-options",
                url,
                os.fspath(staging / "repo.git"),
            ],
            url=url,
            git_dir=None,
            watch=staging,
            timeout=timeout,
            max_size=max_size,
        )
        # a fast transfer can end between two looks of the watchdog
        if max_size is not None and _disk_usage(staging) > max_size:
            raise RepositoryTooLargeError(_too_large("clone", url, max_size))
        # a plain bare clone would not update its branches on fetch
        config_cmd = ["config", "--replace-all", "remote.origin.fetch"]
        run_git([*config_cmd, MIRROR_REFSPECS[0]], git_dir=staging / "repo.git")
        run_git(
            ["config", "--add", "remote.origin.fetch", MIRROR_REFSPECS[1]],
            git_dir=staging / "repo.git",
        )
        os.replace(staging / "repo.git", destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _ref_values(git_dir: Path) -> dict[str, str]:
    out = run_git(["for-each-ref", "--format=%(refname) %(objectname)"], git_dir=git_dir).stdout
    return dict(line.split(" ", 1) for line in out.decode().splitlines())


def _fetch_files(git_dir: Path) -> set[Path]:
    """The files a fetch may add: everything under ``objects/``, and lock files."""
    found = set()
    for dirpath, _, files in os.walk(git_dir):
        in_objects = Path(dirpath).is_relative_to(git_dir / "objects")
        found.update(Path(dirpath, f) for f in files if in_objects or f.endswith(".lock"))
    return found


def _undo_fetch(git_dir: Path, files_before: set[Path], refs_before: dict[str, str]) -> None:
    """Put a mirror back as it was before a failed, killed or oversized fetch.

    The refs first, so that no ref points to a removed object at any time; then every file
    the fetch added: its (partial) packs and objects, and the locks of a killed git. The
    mirror's lock keeps other fetches out meanwhile, and automatic gc was off during the
    fetch, so no file the fetch added holds an object that was there before.
    """
    added = _fetch_files(git_dir) - files_before
    for path in added:
        if path.name.endswith(".lock"):
            path.unlink(missing_ok=True)
    now = _ref_values(git_dir)
    commands = [f"delete {ref}\n" for ref in now.keys() - refs_before.keys()]
    commands += [f"update {ref} {sha}\n" for ref, sha in refs_before.items() if now.get(ref) != sha]
    if commands:
        run_git(["update-ref", "--stdin"], git_dir=git_dir, input="".join(commands).encode())
    for path in added:
        path.unlink(missing_ok=True)


def fetch_mirror(
    git_dir: Path,
    url: str,
    *,
    timeout: float,
    low_speed_limit: int = 1000,
    low_speed_time: int = 60,
    config: Sequence[str] = (),
    max_size: int | None = None,
) -> None:
    """Bring a mirror up to date with ``url``, pruning branches deleted there.

    The URL is passed explicitly (not read from the mirror's config) so that what is fetched
    is always what the URL policy just checked. A fetch that fails, is killed, or makes the
    objects larger than ``max_size`` bytes (``RepositoryTooLargeError``) leaves the mirror as
    it was. Call it with the mirror's lock held.
    """
    files_before, refs_before = _fetch_files(git_dir), _ref_values(git_dir)
    try:
        _run_transfer(
            [
                *_transfer_settings(low_speed_limit, low_speed_time, config),
                # a repack during the fetch would make old objects part of new files, which
                # an undo removes; gc runs below, once the fetch is kept
                "-c",
                "gc.auto=0",
                "-c",
                "maintenance.auto=false",
                "fetch",
                "--prune",
                "--atomic",
                "--no-recurse-submodules",
                "--quiet",
                "--end-of-options",
                url,
                *MIRROR_REFSPECS,
            ],
            url=url,
            git_dir=git_dir,
            watch=git_dir / "objects",
            timeout=timeout,
            max_size=max_size,
        )
        # a fast transfer can end between two looks of the watchdog
        if max_size is not None and _disk_usage(git_dir / "objects") > max_size:
            raise RepositoryTooLargeError(_too_large("fetch", url, max_size))
    except BaseException:
        _undo_fetch(git_dir, files_before, refs_before)
        raise
    # housekeeping only: a gc that fails (say, for want of space) loses nothing
    run_git(["gc", "--auto", "--quiet"], git_dir=git_dir, timeout=timeout, check=False)


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
        branches = (
            run_git(
                ["for-each-ref", "--count=4", "--format=%(refname:short)", "refs/heads/"],
                git_dir=git_dir,
            )
            .stdout.decode(errors="replace")
            .split()
        )
        if branches:  # not an empty repository: reading nothing would hide its history
            raise GitCommandError(
                f"HEAD points to {symbolic.stdout.decode(errors='replace').strip()}, which has "
                f"no commits, but the repository has branches ({', '.join(branches[:3])}"
                f"{', ...' if len(branches) > 3 else ''}): choose one as the ref"
            )
        return None  # HEAD names a branch that has no commit yet: an empty repository
    raise GitCommandError(f"git rev-parse failed: unknown revision {ref!r}")


def rev_list(git_dir: Path, head: str) -> list[str]:
    """Every commit reachable from ``head``, newest first (as ``git rev-list`` orders them)."""
    proc = run_git(["rev-list", "--end-of-options", head], git_dir=git_dir, timeout=3600)
    return proc.stdout.decode().split()
