"""What a user names when registering a repository: a local path or a remote URL."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pygit2

from repometer.errors import NotAGitRepositoryError, RefusedTargetError

REMOTE_SCHEMES = ("https", "ssh", "git")
_DEFAULT_PORTS = {"https": 443, "ssh": 22, "git": 9418}
_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*)$")
#: A host name or IPv4 address (never starting with '-', which ssh would read as an option).
_HOSTNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]+$")
_USERNAME = re.compile(r"^[A-Za-z0-9._~][A-Za-z0-9._~-]*$")
_TRANSPORT_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")


@dataclass(frozen=True)
class Target:
    """A resolved registration target: a stable id, a readable name and where git finds it."""

    id: str
    name: str
    url: str
    """The URL as given (remote) or the resolved absolute path (local)."""
    is_remote: bool
    local_git_dir: Path | None = None
    """For local repositories: the git directory, read in place."""


def _stable_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _strip_git_suffix(path: str) -> str:
    path = path.rstrip("/")
    return path[:-4] if path.endswith(".git") else path


def _check_no_control_characters(target: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in target):
        raise RefusedTargetError("refused: the target contains control characters")


def parse_remote(url: str) -> Target:
    """Validate a remote URL and derive its id from the normalised ``host/path``.

    https, ssh and scp-style forms of one repository get the same id.
    """
    _check_no_control_characters(url)
    if url.startswith("-"):
        raise RefusedTargetError(f"refused: {url!r} starts with '-'")
    if _TRANSPORT_PREFIX.match(url):
        raise RefusedTargetError(f"refused: remote-helper transport in {url!r}")
    scp = _SCP_LIKE.match(url) if "://" not in url else None
    if scp:
        host, path = scp["host"], scp["path"]
        if not _HOSTNAME.match(host):
            raise RefusedTargetError(f"refused: invalid host in {url!r}")
    else:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in REMOTE_SCHEMES:
            raise RefusedTargetError(
                f"refused: scheme {scheme or 'none'!r} is not one of {', '.join(REMOTE_SCHEMES)}"
            )
        if parts.password is not None or (scheme == "https" and parts.username):
            raise RefusedTargetError("refused: credentials embedded in the URL")
        if not parts.hostname:
            raise RefusedTargetError(f"refused: no host in {url!r}")
        if parts.username is not None and not _USERNAME.match(parts.username):
            raise RefusedTargetError(f"refused: invalid user name in {url!r}")
        host, path = parts.hostname, parts.path
        if _IPV6.match(host) and ":" in host:
            host = f"[{host}]"
        elif not _HOSTNAME.match(host):
            raise RefusedTargetError(f"refused: invalid host in {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise RefusedTargetError(f"refused: invalid port in {url!r}") from None
        if port is not None and port != _DEFAULT_PORTS[scheme]:
            host = f"{host}:{port}"
        if parts.query or parts.fragment:
            raise RefusedTargetError(f"refused: query or fragment in {url!r}")
    path = _strip_git_suffix(path.lstrip("/"))
    if not path or path.startswith("-") or ".." in path.split("/"):
        raise RefusedTargetError(f"refused: no usable repository path in {url!r}")
    normalised = f"{host.lower()}/{path}"
    name = "/".join(path.split("/")[-2:])
    return Target(id=_stable_id(normalised), name=name, url=url, is_remote=True)


def parse_local(path: str | Path) -> Target:
    """Resolve a local repository (bare or with a work tree), to be read in place."""
    resolved = Path(path).expanduser().resolve()
    if not resolved.exists():
        raise NotAGitRepositoryError(f"not a git repository: {path} does not exist")
    try:
        repo = pygit2.Repository(str(resolved), pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
    except pygit2.GitError:
        raise NotAGitRepositoryError(f"not a git repository: {path}") from None
    git_dir = Path(repo.path).resolve()
    root = git_dir if repo.is_bare or not repo.workdir else Path(repo.workdir).resolve()
    name = _strip_git_suffix(root.name) or root.name
    return Target(
        id=_stable_id(f"file:{root}"),
        name=name,
        url=str(root),
        is_remote=False,
        local_git_dir=git_dir,
    )


def looks_remote(target: str) -> bool:
    """True for URL-like targets (``scheme://``, ``word::``, scp-style ``host:path``)."""
    if "://" in target or _TRANSPORT_PREFIX.match(target):
        return True
    return bool(_SCP_LIKE.match(target)) and not Path(target).exists()


def parse_target(target: str) -> Target:
    """A path or URL as typed by the user -> a validated ``Target``."""
    if not target or not target.strip():
        raise RefusedTargetError("refused: empty target")
    _check_no_control_characters(target)
    if target.startswith("-"):
        raise RefusedTargetError(f"refused: {target!r} starts with '-'")
    return parse_remote(target) if looks_remote(target) else parse_local(target)
