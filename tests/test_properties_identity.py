"""Property tests for the identity parsing: ident lines, raw commit objects, .mailmap, bots.

Inputs come from Hypothesis; the oracles are git itself (commits written with ``git
hash-object --literally`` and printed back with ``git log``, real repositories with a
``.mailmap`` ingested into SQLite/PostgreSQL) and, for the mailmap, a model of git's rules as
``gitmailmap(5)`` and ``mailmap.c`` state them, so that a rule git and repometer both got
wrong would still show.
"""

from __future__ import annotations

import encodings
import encodings.aliases
import itertools
import pkgutil
import re

import pytest
import sqlalchemy as sa
from conftest import GitRepo, git_env
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st

from metrics.identity import KNOWN_BOTS, is_bot
from repometer.history import Ident, parse_commit_object, parse_ident
from repometer.storage.schema import commits

INT64 = 2**63
INT32 = 2**31

PURE = settings(max_examples=400, deadline=None, print_blob=True)
GIT_BACKED = settings(
    max_examples=40, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
# A repository per example: few examples. The store fixture is shared by the examples on
# purpose (each example registers a repository of its own).
REPO_PER_EXAMPLE = settings(
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Every label Python's codec registry answers to, including the ones that are no character
#: set at all (base64, rot13, idna, undefined, unicode_escape): a commit's ``encoding`` header
#: is whatever its author wrote, and Python looks it up in this registry.
PYTHON_CODEC_LABELS = sorted(
    set(encodings.aliases.aliases)
    | set(encodings.aliases.aliases.values())
    | {m.name for m in pkgutil.iter_modules(encodings.__path__) if m.name != "aliases"}
)
#: Labels as git (iconv) writes them, and some it never would.
GIT_LABELS = ["UTF-8", "utf8", "ISO-8859-1", "latin1", "GBK", "Shift_JIS", "KOI8-R",
              "windows-1252", "UTF-16", "UTF-7", "bogus", "", " ", "utf-8\x00", "\u00e9"]  # fmt: skip
encoding_labels = st.one_of(st.sampled_from(PYTHON_CODEC_LABELS + GIT_LABELS), st.text(max_size=16))

# Pieces that steer arbitrary bytes towards the branches of the ident parser.
IDENT_FRAGMENTS = [b"<", b">", b" ", b"\t", b"\n", b"\x00", b"-", b"+", b"0", b"1234567890",
                   b"9" * 25, b"1_000", b"+0530", b"-99999", b"\xff", b"\xe9", b"\\ud800",
                   b"+2D8-", b"\xc3\xa9", b"a@b.c"]  # fmt: skip
ident_like_bytes = st.one_of(
    st.binary(max_size=120),
    st.lists(st.sampled_from(IDENT_FRAGMENTS) | st.binary(max_size=4), max_size=20).map(b"".join),
)


def assert_storable(text: str | None) -> None:
    """Text the databases accept: no NUL (PostgreSQL refuses it) and valid UTF-8 (no lone
    surrogates, which neither SQLite's nor psycopg's UTF-8 encoding can write)."""
    if text is None:
        return
    assert isinstance(text, str)
    assert "\x00" not in text, text
    text.encode("utf-8")  # raises UnicodeEncodeError on a lone surrogate


def parts(ident: Ident) -> tuple:
    """What was read; the flags about it are another test's business."""
    return ident.name, ident.email, ident.time, ident.offset


def assert_sane_ident(ident: Ident) -> None:
    assert_storable(ident.name)
    assert_storable(ident.email)
    assert ident.time is None or (type(ident.time) is int and -INT64 <= ident.time < INT64)
    # author_offset/committer_offset are INTEGER columns
    assert ident.offset is None or (type(ident.offset) is int and -INT32 <= ident.offset < INT32)


# 1. parse_ident on anything -------------------------------------------------------------


@PURE
@given(line=ident_like_bytes, encoding=encoding_labels)
@example(line=b"A <a@b> 1 +0000", encoding="base64")  # bytes-to-bytes codec
@example(line=b"+2D8- <a@b> 1 +0000", encoding="utf-7")  # decodes to a lone surrogate
@example(line=b"\\ud800 <a@b> 1 +0000", encoding="unicode_escape")
@example(line=b"A <a@b> 1 +0000", encoding="utf-8\x00")  # codecs.lookup: ValueError
@example(line=b"A <a@b> " + b"9" * 5000 + b" +0000", encoding="utf-8")  # int() digit limit
def test_parse_ident_arbitrary_bytes_and_encoding_labels_never_raise_and_stay_storable(
    line: bytes, encoding: str
) -> None:
    assert_sane_ident(parse_ident(line, encoding))


# 2. Round trip of well-formed idents, and git's reading of them ------------------------

ident_text = st.characters(codec="utf-8", exclude_characters="<>\n\x00")
names = st.text(ident_text, max_size=20).map(str.strip)
emails = st.text(ident_text, max_size=20)
times = st.integers(-INT64, INT64 - 1) | st.integers(-(10**10), 10**10)
offsets = st.tuples(st.sampled_from("+-"), st.integers(0, 99), st.integers(0, 59))


def ident_line(name: str, email: str, time: int, tz: tuple[str, int, int]) -> bytes:
    sign, hh, mm = tz
    return f"{name} <{email}> {time} {sign}{hh:02d}{mm:02d}".encode()


def minutes(tz: tuple[str, int, int]) -> int:
    sign, hh, mm = tz
    return (-1 if sign == "-" else 1) * (hh * 60 + mm)


@PURE
@given(name=names, email=emails, time=times, tz=offsets)
def test_parse_ident_well_formed_line_returns_exactly_its_components(
    name: str, email: str, time: int, tz: tuple[str, int, int]
) -> None:
    parsed = parse_ident(ident_line(name, email, time, tz), "UTF-8")
    assert parts(parsed) == (name, email, time, minutes(tz))


@pytest.fixture(scope="module")
def object_repo(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    """One repository for all examples: commit objects are written loose and never checked
    out, so examples cannot disturb each other."""
    path = tmp_path_factory.mktemp("objects")
    repo = GitRepo(path, git_env(path))
    repo.git("init", "-q")
    return repo


_GIT_IDENT_FORMAT = "--format=%an%x00%ae%x00%at%x00%ad%x00%cn%x00%ce%x00%ct%x00%cd"


@GIT_BACKED
@given(
    author=st.tuples(names, emails, times, offsets),
    committer=st.tuples(names, emails, times, offsets),
)
@example(author=("Ada", "ada@example.org", 0, ("-", 0, 0)),
         committer=("Carl", "", INT64 - 1, ("+", 99, 59)))  # fmt: skip
@example(author=("Neg", "n@x", -1, ("+", 5, 30)), committer=("", " sp ", 1, ("-", 14, 0)))
def test_parse_ident_agrees_with_git_log_on_well_formed_commits(
    object_repo: GitRepo, author: tuple, committer: tuple
) -> None:
    tree = object_repo.git("hash-object", "-t", "tree", "-w", "--stdin", input=b"")
    raw = (
        f"tree {tree}\n".encode()
        + b"author " + ident_line(*author) + b"\n"
        + b"committer " + ident_line(*committer) + b"\n\nmessage\n"
    )  # fmt: skip
    sha = object_repo.git("hash-object", "--literally", "-t", "commit", "-w", "--stdin", input=raw)
    out = object_repo.git_bytes("log", "-1", "--date=raw", _GIT_IDENT_FORMAT, sha)
    fields = out.decode("utf-8").removesuffix("\n").split("\x00")
    parsed = parse_commit_object(raw)
    for ident, (name, email, at, ad) in (
        (parsed.author, fields[:4]),
        (parsed.committer, fields[4:]),
    ):
        assert (ident.name, ident.email) == (name, email)
        # git reads no date before 1970 (its timestamps are unsigned) and prints %at empty
        # and %ad as "0 +0000" then: those components are compared only when git has them
        if ident.time is not None and ident.time >= 0:
            assert int(at) == ident.time
            hh, mm = divmod(abs(ident.offset), 60)
            hhmm = (hh * 100 + mm) * (-1 if ident.offset < 0 else 1)
            assert ad == f"{ident.time} {hhmm:+05d}"
        else:
            assert at == ""


# 3. parse_commit_object ------------------------------------------------------------------

hexsha = st.binary(min_size=20, max_size=20).map(bytes.hex)
header_bytes = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b""))


@st.composite
def commit_like_bytes(draw: st.DrawFn) -> bytes:
    """Arbitrary bytes, or a header skeleton with an arbitrary encoding label and junk."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=300))
    label = draw(encoding_labels).encode("utf-8", "surrogatepass")
    lines = [b"tree " + draw(header_bytes), b"author " + draw(ident_like_bytes),
             b"encoding " + label, draw(header_bytes)]  # fmt: skip
    lines = draw(st.permutations(lines))
    return (
        b"\n".join(lines)
        + draw(st.sampled_from([b"\n\n", b"\n", b""]))
        + draw(st.binary(max_size=60))
    )


@PURE
@given(raw=commit_like_bytes())
@example(raw=b"tree x\nauthor A <a@b> 1 +0000\nencoding base64\n\nbWVzc2FnZQ==\n")
@example(raw=b"tree x\nauthor A <a@b> 1 +0000\nencoding utf-7\n\n+2D8-\n")
@example(raw=b"tree x\nencoding idna\n\nmessage\n")
@example(raw=b"tree x\nencoding a\x00b\n\nmessage\n")
def test_parse_commit_object_arbitrary_bytes_never_raise_and_stay_storable(raw: bytes) -> None:
    commit = parse_commit_object(raw)
    assert all(isinstance(p, str) for p in commit.parents)
    assert_sane_ident(commit.author)
    assert_sane_ident(commit.committer)
    assert_storable(commit.message)


#: (header value or None, the encoding the text is really in, Python's name for the header's)
ENCODINGS = [
    (None, "utf-8", "utf-8"),
    (b"UTF-8", "utf-8", "utf-8"),
    (b"ISO-8859-1", "latin-1", "latin-1"),
    (b"Shift_JIS", "shift_jis", "shift_jis"),
    (b"KOI8-R", "koi8_r", "koi8_r"),
    (b"GBK", "utf-8", "gbk"),  # a lying header: the bytes are UTF-8, git converts from GBK
]


def decoded(raw: bytes, codec: str) -> str:
    return raw.decode(codec, "replace").replace("\x00", "\ufffd")


@st.composite
def well_formed_commits(draw: st.DrawFn):
    header, real, declared = draw(st.sampled_from(ENCODINGS))
    parents = draw(st.lists(hexsha, max_size=3))
    idents = []
    for _ in range(2):
        name, email, time, tz = draw(names), draw(emails), draw(times), draw(offsets)
        name_b, email_b = name.encode(real, "replace"), email.encode(real, "replace")
        sign, hh, mm = tz
        line = name_b + b" <" + email_b + f"> {time} {sign}{hh:02d}{mm:02d}".encode()
        idents.append((line, Ident(decoded(name_b, declared), decoded(email_b, declared),
                                   time, minutes(tz))))  # fmt: skip
    raw = f"tree {draw(hexsha)}\n".encode()
    raw += b"".join(f"parent {p}\n".encode() for p in parents)
    raw += b"author " + idents[0][0] + b"\ncommitter " + idents[1][0] + b"\n"
    if header is not None:
        raw += b"encoding " + header + b"\n"
    if draw(st.booleans()):  # signature lines go on with a space, blank ones are " "
        body = draw(st.lists(header_bytes, min_size=1, max_size=5))
        raw += b"gpgsig -----BEGIN PGP SIGNATURE-----\n"
        raw += b"".join(b" " + line + b"\n" for line in body)
        raw += b" -----END PGP SIGNATURE-----\n"
    message = draw(st.binary(max_size=200))
    raw += b"\n" + message
    return raw, parents, idents[0][1], idents[1][1], decoded(message, declared)


@PURE
@given(commit=well_formed_commits())
@example(commit=(b"tree " + b"0" * 40 + b"\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000"
                 b"\nencoding GBK\n\n\xe4\xbd\xa0\xe5\xa5\xbd\n\n\nsecond paragraph\x00\xff",
                 [], Ident("A", "a@b", 1, 0), Ident("A", "a@b", 1, 0),
                 decoded(b"\xe4\xbd\xa0\xe5\xa5\xbd\n\n\nsecond paragraph\x00\xff", "gbk")))  # fmt: skip
def test_parse_commit_object_well_formed_returns_parents_in_order_and_decoded_message(
    commit: tuple,
) -> None:
    raw, parents, author, committer, message = commit
    parsed = parse_commit_object(raw)
    assert parsed.parents == parents
    assert (parts(parsed.author), parts(parsed.committer)) == (parts(author), parts(committer))
    assert parsed.message == message


# 4. .mailmap: repometer's mailmap_name/mailmap_email against git and git's rules ---------


def ascii_fold(text: str) -> str:
    """git compares mailmap names and emails with strcasecmp: ASCII letters only."""
    return text.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))


MailmapEntry = tuple  # (proper name | None, proper email | None, commit name | None, commit email)


def mailmap_line(entry: MailmapEntry) -> str:
    proper_name, proper_email, commit_name, commit_email = entry
    if commit_name is not None:
        return f"{proper_name} <{proper_email}> {commit_name} <{commit_email}>"
    if proper_email is None:
        return f"{proper_name} <{commit_email}>"
    return f"{proper_name + ' ' if proper_name else ''}<{proper_email}> <{commit_email}>"


def model_mailmap(entries: list[MailmapEntry], name: str, email: str) -> tuple[str, str]:
    """git's mailmap rules: entries are keyed by the commit email (and name), matched without
    regard to ASCII case; for the same key a later line replaces what an earlier one set."""
    simple: dict[str, list[str | None]] = {}
    by_name: dict[str, dict[str, tuple[str | None, str | None]]] = {}
    for proper_name, proper_email, commit_name, commit_email in entries:
        key = ascii_fold(commit_email)
        simple.setdefault(key, [None, None])
        if commit_name is None:
            if proper_name:
                simple[key][0] = proper_name
            if proper_email:
                simple[key][1] = proper_email
        else:
            by_name.setdefault(key, {})[ascii_fold(commit_name)] = (proper_name, proper_email)
    key = ascii_fold(email)
    if key not in simple:
        return name, email
    proper_name, proper_email = by_name.get(key, {}).get(ascii_fold(name), simple[key])
    return proper_name or name, proper_email or email


def case_variant(text: str) -> st.SearchStrategy[str]:
    flipped = st.lists(st.booleans(), min_size=len(text), max_size=len(text)).map(
        lambda flips: "".join(c.swapcase() if f else c for c, f in zip(text, flips, strict=True))
    )
    return st.just(text) | flipped


# letters whose swapcase is one letter again, so that case variants keep their length
name_words = st.text(st.sampled_from("adeknorsyADEKNORSYéÉöÖłŁñÑ李"), min_size=1, max_size=7)
person_names = st.lists(name_words, min_size=1, max_size=2).map(" ".join)
mail_local = st.from_regex(r"[abcxyzABCXYZ019]([abcxyzABCXYZ019._-]{0,4}[abcxyzABCXYZ019])?",
                          fullmatch=True)  # fmt: skip
mail_addresses = st.builds(
    "{}@{}.{}".format, mail_local, st.sampled_from(["example", "Old", "corp"]),
    st.sampled_from(["org", "COM"]),
)  # fmt: skip


@st.composite
def mailmap_histories(draw: st.DrawFn):
    """A few people, the .mailmap lines about them, and commits under case variants of their
    names and emails (plus strangers the .mailmap does not mention)."""
    people = draw(st.lists(st.tuples(person_names, mail_addresses), min_size=1, max_size=3,
                           unique_by=lambda p: ascii_fold(p[1])))  # fmt: skip

    def someone() -> tuple[str, str]:
        name, email = draw(st.sampled_from(people))
        return draw(case_variant(name)), draw(case_variant(email))

    entries = []
    for _ in range(draw(st.integers(0, 5))):
        form = draw(st.integers(1, 4))
        commit_name, commit_email = someone()
        proper_name = draw(person_names)
        proper_email = draw(mail_addresses)
        entries.append({
            1: (proper_name, None, None, commit_email),
            2: (None, proper_email, None, commit_email),
            3: (proper_name, proper_email, None, commit_email),
            4: (proper_name, proper_email, commit_name, commit_email),
        }[form])  # fmt: skip
    authors = [
        someone() if draw(st.booleans()) else (draw(person_names), draw(mail_addresses))
        for _ in range(draw(st.integers(1, 4)))
    ]
    return entries, authors


_repo_names = (f"mailmap-{i}" for i in itertools.count())
_CASE_VARIANT_EXAMPLE = (
    [("Ada Lovelace", "ada@example.org", None, "ada@old.example"),
     ("Bob Proper", "bob@corp.org", "bob", "BOB@Corp.org")],
    [("ada", "ADA@Old.Example"), ("BOB", "bob@corp.ORG"), ("Bobby", "bob@corp.org")],
)  # fmt: skip


@REPO_PER_EXAMPLE
@given(history=mailmap_histories())
@example(history=_CASE_VARIANT_EXAMPLE)
def test_mailmap_identity_of_each_ingested_commit_equals_git_and_git_rules(
    make_repo, store, ingest, history: tuple
) -> None:
    entries, authors = history
    repo = make_repo(next(_repo_names))
    mailmap = "# generated\n" + "".join(mailmap_line(e) + "\n" for e in entries)
    repo.write(".mailmap", mailmap)
    repo.commit("mailmap")
    for i, (name, email) in enumerate(authors):
        repo.commit(f"c{i}", GIT_AUTHOR_NAME=name, GIT_AUTHOR_EMAIL=email)
    record = ingest(repo)

    log = repo.git_bytes("log", "--encoding=UTF-8", "--format=%H%x00%an%x00%ae%x00%aN%x00%aE%x00")
    fields = log.decode("utf-8").replace("\n", "").split("\x00")[:-1]
    with store.engine.connect() as conn:
        stored = {
            sha: (name, email)
            for sha, name, email in conn.execute(
                sa.select(commits.c.sha, commits.c.mailmap_name, commits.c.mailmap_email).where(
                    commits.c.repo_id == record.id
                )
            )
        }
    assert len(stored) == len(fields) // 5 == len(authors) + 1
    for sha, name, email, mapped_name, mapped_email in zip(*[iter(fields)] * 5, strict=True):
        if (mapped_name, mapped_email) != (name, email):
            exact = any(e[3] == email for e in entries)
            event("mapped" if exact else "mapped through an email in another ASCII case")
        assert stored[sha] == (mapped_name, mapped_email), (mailmap, name, email)
        assert model_mailmap(entries, name, email) == (mapped_name, mapped_email), (
            "git reads this .mailmap otherwise than the model of its rules",
            mailmap, name, email,
        )  # fmt: skip


def test_mailmap_model_matches_commit_emails_ignoring_ascii_case() -> None:
    # the case-variant example above, with the answers written out: the property's other
    # oracle is git, so this pins the model to known values of its own
    entries, _ = _CASE_VARIANT_EXAMPLE
    assert model_mailmap(entries, "ada", "ADA@Old.Example") == ("Ada Lovelace", "ada@example.org")
    assert model_mailmap(entries, "BOB", "bob@corp.ORG") == ("Bob Proper", "bob@corp.org")
    assert model_mailmap(entries, "Bobby", "bob@corp.org") == ("Bobby", "bob@corp.org")
    assert model_mailmap(entries, "Éve", "eve@x.org") == ("Éve", "eve@x.org")


# 5. is_bot ------------------------------------------------------------------------------

# Pieces of the bot patterns, so that drawn text reaches every branch of is_bot.
BOT_FRAGMENTS = ["bot", "BoT", "robot", "[bot]", "[BOT]", " ", "-", "_", ".", "@", "+", "123",
                 "noreply", "CI", "dependabot", "Renovate", "users.noreply.github.com", "bots."]  # fmt: skip


def fragment_text(alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[str | None]:
    pieces = st.sampled_from(BOT_FRAGMENTS) | st.text(alphabet, max_size=3)
    return st.none() | st.text(alphabet, max_size=40) | st.lists(pieces, max_size=8).map("".join)


any_text = fragment_text(st.characters(codec=None))


@PURE
@given(name=any_text, email=any_text)
def test_is_bot_arbitrary_text_or_none_never_raises_and_is_deterministic(name, email) -> None:
    first = is_bot(name, email)
    assert isinstance(first, bool)
    assert is_bot(name, email) is first


ascii_text = fragment_text(st.characters(max_codepoint=127))


@PURE
@given(name=ascii_text, email=ascii_text)
def test_is_bot_ignores_ascii_case(name, email) -> None:
    assert is_bot(name, email) == is_bot(name and name.upper(), email and email.lower())


known_bot_logins = st.sampled_from(sorted(KNOWN_BOTS))


@PURE
@given(
    login=known_bot_logins,
    form=st.integers(0, 5),
    user_id=st.integers(1, 10**9),
    flips=st.lists(st.booleans(), min_size=64, max_size=64),
)
@example(login="dependabot", form=1, user_id=49699333, flips=[False] * 64)
@example(login="github-actions", form=3, user_id=41898282, flips=[False] * 64)
@example(login="renovate", form=1, user_id=29139614, flips=[False] * 64)
def test_is_bot_known_bot_accounts_in_github_forms_are_bots(login, form, user_id, flips) -> None:
    def vary(text: str) -> str:
        return "".join(c.swapcase() if f else c for c, f in zip(text, flips * 2, strict=False))

    name, email = {
        0: (login, f"{login}@example.com"),
        1: (f"{login}[bot]", f"{user_id}+{login}[bot]@users.noreply.github.com"),
        2: ("Some Human", f"{user_id}+{login}@users.noreply.github.com"),
        3: (None, f"{login}[bot]@users.noreply.github.com"),
        4: (f"  {login}[bot] ", None),
        5: (None, f"{login}[bot]"),  # git takes anything between < and > as the email
    }[form]
    assert is_bot(name and vary(name), email and vary(email))


_BOT_WORDS = {"bot", "robot"}
_BOT_LOCAL_PARTS = KNOWN_BOTS | {"bot", "robot", "noreply", "no-reply", "ci", "build", "automation"}
# surnames with "bot" inside a word, which are people's: the markers are whole words only
human_words = st.sampled_from(["Talbot", "Abbott", "Botham", "Robotham", "Cabot", "Ada", "Li",
                               "Müller", "Nakamura", "O'Brien", "José"]) | st.from_regex(
    r"[A-Z][a-z]{1,9}", fullmatch=True)  # fmt: skip


@st.composite
def humans(draw: st.DrawFn) -> tuple[str, str]:
    words = draw(st.lists(human_words, min_size=2, max_size=3))
    name = " ".join(words)
    sep = draw(st.sampled_from([".", "_", "-", ""]))
    local = sep.join(w.lower() for w in words[: draw(st.integers(1, len(words)))])
    local = local.encode("ascii", "ignore").decode() or "someone"
    domain = draw(st.sampled_from(["example.org", "mail.example.com", "uni.example.edu",
                                   "talbot.example", "users.noreply.github.com"]))  # fmt: skip
    if domain == "users.noreply.github.com":
        local = f"{draw(st.integers(1, 10**8))}+{local}"
    return name, f"{local}@{domain}"


def has_bot_marker(name: str, email: str) -> bool:
    """What makes an identity a bot on its face: a word bot/robot, "[bot]", a role address."""
    local, _, domain = email.lower().partition("@")
    login = local.split("+", 1)[1] if "+" in local and local.split("+")[0].isdigit() else local
    return (
        "[bot]" in (name + email).lower()
        or bool(_BOT_WORDS & set(re.split(r"[\s_.-]+", name.lower())))
        or name.lower() in KNOWN_BOTS
        or login in _BOT_LOCAL_PARTS
        or domain.split(".")[0] in {"bot", "bots"}
    )


@PURE
@given(human=humans())
@example(human=("Jane Talbot", "jane.talbot@talbot.example"))
@example(human=("Abbott Botham", "12345+abbott@users.noreply.github.com"))
def test_is_bot_ordinary_people_without_bot_markers_are_not_bots(human) -> None:
    name, email = human
    assume(not has_bot_marker(name, email))  # e.g. a drawn word "Bot": a bot by design
    assert not is_bot(name, email), (name, email)
