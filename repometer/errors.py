"""Errors that reach the user: each says what went wrong in one line."""

import re

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


class RepometerError(Exception):
    """Base class of every error repometer reports to the user."""


class NotAGitRepositoryError(RepometerError):
    """A local path that is not a git repository."""


class RefusedTargetError(RepometerError):
    """A URL or path that repometer will not mirror (scheme, transport or form refused)."""


class BlockedAddressError(RefusedTargetError):
    """A remote host that resolves to an address repometer must not reach (loopback,
    private, link-local, CGNAT, metadata...)."""


class InvalidSettingError(RepometerError):
    """A ``REPOMETER_*`` setting whose value cannot be used."""


class GitCommandError(RepometerError):
    """A git command failed; the message carries git's own last line of error output."""


class GitTimeoutError(GitCommandError):
    """A git command ran longer than its time limit and was killed."""


class RepositoryTooLargeError(GitCommandError):
    """A clone or fetch was killed because it made the mirror larger than ``max_mirror_size``."""


class UnknownRepositoryError(RepometerError):
    """A repository id or name that is not registered."""


class RepositoryBusyError(RepometerError):
    """Another process is ingesting the same repository."""


class RepositoriesFailedError(RepometerError):
    """Some repositories of a run failed; the others completed. ``results`` has them all."""

    def __init__(self, message: str, results: list[dict]) -> None:
        super().__init__(message)
        self.results = results


class StorageError(RepometerError):
    """The database could not be reached or refused a statement."""


#: Fragments of git's messages for failures that a later attempt may not meet.
_TRANSIENT_GIT = (
    "could not resolve host", "connection refused", "connection reset", "connection timed out",
    "operation timed out", "early eof", "the remote end hung up", "rpc failed",
    "temporary failure", "unable to access", "network is unreachable", "couldn't connect",
    "transfer closed", "gnutls", "ssl",
)  # fmt: skip


#: Fragments of git's and the databases' messages for a full disk (ENOSPC, EDQUOT, SQLite's
#: SQLITE_FULL): no retry within minutes frees the space.
_EXHAUSTED = ("no space left on device", "disk quota exceeded", "database or disk is full")


def is_transient(exc: BaseException) -> bool:
    """Whether retrying might help: timeouts, network trouble, an unreachable database.

    Deterministic failures (a refused URL, a missing repository, a bad parameter) are not,
    nor exhausted resources (a full disk, a repository over the size cap): an attempt a few
    seconds later would meet them again.
    """
    if isinstance(exc, RepositoryTooLargeError):
        return False
    if isinstance(exc, RepometerError) and any(f in str(exc).lower() for f in _EXHAUSTED):
        return False
    if isinstance(exc, (GitTimeoutError, StorageError)):
        return True
    if isinstance(exc, GitCommandError):
        message = str(exc).lower()
        return any(fragment in message for fragment in _TRANSIENT_GIT)
    return False


def redact_credentials(text: str) -> str:
    """``text`` with the user-info part of any URL in it masked (``https://***@host``)."""
    return _USERINFO.sub("***@", text)
