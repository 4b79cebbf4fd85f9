"""What a user names when registering a repository: a local path or a remote URL."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pygit2

from repometer.errors import (
    BlockedAddressError,
    GitCommandError,
    NotAGitRepositoryError,
    RefusedTargetError,
    redact_credentials,
)
from repometer.settings import Settings

REMOTE_SCHEMES = ("https", "ssh", "git")
#: Longest URL and host name accepted (the DNS limit for names).
_MAX_URL, _MAX_HOST = 2048, 253
_DEFAULT_PORTS = {"https": 443, "ssh": 22, "git": 9418}
_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^:].*)$")
#: A host name or IPv4 address (never starting with '-', which ssh would read as an option).
_HOSTNAME = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?$")
_IPV6 = re.compile(r"^[0-9A-Fa-f:.]+$")
_USERNAME = re.compile(r"^[A-Za-z0-9._~][A-Za-z0-9._~-]*$")
_TRANSPORT_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")


@dataclass(frozen=True)
class UrlPolicy:
    """What a front-end lets users register, checked again before every clone or fetch."""

    schemes: frozenset[str] = frozenset(REMOTE_SCHEMES)
    local_paths: bool = True
    private_hosts: bool = False
    """Whether hosts may resolve to non-public addresses (an internal forge)."""

    @classmethod
    def for_cli(cls, settings: Settings) -> UrlPolicy:
        """The operator at a terminal: every scheme and local paths."""
        return cls(private_hosts=settings.allow_private_hosts)

    @classmethod
    def for_services(cls, settings: Settings) -> UrlPolicy:
        """Strangers through the REST API or the dashboard: https only unless configured."""
        return cls(
            schemes=frozenset(settings.url_schemes),
            local_paths=settings.allow_local_paths,
            private_hosts=settings.allow_private_hosts,
        )


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
    host: str | None = None
    """For remote repositories: the host name git connects to, and its port."""
    port: int | None = None


def _stable_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _strip_git_suffix(path: str) -> str:
    path = path.rstrip("/")
    return path.removesuffix(".git")


def _check_no_control_characters(target: str) -> None:
    if any(ord(c) < 32 or ord(c) == 127 for c in target):
        raise RefusedTargetError("refused: the target contains control characters")


def _refuse(reason: str, url: str) -> RefusedTargetError:
    return RefusedTargetError(f"refused: {reason} in {redact_credentials(url)!r}")


def parse_remote(url: str, schemes: Iterable[str] = REMOTE_SCHEMES) -> Target:
    """Validate the form of a remote URL and derive its id from the normalised ``host/path``.

    https, ssh and scp-style forms of one repository get the same id. Where the host
    resolves to is checked separately (``check_host``), before every transfer.
    """
    _check_no_control_characters(url)
    if len(url) > _MAX_URL:
        raise RefusedTargetError(f"refused: the URL is longer than {_MAX_URL} characters")
    if url.startswith("-"):
        raise RefusedTargetError(f"refused: {redact_credentials(url)!r} starts with '-'")
    if _TRANSPORT_PREFIX.match(url):
        raise _refuse("a remote-helper transport", url)
    allowed = [s for s in REMOTE_SCHEMES if s in set(schemes)]
    scp = _SCP_LIKE.match(url) if "://" not in url else None
    if scp:
        scheme, host, path, port = "ssh", scp["host"], scp["path"], None
        if not _HOSTNAME.match(host):
            raise _refuse("an invalid host", url)
    else:
        try:
            parts = urlsplit(url)
        except ValueError as exc:  # e.g. an unbalanced "[" of an IPv6 host
            raise _refuse(f"an invalid URL ({exc})", url) from None
        scheme = parts.scheme.lower()
        if scheme not in REMOTE_SCHEMES:
            raise RefusedTargetError(
                f"refused: scheme {scheme or 'none'!r} is not one of {', '.join(allowed)}"
            )
        if parts.password is not None or (scheme == "https" and parts.username):
            raise RefusedTargetError("refused: credentials embedded in the URL")
        if not parts.hostname:
            raise _refuse("no host", url)
        if parts.username is not None and not _USERNAME.match(parts.username):
            raise _refuse("an invalid user name", url)
        host, path = parts.hostname, parts.path
        if len(host) > _MAX_HOST:
            raise _refuse("a host name longer than 253 characters", url)
        if not (_HOSTNAME.match(host) or (_IPV6.match(host) and ":" in host)):
            raise _refuse("an invalid host", url)
        try:
            port = parts.port
        except ValueError:
            raise _refuse("an invalid port", url) from None
        if parts.query or parts.fragment:
            raise _refuse("a query or fragment", url)
    if scheme not in allowed:
        raise RefusedTargetError(
            f"refused: {scheme} URLs are not accepted here (allowed: {', '.join(allowed)})"
        )
    decoded = unquote(path)
    if any(ord(c) < 32 or ord(c) == 127 for c in decoded):
        raise _refuse("an encoded control character", url)
    path = _strip_git_suffix(path.lstrip("/"))
    if not path or path.startswith("-") or {".", ".."} & set(unquote(path).split("/")):
        raise _refuse("no usable repository path", url)
    port = port or _DEFAULT_PORTS[scheme]
    shown_host = f"[{host}]" if ":" in host else host
    if port != _DEFAULT_PORTS[scheme]:
        shown_host = f"{shown_host}:{port}"
    normalised = f"{shown_host.lower()}/{path}"
    name = "/".join(path.split("/")[-2:])
    return Target(
        id=_stable_id(normalised), name=name, url=url, is_remote=True, host=host, port=port
    )


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Special-purpose ranges that older Pythons' ``is_global`` reports as global (RFC 6890).
_NOT_GLOBAL = [ipaddress.ip_network(n) for n in ("192.0.0.0/24", "64:ff9b:1::/48")]

#: Resolves a host name to its addresses; a parameter so that tests can stand in for DNS.
Resolver = Callable[[str, int], list[str]]


def resolve_addresses(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (all A and AAAA records, not just the first)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise GitCommandError(f"could not resolve host {host}: {exc}") from None
    return sorted({info[4][0] for info in infos})


def is_public_address(address: str) -> bool:
    """Whether ``address`` is globally routable: not loopback, private, link-local (cloud
    metadata), CGNAT, multicast, reserved or unspecified, IPv4-mapped IPv6 included."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64:  # reaches the IPv4 address in its last 32 bits
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        else:
            ip = ip.ipv4_mapped or ip.sixtofour or ip
    if any(ip in network for network in _NOT_GLOBAL):
        return False
    return ip.is_global and not ip.is_multicast


