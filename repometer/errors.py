"""Errors that reach the user: each says what went wrong in one line."""


class RepometerError(Exception):
    """Base class of every error repometer reports to the user."""


class NotAGitRepositoryError(RepometerError):
    """A local path that is not a git repository."""


class RefusedTargetError(RepometerError):
    """A URL or path that repometer will not mirror (scheme, transport or form refused)."""


class GitCommandError(RepometerError):
    """A git command failed; the message carries git's own last line of error output."""


class GitTimeoutError(GitCommandError):
    """A git command ran longer than its time limit and was killed."""


class UnknownRepositoryError(RepometerError):
    """A repository id or name that is not registered."""


class RepositoryBusyError(RepometerError):
    """Another process is ingesting the same repository."""


class StorageError(RepometerError):
    """The database could not be reached or refused a statement."""
