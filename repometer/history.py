"""Turn git's history into rows: commit objects via pygit2, per-file line counts via git log.

Per-file line counts come from ``git log --raw --numstat -M``: git's tree and blob diffs are
2-4x faster than libgit2's on large repositories (see bench/ingest.py), and its numbers are
the ground truth by definition. Commit metadata is parsed from the raw commit object, which
keeps dates before 1970 and odd time zones exactly as stored (git's own formatter prints
nothing for negative timestamps, and libgit2 drops offsets beyond +/-24 h).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from metrics.identity import is_bot

#: The git log invocation; its output is parsed by ``parse_log``. Merge commits get no diff
#: (git log's default), renames are detected with -M, and everything is NUL-separated.
#: --encoding=UTF-8: %aN/%aE are printed in UTF-8 (as parse_log decodes them) even when the
#: repository's own config sets i18n.logOutputEncoding to something else. --no-abbrev: the
#: --raw lines carry whole blob ids, whose sizes ingestion checks. ``log_args`` adds the
#: limits that must never come from the repository's own config.
LOG_ARGS = (
    "log",
    "--no-walk=unsorted",
    "--stdin",
    "-z",
    "--raw",
    "--no-abbrev",
    "--numstat",
    "-M",
    "--diff-merges=off",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--encoding=UTF-8",
    "--format=%x1e%H%x00%aN%x00%aE%x00",
)

_HEADER = b"\x1e"
_SURROGATE = re.compile("[\ud800-\udfff]")
_INT64 = 2**63

#: git's own fallback when the rename limit is 0 or less (diffcore-rename.c).
_GIT_DEFAULT_RENAME_LIMIT = 32767

#: Author and committer times outside this range (exclusive, epoch seconds) are flagged
#: ``bad_date``: 0 is what tools write for "no date", and 2100-01-01 is past any real commit.
DATE_RANGE = (0, 4102444800)

#: Offsets further from UTC than this (minutes) exist in no time zone (UTC-12 .. UTC+14).
MAX_OFFSET = 14 * 60

_GITLINK = "160000"


def log_args(rename_limit: int, max_blob_size: int) -> list[str]:
    """``git LOG_ARGS`` with the limits that bound its time and memory on hostile input.

    Both go on the command line, where they override the repository's own config (which
    could set ``diff.renameLimit`` high enough to make one commit take hours): files larger
    than ``max_blob_size`` are treated as binary (git neither loads nor counts them), and
    rename detection is skipped for a commit beyond ``rename_limit`` (see ``renames_skipped``).
    """
    return ["-c", f"core.bigFileThreshold={max_blob_size}", *LOG_ARGS, f"-l{rename_limit}"]


def renames_skipped(files: Iterable[FileChange], rename_limit: int) -> bool:
    """Whether git skipped inexact rename detection for a commit with these changes.

    git skips it when the additions times the deletions left after exact (and same-name)
    matching exceed the limit squared; every such pair is still an addition and a deletion
    in its output, and a commit git ran detection for can never have that many left.
    """
    limit = rename_limit if rename_limit > 0 else _GIT_DEFAULT_RENAME_LIMIT
    added = deleted = 0
    for change in files:
        added += change.change_type == "A"
        deleted += change.change_type == "D"
    return added * deleted > limit * limit


def join_flags(flags: Iterable[str]) -> str | None:
    """The ``flags`` column: sorted, space-separated, NULL when there are none."""
    return " ".join(sorted(set(flags))) or None


@dataclass
class FileChange:
    path: str
    old_path: str | None
    change_type: str
    lines_added: int
    lines_deleted: int
    is_binary: bool
    blobs: tuple[str, ...] = ()
    """The blob ids of both sides that exist (not gitlinks, not the empty side)."""
    flags: set[str] = field(default_factory=set)


@dataclass
class LogEntry:
    """What git log says about one commit: its author after .mailmap and its file changes."""

    sha: str
    mailmap_name: str
    mailmap_email: str
    files: list[FileChange] = field(default_factory=list)


@dataclass(frozen=True)
class Ident:
    name: str | None
    email: str | None
    time: int | None
    offset: int | None  # minutes east of UTC
    flags: frozenset[str] = frozenset()
    """What was wrong with it: ``bad_ident``, ``bad_date``, ``bad_offset``, ``bad_encoding``."""


def decode_text(raw: bytes, encoding: str = "utf-8") -> str:
    """Decode commit text; undecodable bytes become U+FFFD, NUL too (databases refuse it)."""
    return _decode(raw, encoding)[0]


def _decode(raw: bytes, encoding: str) -> tuple[str, bool]:
    """The text, and whether the bytes were valid in ``encoding`` (a known one)."""
    try:
        info = codecs.lookup(encoding)
        # only character sets: base64, rot13 and the like are codecs too
        known = info._is_text_encoding
    except (LookupError, ValueError):  # ValueError: a label with a NUL in it
        known = False
    codec = info.name if known else "utf-8"
    try:
        text, clean = raw.decode(codec), known
    except ValueError:  # UnicodeError
        try:
            text = raw.decode(codec, "replace")
        except ValueError:  # a codec without "replace" (idna) or with no decoding (undefined)
            text = raw.decode("utf-8", "replace")
        clean = False
    # utf-7 and unicode_escape can decode to lone surrogates, which no database stores
    if _SURROGATE.search(text):
        text, clean = _SURROGATE.sub("\ufffd", text), False
    return text.replace("\x00", "\ufffd"), clean


def decode_path(raw: bytes) -> str:
    """A path as text: UTF-8 when it is, otherwise each undecodable byte as ``\\xNN``."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "backslashreplace")