def check_host(target: Target, policy: UrlPolicy, resolve: Resolver | None = None) -> list[str]:
    """Resolve a remote target's host and refuse it when an address is not public (unless
    the policy allows private hosts); return the addresses, for pinning the transfer."""
    assert target.host is not None and target.port is not None
    addresses = (resolve or resolve_addresses)(target.host, target.port)
    if not addresses:
        raise GitCommandError(f"could not resolve host {target.host}")
    if not policy.private_hosts:
        blocked = [a for a in addresses if not is_public_address(a)]
        if blocked:
            raise BlockedAddressError(
                f"refused: {target.host} resolves to {', '.join(blocked)}, which is not a "
                "public address (set REPOMETER_ALLOW_PRIVATE_HOSTS=true for an internal forge)"
            )
    return addresses


def pinned_transfer_config(target: Target, addresses: list[str]) -> list[str]:
    """git settings that make an https transfer connect to exactly the addresses checked,
    so that DNS answering differently a moment later (rebinding) cannot redirect it."""
    if target.url.lower().startswith("https://") and target.host and addresses:
        shown = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
        return [f"http.curloptResolve={target.host}:{target.port}:{shown}"]
    return []


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


def parse_target(target: str, policy: UrlPolicy | None = None) -> Target:
    """A path or URL as typed by the user -> a ``Target`` of the form ``policy`` accepts.

    The host of a remote target is not resolved here: ``check_host`` does that before each
    transfer (and the registration front-ends call it at once).
    """
    policy = policy or UrlPolicy()
    if not target or not target.strip():
        raise RefusedTargetError("refused: empty target")
    _check_no_control_characters(target)
    if target.startswith("-"):
        raise RefusedTargetError(f"refused: {redact_credentials(target)!r} starts with '-'")
    if looks_remote(target):
        return parse_remote(target, policy.schemes)
    if target.lower().startswith("file:"):
        raise _refuse("a file: URL (register the path itself)", target)
    if not policy.local_paths:
        raise RefusedTargetError(
            f"refused: {target!r} is not a remote URL, and local paths are disabled here "
            "(set REPOMETER_ALLOW_LOCAL_PATHS=true to allow them)"
        )
    return parse_local(target)
