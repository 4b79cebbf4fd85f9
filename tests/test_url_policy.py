"""The URL policy: which targets may be registered, and where git may connect, checked at
registration and again before every clone or fetch.

Refused URLs go through the whole path (the REST API's registration, or the CLI's
``add_repository``) with a ``git`` on PATH that logs every call, so a test fails if a
refused URL ever reaches git. DNS is stood in for by a resolver table (these machines have
no internet); an HTTPS server on loopback with a certificate made here serves a real
repository for the pinning and redirect tests.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import os
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from repometer import git, targets
from repometer.errors import (
    BlockedAddressError,
    GitCommandError,
    RefusedTargetError,
    RepometerError,
)
from repometer.ingest import ingest_repository
from repometer.registry import add_repository, mirror_dir
from repometer.settings import Settings
from repometer.storage import RepositoryRecord, Store
from repometer.storage.store import RunRecord
from repometer.targets import UrlPolicy, check_host, parse_target, pinned_transfer_config

if TYPE_CHECKING:
    from conftest import GitRepo

#: What the stand-in DNS answers; hosts not listed do not resolve.
DNS: dict[str, list[str]] = {
    "forge.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "loopback.example": ["127.0.0.1"],
    "mixed.example": ["93.184.215.14", "10.1.2.3"],  # every record counts, not the first
}

BLOCKED_ADDRESSES = [
    "127.0.0.1", "127.8.9.10", "::1", "0.0.0.0", "::", "10.0.0.1", "172.16.5.4",
    "192.168.1.1", "100.64.0.1", "169.254.169.254", "fd00:ec2::254", "fe80::1", "fc00::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "224.0.0.1", "ff02::1", "255.255.255.255",
    "192.0.0.8", "198.18.0.1", "192.0.2.1", "2002:7f00:1::", "64:ff9b::7f00:1",  # 6to4, NAT64
]  # fmt: skip


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    table = dict(DNS)

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise GitCommandError(f"could not resolve host {host}: stand-in DNS has no entry")
        return table[host]

    monkeypatch.setattr(targets, "resolve_addresses", resolve)
    return table


@pytest.fixture
def git_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``git`` first on PATH that logs each call and runs the real one; returns the log."""
    log = tmp_path / "git-calls.log"
    wrapper_dir = tmp_path / "wrapper-bin"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "git"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {shutil.which("git")} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper_dir}{os.pathsep}{os.environ['PATH']}")
    return log


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # these tests register more repositories than one client may per hour
    return settings.model_copy(update={"api_registration_rate": "1000/minute"})


def queue_only(
    store: Store, settings: Settings, record: RepositoryRecord, kind: str, metrics=None
) -> RunRecord:
    """Record a run without starting it (what happens to the URL is the point here)."""
    now = dt.datetime.now(dt.UTC)
    run = RunRecord(
        f"run-{record.id}", record.id, kind, metrics, "scheduled", None, None, None, now, now
    )
    store.put_run(run)
    return run


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


# -- the form of a URL ----------------------------------------------------------------------

REFUSED_EVERYWHERE = [
    # (target, fragment of the reason)
    ("ext::sh -c touch% /tmp/pwned", "remote-helper"),
    ("fd::3", "remote-helper"),
    ("fake::https://forge.example/o/r", "remote-helper"),
    ("file:///etc", "scheme 'file'"),
    ("file:", "file: URL"),
    ("ftp://forge.example/o/r.git", "scheme 'ftp'"),
    ("rsync://forge.example/o/r.git", "scheme 'rsync'"),
    ("http://forge.example/o/r.git", "scheme 'http'"),
    ("--upload-pack=touch${IFS}x", "starts with '-'"),
    ("-oProxyCommand=x", "starts with '-'"),
    ("ssh://-oProxyCommand=x/o/r", "invalid host"),
    ("ssh://git@-oProxyCommand=x/o/r", "invalid host"),
    ("git@-oProxyCommand=x:o/r", "not a git repository"),  # not scp-like: a (missing) path
    ("https://user:ghp_secret@forge.example/o/r.git", "credentials"),
    ("https://ghp_secret@forge.example/o/r.git", "credentials"),
    ("ssh://git:ghp_secret@forge.example/o/r.git", "credentials"),
    ("https://forge.example/o/r.git\nHost: x", "control characters"),
    ("https://forge.example/o/r\r.git", "control characters"),
    ("https://forge.example/o/\tr.git", "control characters"),
    ("https://forge.example/o/\x00r.git", "control characters"),
    ("https://forge.example/o/r%0a.git", "encoded control character"),
    ("https:///o/r.git", "no host"),
    ("https://forge.example/o/../../r.git", "no usable repository path"),
    ("https://forge.example/o/%2e%2e/r.git", "no usable repository path"),
    ("https://forge.example/", "no usable repository path"),
    ("https://forge.example/o/r.git?ref=x", "query or fragment"),
    ("https://forge.example/o/r.git#frag", "query or fragment"),
    ("https://f\u00f6rge.example/o/r.git", "invalid host"),
    ("https://-forge.example/o/r.git", "invalid host"),
    ("https://" + "a" * 254 + "/o/r.git", "longer than 253"),
    ("https://forge.example/" + "o/" * 1100 + "r.git", "longer than 2048"),
    ("https://forge.example:99999/o/r.git", "invalid port"),
]