def _tokens(stream: IO[bytes], chunk_size: int = 1 << 20) -> Iterator[bytes]:
    pending = b""
    while chunk := stream.read(chunk_size):
        parts = (pending + chunk).split(b"\x00")
        pending = parts.pop()
        yield from parts
    if pending:
        yield pending


def _numstat_counts(token: bytes) -> tuple[int, int, bool, bytes]:
    added, deleted, path = token.split(b"\t", 2)
    if added == b"-":
        return 0, 0, True, path
    return int(added), int(deleted), False, path


def _raw_blobs(token: bytes) -> tuple[str, ...]:
    """The blob ids of a ``:mode mode oid oid status`` line, without gitlinks and null ids."""
    old_mode, new_mode, old_oid, new_oid = token[1:].decode("ascii", "replace").split(" ")[:4]
    return tuple(
        oid
        for mode, oid in ((old_mode, old_oid), (new_mode, new_oid))
        if mode != _GITLINK and oid.strip("0")
    )


def parse_log(stream: IO[bytes]) -> Iterator[LogEntry]:
    """Parse the output of ``git LOG_ARGS``, one ``LogEntry`` per commit, in git's order."""
    tokens = _tokens(stream)
    entry: LogEntry | None = None
    raw: list[tuple[str, bytes | None, bytes, tuple[str, ...]]] = []  # status, paths, blobs
    stats: list[tuple[int, int, bool]] = []

    def finish() -> LogEntry:
        assert entry is not None
        if len(raw) != len(stats):
            raise ValueError(
                f"git log output for {entry.sha}: {len(raw)} raw entries but {len(stats)} numstat"
            )
        for (status, old, new, blobs), (added, deleted, binary) in zip(raw, stats, strict=True):
            entry.files.append(
                FileChange(
                    path=decode_path(new),
                    old_path=decode_path(old) if old is not None else None,
                    change_type=status,
                    lines_added=added,
                    lines_deleted=deleted,
                    is_binary=binary,
                    blobs=blobs,
                )
            )
        return entry

    for token in tokens:
        if token.startswith(_HEADER):
            if entry is not None:
                yield finish()
            raw, stats = [], []
            sha = token[1:].decode()
            name, email = next(tokens), next(tokens)
            entry = LogEntry(sha, decode_text(name), decode_text(email))
            continue
        token = token.lstrip(b"\n")
        if not token:
            continue
        if token.startswith(b":"):
            blobs = _raw_blobs(token)
            letter = token.rsplit(b" ", 1)[1].decode()[0]
            if letter in "RC":
                old, new = next(tokens), next(tokens)
                raw.append((letter, old, new, blobs))
            else:
                raw.append((letter, None, next(tokens), blobs))
        else:
            added, deleted, binary, path = _numstat_counts(token)
            if not path:  # a rename: the old and new paths follow as tokens of their own
                next(tokens), next(tokens)
            stats.append((added, deleted, binary))
    if entry is not None:
        yield finish()


def parse_ident(line: bytes, encoding: str) -> Ident:
    """Split ``Name <email> seconds +hhmm`` the way git does; malformed parts become None.

    An offset is kept as written when git can read it, however far from UTC; ``flags`` says
    what is missing, out of range or not in ``encoding``.
    """
    flags: set[str] = set()
    lt = line.find(b"<")
    gt = line.find(b">", lt + 1) if lt >= 0 else -1
    if lt < 0 or gt < 0:
        name, clean = _decode(line.strip(), encoding)
        flags.update(("bad_ident", "bad_date", "bad_offset"))
        if not clean:
            flags.add("bad_encoding")
        return Ident(name or None, None, None, None, frozenset(flags))
    # as git's split_ident_line: the name loses trailing blanks only, the email is verbatim
    name, name_clean = _decode(line[:lt].rstrip(b" \t\n\r"), encoding)
    email, email_clean = _decode(line[lt + 1 : gt], encoding)
    if not (name_clean and email_clean):
        flags.add("bad_encoding")
    date = line[line.rfind(b">") + 1 :].split()
    time = offset = None
    if date:
        try:
            time = int(date[0])
        except ValueError:
            time = None
        if time is not None and not -_INT64 <= time < _INT64:
            time = None
    if len(date) > 1:
        tz = date[1]
        # git reads the digits as one number hhmm, so "+05" is five minutes; longer runs of
        # digits are no offset anyone wrote (and could overflow the column)
        if 2 <= len(tz) <= 5 and tz[:1] in b"+-" and tz[1:].isdigit():
            hhmm = int(tz[1:])
            minutes = hhmm // 100 * 60 + hhmm % 100
            offset = -minutes if tz[:1] == b"-" else minutes
    if time is None or not DATE_RANGE[0] < time < DATE_RANGE[1]:
        flags.add("bad_date")
    if offset is None or abs(offset) > MAX_OFFSET:
        flags.add("bad_offset")
    return Ident(name, email, time, offset, frozenset(flags))


