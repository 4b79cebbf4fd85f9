"""Property tests of the URL policy: whatever a user types, the answer is a ``Target`` that
satisfies the policy or one ``RepometerError``; equal repositories get equal ids."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from repometer.errors import RepometerError
from repometer.targets import UrlPolicy, is_public_address, parse_target

HTTPS_ONLY = UrlPolicy(schemes=frozenset({"https"}), local_paths=False)
EVERY_SCHEME = UrlPolicy(local_paths=False)

_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
hosts = st.lists(_label, min_size=2, max_size=4).map(".".join)
segments = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._~-]{0,15}", fullmatch=True).filter(
    lambda s: s not in (".", "..") and not s.endswith(".git")
)
paths = st.lists(segments, min_size=1, max_size=4).map("/".join)

#: Characters that make URLs interesting: separators, controls, escapes, non-ASCII.
_tricky = st.sampled_from(list(":/@?#%-.\\[]~\x00\t\n\r \x7f") + ["::", "%0a", "%2e", "é"])
any_text = st.one_of(
    st.text(max_size=80),
    st.lists(st.one_of(_tricky, st.text(max_size=4)), max_size=20).map("".join),
    st.builds(lambda s, rest: s + rest, st.sampled_from(
        ["https://", "http://", "ssh://", "git://", "file://", "ext::", "fd::", "git@",
         "https://user:pw@", "ssh://-o", "-"]
    ), st.text(max_size=40)),
)  # fmt: skip

relaxed = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@relaxed
@given(any_text)
@example("https://user:pw@host.example/o/r")
@example("ext::sh -c id")
@example("https://host.example/o/r%0a")
def test_any_text_is_a_target_within_the_policy_or_one_clear_error(text: str) -> None:
    for policy in (HTTPS_ONLY, EVERY_SCHEME):
        try:
            target = parse_target(text, policy)
        except RepometerError as exc:
            message = str(exc)
            assert message and "\n" not in message
            if ":pw@" in text:
                assert ":pw@" not in message  # credentials are never echoed
            continue
        # accepted: everything the policy promises holds
        assert target.is_remote and target.url == text
        assert not text.startswith("-") and "::" not in text.split("/", 1)[0]
        assert not any(ord(c) < 32 or ord(c) == 127 for c in text)
        assert target.host and not target.host.startswith("-")
        if "://" in text:
            parts = urlsplit(text)
            assert parts.scheme.lower() in policy.schemes
            assert parts.password is None and not parts.query and not parts.fragment
            if parts.scheme.lower() == "https":
                assert parts.username is None
        else:
            assert "ssh" in policy.schemes  # the scp-like form is ssh


@relaxed
@given(hosts, paths, st.booleans(), st.booleans(), st.booleans())
def test_one_repository_written_several_ways_has_one_id(
    host: str, path: str, suffix: bool, slash: bool, upper: bool
) -> None:
    canonical = parse_target(f"https://{host}/{path}", EVERY_SCHEME)
    shown_host = host.upper() if upper else host
    variant = f"https://{shown_host}/{path}{'.git' if suffix else ''}{'/' if slash else ''}"
    for form in (variant, f"ssh://git@{host}/{path}", f"git@{host}:{path}.git"):
        target = parse_target(form, EVERY_SCHEME)
        assert target.id == canonical.id, form
        assert target.name == canonical.name
    # normalising is idempotent: the id does not depend on which accepted form came first
    assert parse_target(f"https://{host}:443/{path}", EVERY_SCHEME).id == canonical.id
    assert parse_target(f"https://{host}:8443/{path}", EVERY_SCHEME).id != canonical.id


_v4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
_private_v4 = st.sampled_from(
    ["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
     "169.254.0.0/16", "0.0.0.0/8", "224.0.0.0/4", "240.0.0.0/4", "192.0.0.0/24"]
).flatmap(lambda net: st.integers(0, ipaddress.ip_network(net).num_addresses - 1).map(
    lambda i, net=net: ipaddress.ip_network(net)[i]))  # fmt: skip


@relaxed
@given(_private_v4)
def test_every_address_of_a_non_public_range_is_refused_in_every_spelling(ip) -> None:
    assert not is_public_address(str(ip))
    assert not is_public_address(f"::ffff:{ip}")  # IPv4-mapped IPv6
    assert not is_public_address(f"64:ff9b::{ip}")  # NAT64


@relaxed
@given(_v4)
def test_ipv6_spellings_of_an_ipv4_address_get_its_answer(ip) -> None:
    assume(not ip.is_unspecified)
    answer = is_public_address(str(ip))
    assert is_public_address(f"::ffff:{ip}") == answer
    assert is_public_address(f"64:ff9b::{ip}") == answer