@pytest.mark.parametrize(("target", "reason"), REFUSED_EVERYWHERE)
def test_malformed_or_dangerous_urls_are_refused_before_git_runs(
    target: str, reason: str, dns, git_calls: Path, store: Store, settings: Settings
) -> None:
    with pytest.raises(RepometerError) as refused:
        add_repository(store, settings, target)  # the CLI's policy, the most permissive
    message = str(refused.value)
    assert reason in message, message
    assert "ghp_secret" not in message  # credentials are never echoed
    assert calls(git_calls) == []
    assert store.list_repositories() == []


def test_the_api_refuses_the_same_urls_and_never_runs_git(
    dns, git_calls: Path, settings: Settings
) -> None:
    app = create_app(settings.model_copy(update={"url_schemes": ["https", "ssh", "git"]}))
    with TestClient(app) as client:
        for target, _ in REFUSED_EVERYWHERE:
            response = client.post("/repositories", json={"url": target})
            assert response.status_code == 422, (target, response.text)
            assert "ghp_secret" not in response.text
        assert client.get("/repositories").json() == []
    assert calls(git_calls) == []


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://forge.example/o/r.git", True),
        ("ssh://git@forge.example/o/r.git", False),
        ("git@forge.example:o/r.git", False),
        ("git://forge.example/o/r.git", False),
    ],
)
def test_the_api_takes_https_only_unless_more_schemes_are_enabled(
    url: str, allowed: bool, dns, git_calls: Path, settings: Settings
) -> None:
    with TestClient(create_app(settings, start_run=queue_only)) as client:
        response = client.post("/repositories", json={"url": url})
        assert response.status_code == (201 if allowed else 422), response.text
        if not allowed:
            assert "not accepted here (allowed: https)" in response.json()["error"]["message"]
    enabled = settings.model_copy(update={"url_schemes": ["https", "ssh", "git"]})
    with TestClient(create_app(enabled, start_run=queue_only)) as client:
        response = client.post("/repositories", json={"url": url})
        assert response.status_code in (200, 201), response.text
    assert calls(git_calls) == []  # registered without cloning: the first run mirrors it


def test_local_paths_only_through_the_cli_unless_allowed(
    make_repo, git_calls: Path, settings: Settings
) -> None:
    repo: GitRepo = make_repo("local")
    repo.commit("one")
    with pytest.raises(RefusedTargetError, match="local paths are disabled"):
        parse_target(str(repo.path), UrlPolicy.for_services(settings))
    with TestClient(create_app(settings, start_run=queue_only)) as client:
        response = client.post("/repositories", json={"url": str(repo.path)})
        assert response.status_code == 422 and "local_path_refused" in response.text
        allowed = settings.model_copy(update={"allow_local_paths": True})
        assert parse_target(str(repo.path), UrlPolicy.for_services(allowed)).is_remote is False
    assert parse_target(str(repo.path), UrlPolicy.for_cli(settings)).local_git_dir is not None


# -- where a host resolves to ------------------------------------------------------------------