@dataclass(frozen=True)
class CommitObject:
    parents: list[str]
    author: Ident
    committer: Ident
    message: str
    flags: frozenset[str] = frozenset()
    """The flags of both identities, and ``bad_encoding`` for the message."""


def parse_commit_object(raw: bytes) -> CommitObject:
    """Parse a raw commit object (as ``git cat-file commit`` prints it)."""
    header, _, message = raw.partition(b"\n\n")
    fields: dict[bytes, bytes] = {}
    parents: list[str] = []
    for line in header.split(b"\n"):
        if line.startswith(b" "):
            continue  # continuation of a multi-line header (gpgsig, mergetag)
        key, _, value = line.partition(b" ")
        if key == b"parent":
            parents.append(value.decode("ascii", "replace"))
        else:
            fields.setdefault(key, value)
    encoding = fields.get(b"encoding", b"utf-8").decode("ascii", "replace").strip() or "utf-8"
    author = parse_ident(fields.get(b"author", b""), encoding)
    committer = parse_ident(fields.get(b"committer", b""), encoding)
    text, clean = _decode(message, encoding)
    return CommitObject(
        parents=parents,
        author=author,
        committer=committer,
        message=text,
        flags=author.flags | committer.flags | (frozenset() if clean else {"bad_encoding"}),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def time_columns(time: int | None, offset: int | None) -> dict[str, Any]:
    """The grouping columns derived from an author time: UTC day/week/month, local hour/day
    (the local ones NULL without an offset within +/-14 h)."""
    columns: dict[str, Any] = dict.fromkeys(
        ("author_day", "author_week", "author_month", "author_local_hour", "author_local_weekday")
    )
    if time is None:
        return columns
    # a local time in no real time zone would put the commit at a made-up hour
    if offset is not None and abs(offset) <= MAX_OFFSET:
        local = time + offset * 60
        # plain arithmetic: valid for any epoch second (1970-01-01 was a Thursday, weekday 3)
        columns.update(
            author_local_hour=local // 3600 % 24, author_local_weekday=(local // 86400 + 3) % 7
        )
    try:
        utc = _EPOCH + timedelta(seconds=time)
        columns.update(author_day=utc.strftime("%Y-%m-%d"), author_month=utc.strftime("%Y-%m"))
        columns["author_week"] = (utc - timedelta(days=utc.weekday())).strftime("%Y-%m-%d")
    except OverflowError:  # beyond the years 1-9999 that dates can express
        pass
    return columns


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].strip().lower() or None


def commit_row(
    repo_id: str, entry: LogEntry, commit: CommitObject, flags: Iterable[str] = ()
) -> dict[str, Any]:
    """The ``commits`` row for one commit; ``flags`` adds to what its metadata calls for."""
    counted = [f for f in entry.files if not f.is_binary]
    return {
        "repo_id": repo_id,
        "sha": entry.sha,
        "parents": " ".join(commit.parents),
        "is_merge": len(commit.parents) > 1,
        "is_bot": is_bot(entry.mailmap_name, entry.mailmap_email),
        "author_name": commit.author.name,
        "author_email": commit.author.email,
        "author_time": commit.author.time,
        "author_offset": commit.author.offset,
        "committer_name": commit.committer.name,
        "committer_email": commit.committer.email,
        "committer_time": commit.committer.time,
        "committer_offset": commit.committer.offset,
        "mailmap_name": entry.mailmap_name,
        "mailmap_email": entry.mailmap_email,
        "email_domain": email_domain(entry.mailmap_email),
        **time_columns(commit.author.time, commit.author.offset),
        "files_changed": len(entry.files),
        "lines_added": sum(f.lines_added for f in counted),
        "lines_deleted": sum(f.lines_deleted for f in counted),
        "message": commit.message,
        "flags": join_flags([*commit.flags, *flags]),
    }


def file_rows(repo_id: str, entry: LogEntry) -> Iterable[dict[str, Any]]:
    """The ``file_changes`` rows for one commit."""
    for seq, change in enumerate(entry.files):
        yield {
            "repo_id": repo_id,
            "sha": entry.sha,
            "seq": seq,
            "path": change.path,
            "old_path": change.old_path,
            "change_type": change.change_type,
            "lines_added": change.lines_added,
            "lines_deleted": change.lines_deleted,
            "is_binary": change.is_binary,
            "flags": join_flags(change.flags),
        }