@pytest.mark.parametrize("address", BLOCKED_ADDRESSES)
def test_hosts_resolving_to_non_public_addresses_are_refused(
    address: str, dns, git_calls: Path, store: Store, settings: Settings
) -> None:
    dns["internal.example"] = [address]
    with pytest.raises(BlockedAddressError, match="not a public address"):
        add_repository(store, settings, "https://internal.example/o/r.git")
    with TestClient(create_app(settings)) as client:
        response = client.post("/repositories", json={"url": "https://internal.example/o/r"})
        assert response.status_code == 422 and response.json()["error"]["code"] == "blocked_address"
    assert calls(git_calls) == [] and store.list_repositories() == []
    assert not targets.is_public_address(address)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "2130706433", "0x7f.1", "0177.0.0.1", "[::1]", "[::ffff:127.0.0.1]",
             "0.0.0.0", "localhost", "169.254.169.254"],
)  # fmt: skip
def test_numeric_and_named_loopback_forms_are_refused_by_the_real_resolver(
    host: str, git_calls: Path, store: Store, settings: Settings
) -> None:
    with pytest.raises(BlockedAddressError):
        add_repository(store, settings, f"git://{host}/o/r.git")
    assert calls(git_calls) == []


def test_one_private_record_among_public_ones_is_enough_to_refuse(
    dns, store: Store, settings: Settings
) -> None:
    with pytest.raises(BlockedAddressError, match="10.1.2.3"):
        add_repository(store, settings, "https://mixed.example/o/r.git", clone=False)
    assert add_repository(store, settings, "https://forge.example/o/r.git", clone=False)[1]


def test_an_unresolvable_host_is_refused_at_registration(dns, store: Store, settings: Settings):
    with pytest.raises(RefusedTargetError, match="could not resolve host nosuch.example"):
        add_repository(store, settings, "https://nosuch.example/o/r.git", clone=False)


def test_an_internal_forge_is_reachable_when_private_hosts_are_allowed(
    dns, store: Store, settings: Settings
) -> None:
    internal = settings.model_copy(update={"allow_private_hosts": True})
    record, created = add_repository(
        store, internal, "https://loopback.example/o/r.git", clone=False
    )
    assert created and record.is_remote


def test_dns_rebinding_after_registration_is_refused_before_the_fetch(
    dns, git_calls: Path, store: Store, settings: Settings
) -> None:
    record, _ = add_repository(store, settings, "https://forge.example/o/r.git", clone=False)
    dns["forge.example"] = ["127.0.0.1"]  # the name now points inside
    with pytest.raises(BlockedAddressError, match="127.0.0.1"):
        ingest_repository(store, record, settings)
    assert calls(git_calls) == []
    assert not mirror_dir(settings, record.id).exists()
    stored = store.get_repository(record.id)
    assert stored.status == "failed" and "not a public address" in stored.error
    assert stored.head is None


def test_a_policy_tightened_after_registration_applies_to_the_next_fetch(
    dns, git_calls: Path, store: Store, settings: Settings
) -> None:
    internal = settings.model_copy(update={"allow_private_hosts": True})
    record, _ = add_repository(store, internal, "https://loopback.example/o/r", clone=False)
    with pytest.raises(BlockedAddressError):
        ingest_repository(store, record, settings)
    assert calls(git_calls) == []


# -- what git does with an https URL ------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    redirect_to: str | None = None
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        if self.path.startswith("/private/"):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="private"')
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.redirect_to:
            self.send_response(301)
            self.send_header("Location", self.redirect_to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            super().do_GET()

    def log_message(self, *args) -> None:
        pass


def _certificate(directory: Path, names: list[str]) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class HttpsServers:
    """Two HTTPS servers on loopback: ``origin`` serves repositories (git's dumb HTTP
    protocol), ``redirector`` answers every request with a redirect to ``origin``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ca, key = _certificate(root.parent, ["forge.test", "localhost"])
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.ca, key)
        self.requests: dict[str, list[str]] = {"origin": [], "redirector": []}
        self.servers = {}
        for name in ("origin", "redirector"):
            handler = type(name, (_Handler,), {"requests": self.requests[name]})
            handler.__init__ = _directory_init(root)
            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers[name] = server
        self.servers["redirector"].RequestHandlerClass.redirect_to = self.base("origin")

    def port(self, name: str) -> int:
        return self.servers[name].server_address[1]

    def base(self, name: str, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port(name)}"

    def close(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()


def _directory_init(root: Path):
    def init(self, *args, **kwargs) -> None:
        http.server.SimpleHTTPRequestHandler.__init__(self, *args, directory=str(root), **kwargs)

    return init


@pytest.fixture
def https(tmp_path: Path, make_repo) -> Iterator[HttpsServers]:
    served = tmp_path / "served"
    served.mkdir()
    work: GitRepo = make_repo("work")
    for i in range(3):
        work.write("f.txt", f"{i}\n")
        work.commit(f"c{i}")
    bare = served / "project.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work.path), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)
    servers = HttpsServers(served)
    yield servers
    servers.close()


def test_https_transfers_connect_only_to_the_addresses_checked(
    https: HttpsServers, dns, tmp_path: Path, settings: Settings
) -> None:
    # forge.test exists nowhere but in the stand-in DNS: the clone can only succeed if git
    # connects to the address the policy checked, not to one it looks up itself
    dns["forge.test"] = ["127.0.0.1"]
    internal = UrlPolicy(private_hosts=True)
    target = parse_target(f"https://forge.test:{https.port('origin')}/project.git")
    pinned = pinned_transfer_config(target, check_host(target, internal))
    assert pinned == [f"http.curloptResolve=forge.test:{https.port('origin')}:127.0.0.1"]
    destination = tmp_path / "mirror.git"
    git.clone_mirror(
        target.url, destination, timeout=60, config=[*pinned, f"http.sslCAInfo={https.ca}"]
    )
    assert (destination / "HEAD").exists()
    with pytest.raises(GitCommandError, match="(?i)resolve|forge.test"):  # and without the pin
        git.clone_mirror(
            target.url, tmp_path / "unpinned.git", timeout=60, config=[f"http.sslCAInfo={https.ca}"]
        )
    assert not (tmp_path / "unpinned.git").exists()


def test_redirects_are_not_followed(https: HttpsServers, tmp_path: Path) -> None:
    ca = [f"http.sslCAInfo={https.ca}"]
    git.clone_mirror(
        f"{https.base('origin')}/project.git", tmp_path / "direct.git", timeout=60, config=ca
    )
    assert (tmp_path / "direct.git" / "HEAD").exists()  # the server works

    before = len(https.requests["origin"])
    with pytest.raises(GitCommandError, match="301|redirect"):
        git.clone_mirror(
            f"{https.base('redirector')}/project.git", tmp_path / "via.git", timeout=60, config=ca
        )
    assert https.requests["redirector"], "git never asked the redirecting server"
    assert len(https.requests["origin"]) == before  # the redirect target was never contacted
    assert not (tmp_path / "via.git").exists()


def test_a_server_asking_for_credentials_fails_at_once_without_prompting(
    https: HttpsServers, tmp_path: Path
) -> None:
    started = time.monotonic()
    with pytest.raises(GitCommandError, match="(?i)authentication|could not read Username|401"):
        git.clone_mirror(
            f"{https.base('origin')}/private/project.git", tmp_path / "private.git",
            timeout=60, config=[f"http.sslCAInfo={https.ca}"],
        )  # fmt: skip
    assert time.monotonic() - started < 30  # no terminal prompt, no askpass helper waited on
    assert not (tmp_path / "private.git").exists()


def test_submodules_of_a_mirrored_repository_are_never_fetched_or_run(
    https: HttpsServers, make_repo, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    work: GitRepo = make_repo("with-submodules")
    work.write("README", "x\n")
    work.commit("readme", date="2024-02-01T00:00:00+0000")
    blob = work.git("hash-object", "-w", "README").strip()
    # gitlinks and a .gitmodules whose urls would run a command or fetch another repository
    work.write(
        ".gitmodules",
        f'[submodule "../../hooks"]\n\tpath = evil\n\turl = ext::sh -c touch% {marker}\n'
        f'[submodule "other"]\n\tpath = other\n\turl = {https.base("origin")}/other.git\n',
    )
    work.git("update-index", "--add", "--cacheinfo", f"160000,{work.head()},evil")
    work.git("update-index", "--add", "--cacheinfo", f"160000,{work.head()},other")
    work.git("add", ".gitmodules")
    work.commit("submodules", date="2024-03-01T00:00:00+0000")
    bare = https.root / "subs.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work.path), str(bare)], check=True)
    subprocess.run(["git", "-C", str(bare), "update-server-info"], check=True)

    mirror = tmp_path / "subs-mirror.git"
    git.clone_mirror(
        f"{https.base('origin')}/subs.git", mirror, timeout=60,
        config=[f"http.sslCAInfo={https.ca}"],
    )  # fmt: skip
    assert blob in git.run_git(["cat-file", "--batch-all-objects", "--batch-check"],
                               git_dir=mirror).stdout.decode()  # fmt: skip
    assert not marker.exists()
    assert not any("other.git" in r for r in https.requests["origin"])
    assert not (mirror / "modules").exists() and not (mirror / "evil").exists()
