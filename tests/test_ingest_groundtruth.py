"""Ground truth: what ingestion stores must be what git itself says, commit by commit.

Every test builds a real repository with the git CLI, registers and ingests it, then hands it
to ``assert_matches_git``, which reads the ``commits`` and ``file_changes`` tables back and
compares them with git's own output (``git rev-list``, ``git log --numstat -M``,
``git log --name-status -M``, ``git log --format=...``, ``git cat-file commit``). Nothing in
the oracle calls repometer's parsers: it parses git's output with the small functions below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from repometer.ingest import ingest_repository
from repometer.registry import add_repository
from repometer.storage.schema import commits, file_changes, repositories

# -- the oracle: git's answers, parsed in the simplest way that is obviously right -----------

#: Fields asked of ``git log``, NUL-separated (names and emails cannot contain NUL).
_META_FIELDS = ("%an", "%ae", "%at", "%ad", "%cn", "%ce", "%ct", "%cd", "%aN", "%aE", "%P")
_META_FORMAT = "--format=" + "%x00".join(_META_FIELDS)


def stored_path(raw: bytes) -> str:
    """How a path is stored: UTF-8 text, undecodable bytes spelled ``\\xNN``."""
    return raw.decode("utf-8", "backslashreplace")


def parse_offset(tz: str) -> int:
    """``+hhmm`` / ``-hhmm`` as git prints it -> minutes east of UTC."""
    assert len(tz) == 5 and tz[0] in "+-" and tz[1:].isdigit(), tz
    minutes = int(tz[1:3]) * 60 + int(tz[3:5])
    return -minutes if tz[0] == "-" else minutes


def raw_offset(tz: bytes) -> int:
    """A time zone as a commit object stores it, read as git does: ``+hhmm`` as one number.

    git reads ``+05`` as five minutes and prints it as ``+0005``.
    """
    assert tz[:1] in b"+-" and tz[1:].isdigit(), tz
    return parse_offset(f"{tz[:1].decode()}{int(tz[1:]):04d}")


@dataclass(frozen=True)
class RawCommit:
    """The headers and message of ``git cat-file commit <sha>``, split naively."""

    headers: list[tuple[bytes, bytes]]
    message: bytes

    def header(self, key: bytes) -> bytes | None:
        values = [value for k, value in self.headers if k == key]
        return values[0] if values else None

    @property
    def encoding(self) -> str:
        value = self.header(b"encoding")
        return value.decode("ascii") if value else "utf-8"


def cat_file_commit(repo, sha: str) -> RawCommit:
    raw = repo.git_bytes("cat-file", "commit", sha)
    header, _, message = raw.partition(b"\n\n")
    headers = []
    for line in header.split(b"\n"):
        if line.startswith(b" "):  # continuation line of a multi-line header
            continue
        key, _, value = line.partition(b" ")
        headers.append((key, value))
    return RawCommit(headers, message)


def raw_ident(value: bytes) -> tuple[bytes, bytes, int | None, int | None]:
    """``Name <email> seconds +hhmm`` from a raw commit header -> name, email, time, offset.

    Split as git's ``split_ident_line`` does: the name up to the first ``<`` without trailing
    blanks, the email verbatim up to the first ``>``, the date after the last ``>``.
    """
    lt = value.index(b"<")
    gt = value.index(b">", lt)
    date = value[value.rindex(b">") + 1 :].split()
    if not date:
        return value[:lt].rstrip(b" \t"), value[lt + 1 : gt], None, None
    seconds, tz = date
    return value[:lt].rstrip(b" \t"), value[lt + 1 : gt], int(seconds), raw_offset(tz)


@dataclass(frozen=True)
class Ident:
    name: str
    email: str
    time: int | None
    offset: int | None


def ident_from_git(
    raw: RawCommit, key: bytes, name: str, email: str, seconds: str, raw_date: str
) -> Ident:
    """An identity as ``git log --date=raw`` prints it; the raw header where git prints no date.

    git formats no date before 1970 (it prints nothing); only then is the commit object's own
    header the answer. Everywhere else git's printed values and the raw header must agree.
    """
    raw_name, raw_email, raw_time, raw_tz = raw_ident(raw.header(key))
    # git log re-encodes names to UTF-8 from the commit's declared encoding
    assert name == raw_name.decode(raw.encoding), (name, raw_name)
    assert email == raw_email.decode(raw.encoding), (email, raw_email)
    if seconds == "":  # git prints no date before 1970, nor for an ident without one
        assert raw_time is None or raw_time < 0, f"git printed no date for {raw.header(key)!r}"
        return Ident(name, email, raw_time, raw_tz)
    printed_time, printed_tz = raw_date.split(" ")
    assert int(printed_time) == int(seconds)
    ident = Ident(name, email, int(seconds), parse_offset(printed_tz))
    assert (ident.time, ident.offset) == (raw_time, raw_tz), raw.header(key)
    return ident


def parse_numstat(output: bytes) -> list[tuple[bytes, bytes, bytes | None, bytes]]:
    """``git log -z --numstat --format=`` -> (added, deleted, old path or None, path) rows."""
    stats = []
    tokens = iter(output.split(b"\x00"))
    for token in tokens:
        token = token.lstrip(b"\n")  # git separates commits with a newline
        if not token:
            continue
        added, deleted, path = token.split(b"\t", 2)
        old = None
        if path == b"":  # rename: "added\tdeleted\t" NUL old NUL new
            old, path = next(tokens), next(tokens)
        stats.append((added, deleted, old, path))
    return stats


def git_file_changes(repo, sha: str) -> list[dict[str, Any]]:
    """The file rows of one commit, from ``git log -1 --numstat -M`` and ``--name-status -M``.

    ``git log`` shows no diff for merge commits, so they get no rows. Both listings come out
    of the same diff in the same order; rows are paired by position and checked to agree.
    """
    numstat = repo.git_bytes("log", "-1", "-z", "--numstat", "-M", "--format=", sha)
    status = repo.git_bytes("log", "-1", "-z", "--name-status", "-M", "--format=", sha)

    stats = parse_numstat(numstat)

    statuses = []  # (letter, old path or None, path)
    tokens = iter(status.split(b"\x00"))
    for token in tokens:
        token = token.lstrip(b"\n")
        if not token:
            continue
        letter = token[:1].decode()
        if letter in "RC":
            old, path = next(tokens), next(tokens)
            statuses.append((letter, old, path))
        else:
            statuses.append((letter, None, next(tokens)))

    assert len(stats) == len(statuses), (stats, statuses)
    rows = []
    for (added, deleted, old, path), (letter, s_old, s_path) in zip(stats, statuses):
        assert (old, path) == (s_old, s_path), "numstat and name-status disagree"
        binary = added == b"-"
        assert binary == (deleted == b"-")
        rows.append(
            {
                "path": stored_path(path),
                "old_path": stored_path(old) if old is not None else None,
                "change_type": letter,
                "lines_added": 0 if binary else int(added),
                "lines_deleted": 0 if binary else int(deleted),
                "is_binary": binary,
            }
        )
    return rows


def derived_columns(time: int | None, offset: int | None) -> dict[str, Any]:
    """author_day/week/month in UTC, local hour and weekday (0 = Monday) in the author's zone."""
    if time is None:  # no date at all: nothing to group by
        keys = ("author_day", "author_week", "author_month", "author_local_hour",
                "author_local_weekday")  # fmt: skip
        return dict.fromkeys(keys)
    utc = datetime.fromtimestamp(time, tz=UTC)
    iso = utc.date().isocalendar()
    columns = {
        "author_day": f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}",
        "author_week": date.fromisocalendar(iso.year, iso.week, 1).isoformat(),
        "author_month": f"{utc.year:04d}-{utc.month:02d}",
        "author_local_hour": None,
        "author_local_weekday": None,
    }
    if abs(offset) <= 14 * 60:  # beyond UTC-12..UTC+14 is no time zone: no local time
        local = utc + timedelta(minutes=offset)
        columns.update(author_local_hour=local.hour, author_local_weekday=local.isoweekday() - 1)
    return columns


def expected_commit(repo, sha: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``commits`` row and ``file_changes`` rows git's answers call for."""
    out = repo.git_bytes("log", "-1", "--encoding=UTF-8", "--date=raw", _META_FORMAT, sha)
    values = out.decode("utf-8").removesuffix("\n").split("\x00")
    assert len(values) == len(_META_FIELDS), values
    an, ae, at, ad, cn, ce, ct, cd, mailmap_name, mailmap_email, parents = values
    rev_parents = repo.git("rev-list", "--parents", "-n1", sha).split()
    assert rev_parents[0] == sha and rev_parents[1:] == parents.split(), (rev_parents, parents)

    raw = cat_file_commit(repo, sha)
    assert [v.decode() for k, v in raw.headers if k == b"parent"] == parents.split()
    author = ident_from_git(raw, b"author", an, ae, at, ad)
    committer = ident_from_git(raw, b"committer", cn, ce, ct, cd)
    is_merge = len(parents.split()) > 1
    files = git_file_changes(repo, sha)
    if is_merge:
        assert files == [], "git log shows no diff for merges"
    counted = [f for f in files if not f["is_binary"]]
    row = {
        "sha": sha,
        "parents": parents,
        "is_merge": is_merge,
        "author_name": author.name,
        "author_email": author.email,
        "author_time": author.time,
        "author_offset": author.offset,
        "committer_name": committer.name,
        "committer_email": committer.email,
        "committer_time": committer.time,
        "committer_offset": committer.offset,
        "mailmap_name": mailmap_name,
        "mailmap_email": mailmap_email,
        "email_domain": (mailmap_email.rsplit("@", 1)[1].strip().lower() or None)
        if "@" in mailmap_email
        else None,
        **derived_columns(author.time, author.offset),
        "files_changed": len(files),
        "lines_added": sum(f["lines_added"] for f in counted),
        "lines_deleted": sum(f["lines_deleted"] for f in counted),
        "message": raw.message.decode(raw.encoding),
    }
    return row, files


def git_totals(repo, ref: str) -> dict[str, int]:
    """Repository totals as git counts them."""
    numstat = repo.git_bytes("log", "-z", "--numstat", "-M", "--no-merges", "--format=", ref)
    counted = [(a, d) for a, d, _, _ in parse_numstat(numstat) if a != b"-"]
    added = sum(int(a) for a, _ in counted)
    deleted = sum(int(d) for _, d in counted)
    emails = repo.git_bytes("log", "--encoding=UTF-8", "--format=%aE", ref).decode().splitlines()
    return {
        "commits": int(repo.git("rev-list", "--count", ref)),
        "merges": int(repo.git("rev-list", "--merges", "--count", ref)),
        "authors": len(set(emails)),
        "lines_added": added,
        "lines_deleted": deleted,
    }


def git_head(repo, ref: str) -> str | None:
    """The commit ``ref`` names, or None in a repository without any commit."""
    try:
        return repo.git("rev-parse", "--verify", "--quiet", "--end-of-options", ref)
    except AssertionError:
        assert repo.git("rev-list", "--all", "--count") == "0", f"unknown ref {ref}"
        return None


def stored_history(store, repo_id: str) -> tuple[dict[str, dict], dict[str, list[dict]]]:
    """The stored commits (by sha) and file rows (by sha, in seq order) of one repository."""
    with store.engine.connect() as conn:
        commit_rows = conn.execute(sa.select(commits).where(commits.c.repo_id == repo_id)).all()
        file_rows = conn.execute(
            sa.select(file_changes)
            .where(file_changes.c.repo_id == repo_id)
            .order_by(file_changes.c.sha, file_changes.c.seq)
        ).all()
    stored_commits = {}
    for row in commit_rows:
        values = dict(row._mapping)
        del values["repo_id"]
        stored_commits[values["sha"]] = values
    stored_files: dict[str, list[dict]] = {}
    for row in file_rows:
        values = dict(row._mapping)
        stored_files.setdefault(values["sha"], []).append(values)
    for sha, rows in stored_files.items():
        assert [r["seq"] for r in rows] == list(range(len(rows))), f"seq gaps in {sha}"
        for r in rows:
            # flags are repometer's notes on odd content, not git's answers (test_odd_content)
            del r["repo_id"], r["sha"], r["seq"], r["flags"]
    return stored_commits, stored_files


def assert_matches_git(store, repo_id: str, repo, ref: str = "HEAD") -> int:
    """Stored history of ``repo_id`` == git's answers about ``ref``; returns the commit count."""
    head = git_head(repo, ref)
    with store.engine.connect() as conn:
        record = conn.execute(sa.select(repositories).where(repositories.c.id == repo_id)).one()
    assert record.status == "ok", record.error
    assert record.head == head

    stored_commits, stored_files = stored_history(store, repo_id)
    shas = repo.git("rev-list", ref).split() if head else []
    assert len(shas) == len(set(shas))
    assert set(stored_commits) == set(shas)
    assert set(stored_files) <= set(shas), "file rows without a commit"

    for sha in shas:
        row, files = expected_commit(repo, sha)
        # columns that are not git's answers (e.g. the is_bot heuristic) are not compared
        assert {k: stored_commits[sha][k] for k in row} == row, f"commit {sha}"
        assert stored_files.get(sha, []) == files, f"file rows of commit {sha}"

    totals = store.totals(repo_id)
    expected = (
        git_totals(repo, ref)
        if head
        else dict.fromkeys(("commits", "merges", "authors", "lines_added", "lines_deleted"), 0)
    )
    assert {k: getattr(totals, k) for k in expected} == expected
    return len(shas)


# -- helpers to build repositories and run repometer ----------------------------------------


def ingest(store, settings, repo, *, ref: str = "HEAD"):
    record, new = add_repository(store, settings, str(repo.path), ref=ref)
    assert new
    return record.id, ingest_repository(store, record, settings)


def commit_index(repo, message: str, **env: str) -> str:
    """Commit what is staged (no ``add -A``: it would drop gitlinks without a checkout)."""
    repo.git("commit", "-q", "--allow-empty", "-m", message, env=env)
    return repo.head()


def lines(n: int, prefix: str = "line") -> str:
    return "".join(f"{prefix} {i}\n" for i in range(n))


def stored_files_of(store, repo_id: str, sha: str) -> list[dict]:
    return stored_history(store, repo_id)[1].get(sha, [])


def stored_commit(store, repo_id: str, sha: str) -> dict:
    return stored_history(store, repo_id)[0][sha]


def write_commit(repo, *, tree: str, parents: list[str], author: str, committer: str,
                 message: bytes = b"message\n", extra: bytes = b"") -> str:  # fmt: skip
    """Write a commit object verbatim (git refuses such dates from the environment)."""
    body = f"tree {tree}\n".encode()
    body += b"".join(f"parent {p}\n".encode() for p in parents)
    body += f"author {author}\ncommitter {committer}\n".encode() + extra + b"\n" + message
    return repo.git("hash-object", "-t", "commit", "-w", "--stdin", "--literally", input=body)


# -- shapes ---------------------------------------------------------------------------------


def test_linear_history(make_repo, store, settings):
    repo = make_repo()
    repo.write("a.txt", lines(10))
    repo.commit("first", date="2024-01-01T09:00:00+0000")
    repo.write("a.txt", lines(12).replace("line 3\n", "changed 3\n"))
    repo.write("src/b.py", "print('b')\n")
    repo.commit("second\n\nwith a body\n", date="2024-01-02T23:30:00-0700")
    repo.write("src/b.py", "print('B')\nprint('more')\n")
    repo.commit("third", date="2024-03-31T01:15:00+0200")
    for i in range(4):  # more commits than one batch (batch_size=3)
        repo.write(f"n{i}.txt", lines(i + 1))
        repo.commit(f"commit {i}", date=f"2024-04-0{i + 1}T12:00:00+0000")
    repo_id, result = ingest(store, settings, repo)
    assert result.added == 7 and not result.up_to_date
    assert assert_matches_git(store, repo_id, repo) == 7


def test_branches_and_merges(make_repo, store, settings):
    repo = make_repo()
    repo.write("shared.txt", lines(20))
    repo.commit("base")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("feature.txt", lines(5))
    repo.commit("feature 1")
    repo.write("shared.txt", lines(20).replace("line 15", "feature 15"))
    repo.commit("feature 2")
    repo.git("checkout", "-q", "main")
    repo.write("shared.txt", lines(20).replace("line 2\n", "main 2\n"))
    repo.commit("main 1")
    repo.git("merge", "-q", "--no-ff", "--no-edit", "feature")
    # a merge that resolves a conflict by hand
    repo.git("checkout", "-q", "-b", "conflict", "HEAD~1")
    repo.write("c.txt", "theirs\n")
    repo.commit("theirs")
    repo.git("checkout", "-q", "main")
    repo.write("c.txt", "ours\n")
    repo.commit("ours")
    with pytest.raises(AssertionError, match="merge"):
        repo.git("merge", "-q", "--no-edit", "conflict")
    assert repo.git("ls-files", "--unmerged")  # the conflict git stopped at
    repo.write("c.txt", "resolved\nby hand\n")
    resolved = repo.commit("merge conflict")
    assert len(repo.git("rev-list", "--parents", "-n1", resolved).split()) == 3
    # and a fast-forward
    repo.git("checkout", "-q", "-b", "ff")
    repo.write("ff.txt", "ff\n")
    repo.commit("ff")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--ff-only", "ff")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 9
    assert int(repo.git("rev-list", "--merges", "--count", "HEAD")) == 2
    assert store.totals(repo_id).merges == 2


def test_octopus_merge(make_repo, store, settings):
    repo = make_repo()
    repo.write("base.txt", "base\n")
    repo.commit("base")
    for name in ("a", "b", "c"):
        repo.git("checkout", "-q", "-b", name, "main")
        repo.write(f"{name}.txt", lines(3, name))
        repo.commit(f"branch {name}")
    repo.git("checkout", "-q", "main")
    repo.write("main.txt", "main moved on\n")
    repo.commit("main")
    repo.git("merge", "-q", "--no-edit", "a", "b", "c")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 6
    octopus = stored_commit(store, repo_id, repo.head())
    assert octopus["is_merge"] and len(octopus["parents"].split()) == 4
    assert octopus["files_changed"] == 0 and stored_files_of(store, repo_id, repo.head()) == []


def test_renames_copies_and_deletions(make_repo, store, settings):
    repo = make_repo()
    repo.write("docs/guide.txt", lines(60, "guide"))
    repo.write("old.txt", lines(40, "old"))
    repo.write("gone.txt", lines(7, "gone"))
    repo.commit("start")
    (repo.path / "manual").mkdir()
    repo.git("mv", "docs/guide.txt", "manual/guide.txt")  # pure rename
    rename = repo.commit("pure rename")
    repo.git("mv", "old.txt", "new.txt")
    repo.write("new.txt", lines(40, "old").replace("old 20\n", "edited 20\n") + "appended\n")
    rename_edit = repo.commit("rename with an edit")
    repo.write("copy.txt", lines(40, "old"))  # a duplicate of an existing file
    copy = repo.commit("copy")
    (repo.path / "gone.txt").unlink()
    deletion = repo.commit("delete")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 5

    def shape(sha):
        rows = stored_files_of(store, repo_id, sha)
        return [(r["change_type"], r["old_path"], r["path"]) for r in rows]

    assert shape(rename) == [("R", "docs/guide.txt", "manual/guide.txt")]
    assert shape(rename_edit) == [("R", "old.txt", "new.txt")]
    assert stored_files_of(store, repo_id, rename_edit)[0]["lines_added"] == 2
    assert shape(copy) == [("A", None, "copy.txt")]
    assert shape(deletion) == [("D", None, "gone.txt")]
    assert stored_files_of(store, repo_id, deletion)[0]["lines_deleted"] == 7


def test_binary_files(make_repo, store, settings):
    repo = make_repo()
    repo.write("image.bin", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    repo.write("text.txt", "text\n")
    repo.commit("add binary")
    repo.write("image.bin", b"\x00\x01\x02 changed \x00" * 10)
    repo.write("text.txt", "text\nmore\n")
    modified = repo.commit("modify binary")
    repo.git("mv", "image.bin", "picture.bin")
    repo.commit("rename binary")
    (repo.path / "picture.bin").unlink()
    repo.commit("delete binary")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 4
    rows = {r["path"]: r for r in stored_files_of(store, repo_id, modified)}
    assert rows["image.bin"]["is_binary"] and rows["image.bin"]["lines_added"] == 0
    assert rows["image.bin"]["lines_deleted"] == 0
    assert not rows["text.txt"]["is_binary"] and rows["text.txt"]["lines_added"] == 1
    assert stored_commit(store, repo_id, modified)["lines_added"] == 1


def test_empty_commits(make_repo, store, settings):
    repo = make_repo()
    root = repo.commit("empty root")  # no files at all
    repo.write("a.txt", "a\n")
    repo.commit("a")
    empty = repo.commit("empty")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 3
    for sha in (root, empty):
        assert stored_files_of(store, repo_id, sha) == []
        assert stored_commit(store, repo_id, sha)["files_changed"] == 0


def test_line_endings(make_repo, store, settings):
    repo = make_repo()
    repo.write("no-eol.txt", "one\ntwo")
    repo.write("crlf.txt", "a\r\nb\r\nc\r\n")
    repo.write("lf.txt", "x\ny\nz\n")
    repo.write("cr-only.txt", "p\rq\rr")
    repo.commit("line endings")
    repo.write("no-eol.txt", "one\ntwo\nthree")  # the last line changes too
    repo.write("crlf.txt", "a\r\nB\r\nc\r\nd\r\n")
    repo.write("lf.txt", "x\r\ny\r\nz\r\n")  # every line changes
    repo.write("cr-only.txt", "p\rq\rr\rs")
    changed = repo.commit("edit")
    repo.write("no-eol.txt", "one\ntwo\nthree\n")
    repo.commit("add the missing newline")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 3
    counts = {r["path"]: (r["lines_added"], r["lines_deleted"])
              for r in stored_files_of(store, repo_id, changed)}  # fmt: skip
    assert counts["no-eol.txt"] == (2, 1)
    assert counts["lf.txt"] == (3, 3)


def test_non_utf8_author_message_and_path(make_repo, store, settings):
    repo = make_repo()
    repo.write("plain.txt", "plain\n")
    repo.commit("plain")
    repo.write(b"caf\xe9.txt", b"latin-1 path\n")
    repo.git("add", "-A")
    latin1 = {
        "GIT_AUTHOR_NAME": os.fsdecode("Jos\xe9 Mu\xf1oz".encode("latin-1")),
        "GIT_COMMITTER_NAME": os.fsdecode("Fran\xe7ois".encode("latin-1")),
    }
    message = "R\xe9sum\xe9: na\xefve fa\xe7ade\n\n\xbfQu\xe9 tal?\n".encode("latin-1")
    repo.git("-c", "i18n.commitEncoding=ISO-8859-1", "commit", "-q", "-F", "-",
             input=message, env=latin1)  # fmt: skip
    sha = repo.head()
    raw = repo.git_bytes("cat-file", "commit", sha)
    assert b"\nencoding ISO-8859-1\n" in raw and b"Jos\xe9" in raw  # really latin-1 bytes
    repo.write("plain.txt", "plain\nutf-8 after\n")
    repo.commit("after")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 3
    row = stored_commit(store, repo_id, sha)
    assert row["author_name"] == "José Muñoz" and row["mailmap_name"] == "José Muñoz"
    assert row["committer_name"] == "François"
    assert row["message"] == "Résumé: naïve façade\n\n¿Qué tal?\n"
    # git log %B re-encodes to UTF-8; it adds only the format's line terminator
    assert repo.git_bytes("log", "-1", "--format=%B", sha).decode() == row["message"] + "\n"
    assert [r["path"] for r in stored_files_of(store, repo_id, sha)] == ["caf\\xe9.txt"]


def test_unicode_and_unusual_paths(make_repo, store, settings):
    repo = make_repo()
    names = ["données/ファイル.txt", "emoji 😀.md", "with space.txt", "tab\there.txt",
             "new\nline.txt", "quote\"d.txt", "back\\slash.txt", "-dash.txt", ":colon.txt",
             "ÄÖÜ/ß.txt"]  # fmt: skip
    for i, name in enumerate(names):
        repo.write(name, lines(i + 1))
    repo.commit("unicode and unusual paths")
    repo.git("mv", "données/ファイル.txt", "données/名前.txt")
    repo.git("mv", "new\nline.txt", "\nleading newline.txt")
    repo.write(":colon.txt", "changed\n")
    renamed = repo.commit("rename them")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 2
    rows = {r["path"]: r for r in stored_files_of(store, repo_id, renamed)}
    assert rows["données/名前.txt"]["old_path"] == "données/ファイル.txt"
    assert rows["\nleading newline.txt"]["old_path"] == "new\nline.txt"


def test_symlinks_and_type_changes(make_repo, store, settings):
    repo = make_repo()
    repo.write("target.txt", lines(3))
    repo.write("became-link", "a regular file\n")
    repo.write("script.sh", "#!/bin/sh\necho hi\n")
    repo.write("empty.txt", "")
    os.symlink("target.txt", repo.path / "link")
    repo.commit("symlink")
    (repo.path / "link").unlink()
    os.symlink("elsewhere/target.txt", repo.path / "link")
    (repo.path / "became-link").unlink()
    os.symlink("target.txt", repo.path / "became-link")
    (repo.path / "script.sh").chmod(0o755)
    changed = repo.commit("retarget, type change, mode change")
    (repo.path / "link").unlink()
    repo.commit("remove symlink")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 3
    types = {r["path"]: r["change_type"] for r in stored_files_of(store, repo_id, changed)}
    assert types == {"became-link": "T", "link": "M", "script.sh": "M"}


def test_gitlinks(make_repo, store, settings):
    repo = make_repo()
    repo.write("README", "has a submodule\n")
    repo.git("add", "README")
    commit_index(repo, "readme")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},sub")
    repo.git("update-index", "--add", "--cacheinfo", f"160000,{'2' * 40},deps/other")
    added = commit_index(repo, "add gitlinks")
    repo.git("update-index", "--cacheinfo", f"160000,{'3' * 40},sub")
    commit_index(repo, "bump gitlink")
    repo.git("rm", "-q", "--cached", "deps/other")
    commit_index(repo, "remove gitlink")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 4
    paths = sorted(r["path"] for r in stored_files_of(store, repo_id, added))
    assert paths == ["deps/other", "sub"]


def test_several_root_commits(make_repo, store, settings):
    repo = make_repo()
    repo.write("main.txt", lines(4))
    main_root = repo.commit("main root")
    repo.git("checkout", "-q", "--orphan", "other")
    repo.git("rm", "-q", "-rf", ".")
    repo.write("other.txt", lines(6))
    other_root = repo.commit("other root")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-edit", "--allow-unrelated-histories", "other")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 3
    for root, path, n in ((main_root, "main.txt", 4), (other_root, "other.txt", 6)):
        assert stored_commit(store, repo_id, root)["parents"] == ""
        rows = stored_files_of(store, repo_id, root)
        assert [(r["change_type"], r["path"], r["lines_added"]) for r in rows] == [("A", path, n)]


def test_extreme_dates_and_offsets(make_repo, store, settings):
    repo = make_repo()
    trees = []
    for i in range(7):
        repo.write("f.txt", lines(i + 1))
        repo.commit(f"scratch {i}")
        trees.append(repo.git("rev-parse", "HEAD^{tree}"))
    idents = [
        ("X <x@y> -86400 +0530", "Y <y@z> -1 -0000"),  # before 1970
        ("Old Timer <old@past.example> -2208988800 -1200", "C <c@x> 0 +0000"),  # 1900
        ("Future <f@future.example> 4102444800 -1400", "C <c@x> 4102444800 +1400"),  # 2100
        ("Far <far@zone.example> 1700000000 +9959", "C <c@x> 1700000000 -9959"),  # beyond 14h
        ("Near <n@zone.example> 1700000000 +1400", "C <c@x> 1700000000 -1200"),
        ("Odd <odd@zone.example> 1700000000 +0045", "C <c@x> 1700000000 -0930"),
        ("Epoch <e@x> 0 +0000", "C <c@x> 253402300799 +0000"),  # to 9999-12-31
    ]
    parents: list[str] = []
    shas = []
    for tree, (author, committer) in zip(trees, idents):
        sha = write_commit(repo, tree=tree, parents=parents, author=author, committer=committer,
                           message=f"dated {author}\n".encode())  # fmt: skip
        parents = [sha]
        shas.append(sha)
    repo.git("update-ref", "refs/heads/main", shas[-1])
    assert repo.git("log", "-1", "--format=%at", shas[0]) == ""  # git prints no such date
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 7

    first = stored_commit(store, repo_id, shas[0])
    assert (first["author_time"], first["author_offset"]) == (-86400, 330)
    assert (first["committer_time"], first["committer_offset"]) == (-1, 0)
    assert first["author_day"] == "1969-12-31" and first["author_week"] == "1969-12-29"
    assert first["author_month"] == "1969-12"
    assert (first["author_local_hour"], first["author_local_weekday"]) == (5, 2)  # Wed 05:30
    old = stored_commit(store, repo_id, shas[1])
    assert (old["author_day"], old["author_offset"], old["author_local_hour"]) == (
        "1900-01-01", -720, 12)  # fmt: skip
    future = stored_commit(store, repo_id, shas[2])
    assert (future["author_day"], future["author_offset"], future["committer_offset"]) == (
        "2100-01-01", -840, 840)  # fmt: skip
    assert future["author_local_weekday"] == 3  # Thursday 31 Dec 2099, 10:00 local
    far = stored_commit(store, repo_id, shas[3])
    assert (far["author_offset"], far["committer_offset"]) == (99 * 60 + 59, -(99 * 60 + 59))
    # kept as written, but placed at no local hour, and flagged
    assert (far["author_local_hour"], far["author_local_weekday"]) == (None, None)
    flags = [stored_commit(store, repo_id, sha)["flags"] for sha in shas]
    assert flags == ["bad_date", "bad_date", "bad_date", "bad_offset", None, None, "bad_date"]


@pytest.fixture
def decoy_cwd(tmp_path, monkeypatch):
    """Run from a directory whose .mailmap and .gitattributes must apply to no repository."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / ".gitattributes").write_text("* binary\n")
    (elsewhere / ".mailmap").write_text(
        "Decoy <decoy@example.net> <ada@example.org>\n"
        "Decoy <decoy@example.net> <ada@old.example>\n"
        "Decoy <decoy@example.net> <bob@Other.Example>\n"
    )
    monkeypatch.chdir(elsewhere)


@pytest.mark.parametrize(
    "layout",
    ["bare", "worktree"],
)
def test_mailmap(make_repo, store, settings, decoy_cwd, layout):
    work = make_repo("work")
    work.write(".mailmap", "Ada Lovelace <ada@example.org> <ada@old.example>\n"
                           "Ada Lovelace <ada@example.org> Ada L <ADA@Work.Example>\n")  # fmt: skip
    work.commit("mailmap", GIT_AUTHOR_NAME="Ada Author", GIT_AUTHOR_EMAIL="ada@example.org")
    work.write("a.txt", "a\n")
    old = work.commit("old", GIT_AUTHOR_NAME="ada", GIT_AUTHOR_EMAIL="ada@old.example")
    work.write("b.txt", "b\n")
    at_work = work.commit("work", GIT_AUTHOR_NAME="Ada L", GIT_AUTHOR_EMAIL="ADA@Work.Example")
    work.write("c.txt", "c\n")
    work.commit("bob", GIT_AUTHOR_NAME="Bob", GIT_AUTHOR_EMAIL="bob@Other.Example")
    repo = work
    if layout == "bare":  # git reads HEAD:.mailmap in a bare repository
        repo = make_repo("bare.git", bare=True)
        work.git("push", "-q", str(repo.path), "main")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 4
    for sha, raw_email in ((old, "ada@old.example"), (at_work, "ADA@Work.Example")):
        row = stored_commit(store, repo_id, sha)
        assert row["author_email"] == raw_email
        assert (row["mailmap_name"], row["mailmap_email"]) == ("Ada Lovelace", "ada@example.org")
    assert store.totals(repo_id).authors == 2
    domains = {r["email_domain"] for r in stored_history(store, repo_id)[0].values()}
    assert domains == {"example.org", "other.example"}


def test_empty_repository(make_repo, store, settings):
    repo = make_repo()
    repo_id, result = ingest(store, settings, repo)
    assert (result.added, result.removed, result.head) == (0, 0, None)
    assert assert_matches_git(store, repo_id, repo) == 0
    record = store.get_repository(repo_id)
    assert (record.status, record.head) == ("ok", None)
    assert store.totals(repo_id).commits == 0


def test_bare_repository_in_place(make_repo, store, settings, decoy_cwd):
    work = make_repo("work")
    work.write(".mailmap", "Ada Lovelace <ada@example.org> <ada@old.example>\n")
    work.write("a.txt", lines(30))
    work.commit("one", GIT_AUTHOR_EMAIL="ada@old.example")
    work.git("mv", "a.txt", "b.txt")
    work.commit("two")
    bare = make_repo("bare.git", bare=True)
    work.git("push", "-q", str(bare.path), "main")
    repo_id, _ = ingest(store, settings, bare)
    assert store.get_repository(repo_id).git_dir == str(bare.path.resolve())
    assert assert_matches_git(store, repo_id, bare) == 2
    assert store.totals(repo_id).authors == 1  # via HEAD:.mailmap, as git reads it when bare


def test_non_head_ref(make_repo, store, settings):
    repo = make_repo()
    repo.write("base.txt", lines(5))
    repo.commit("base")
    repo.git("checkout", "-q", "-b", "other")
    repo.write("other.txt", lines(8))
    repo.commit("other 1")
    repo.write("base.txt", lines(6))
    repo.commit("other 2")
    repo.git("checkout", "-q", "main")
    repo.write("main.txt", "only on main\n")
    repo.commit("main only")
    repo_id, _ = ingest(store, settings, repo, ref="refs/heads/other")
    assert assert_matches_git(store, repo_id, repo, ref="refs/heads/other") == 3
    assert store.get_repository(repo_id).head == repo.git("rev-parse", "other")
    assert repo.head() not in stored_history(store, repo_id)[0]


def test_watermark_and_reingest(make_repo, store, settings):
    repo = make_repo()
    for i in range(4):
        repo.write("f.txt", lines(i + 2))
        repo.commit(f"c{i}")
    repo_id, result = ingest(store, settings, repo)
    assert (result.added, result.removed, result.up_to_date) == (4, 0, False)
    assert result.head == repo.head()
    record = store.get_repository(repo_id)
    assert (record.head, record.status, record.generation) == (repo.head(), "ok", 1)
    assert assert_matches_git(store, repo_id, repo) == 4
    before = stored_history(store, repo_id), store.get_repository(repo_id)

    again = ingest_repository(store, store.get_repository(repo_id), settings)
    assert again.up_to_date and (again.added, again.removed) == (0, 0)
    assert again.head == repo.head()
    assert (stored_history(store, repo_id), store.get_repository(repo_id)) == before

    # new commits are added incrementally; rewritten history is replaced
    repo.write("g.txt", lines(3))
    repo.commit("c4")
    grown = ingest_repository(store, store.get_repository(repo_id), settings)
    assert (grown.added, grown.removed, grown.up_to_date) == (1, 0, False)
    assert store.get_repository(repo_id).generation == 2
    assert assert_matches_git(store, repo_id, repo) == 5
    repo.git("reset", "-q", "--hard", "HEAD~3")
    repo.write("h.txt", lines(9))
    repo.commit("rewritten")
    rewritten = ingest_repository(store, store.get_repository(repo_id), settings)
    assert (rewritten.added, rewritten.removed) == (1, 3)
    assert store.get_repository(repo_id).generation == 3
    assert assert_matches_git(store, repo_id, repo) == 3


def test_gitattributes_of_the_repository(make_repo, store, settings, decoy_cwd):
    repo = make_repo()
    repo.write(".gitattributes", "*.dat binary\n")
    repo.write("table.dat", lines(5))  # text, but declared binary: numstat says -/-
    repo.write("notes.txt", lines(3))
    repo.commit("attributes")
    repo.write("table.dat", lines(6))
    repo.write("notes.txt", lines(4))
    changed = repo.commit("edit")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 2
    binary = {r["path"]: r["is_binary"] for r in stored_files_of(store, repo_id, changed)}
    assert binary == {"table.dat": True, "notes.txt": False}


def test_repository_config_does_not_change_the_answers(make_repo, store, settings):
    repo = make_repo()
    repo.git("config", "i18n.logOutputEncoding", "ISO-8859-1")  # git log would print latin-1
    repo.git("config", "core.abbrev", "7")
    repo.git("config", "log.showSignature", "true")
    repo.git("config", "diff.noprefix", "true")
    repo.write("a.txt", lines(30))
    jose = {"GIT_AUTHOR_NAME": "José Müller", "GIT_AUTHOR_EMAIL": "josé@exämple.org"}
    sha = repo.commit("café", **jose)
    repo.git("mv", "a.txt", "b.txt")
    renamed = repo.commit("renamed ☃")
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == 2
    row = stored_commit(store, repo_id, sha)
    assert (row["mailmap_name"], row["mailmap_email"]) == ("José Müller", "josé@exämple.org")
    assert row["email_domain"] == "exämple.org" and row["message"] == "café\n"
    rows = stored_files_of(store, repo_id, renamed)
    assert [(r["change_type"], r["old_path"], r["path"]) for r in rows] == [("R", "a.txt", "b.txt")]


def test_unusual_commit_objects(make_repo, store, settings):
    repo = make_repo()
    repo.write("f.txt", lines(3))
    repo.commit("scratch")
    tree = repo.git("rev-parse", "HEAD^{tree}")
    signature = (
        b"gpgsig -----BEGIN PGP SIGNATURE-----\n"
        b" \n"
        b" iQEzBAABCAAdFiEE\n"
        b" -----END PGP SIGNATURE-----\n"
    )
    shapes = [
        dict(author="<nobody@example.org> 1700000000 +0000", message=b"no name\n"),
        dict(author="No Email <> 1700000100 +0100", message=b"empty email\n"),
        dict(
            author="Spaced   Name   <s@example.org>   1700000200   -0300", message=b"extra spaces\n"
        ),  # fmt: skip
        dict(
            author="Two <a@example.org> <b@example.org> 1700000300 +0000",
            message=b"two addresses\n",
        ),  # fmt: skip
        dict(
            author="Signed <s@example.org> 1700000400 +0000",
            extra=signature,
            message=b"signed\n\nwith a body\n\n\nand blank lines\n",
        ),  # fmt: skip
        dict(author="Terse <t@example.org> 1700000500 +0000", message=b""),  # no message
        dict(author="Crlf <c@example.org> 1700000600 +0000", message=b"windows\r\nmessage\r\n"),
        dict(author="  Leading <l@example.org> 1700000700 +0000", message=b"leading blanks\n"),
        dict(author="Spaced < s@example.org > 1700000800 +0000", message=b"spaced email\n"),
        dict(author="Short Zone <z@example.org> 1700000900 +05", message=b"git: 5 minutes\n"),
        dict(author="Undated <u@example.org>", message=b"no date at all\n"),
    ]
    parents: list[str] = []
    shas = []
    for shape in shapes:
        sha = write_commit(repo, tree=tree, parents=parents,
                           committer="C <c@example.org> 1700001000 +0000", **shape)  # fmt: skip
        parents = [sha]
        shas.append(sha)
    repo.git("update-ref", "refs/heads/main", shas[-1])
    repo_id, _ = ingest(store, settings, repo)
    assert assert_matches_git(store, repo_id, repo) == len(shapes)
    assert stored_commit(store, repo_id, shas[0])["files_changed"] == 1  # the root's add
    assert stored_commit(store, repo_id, shas[4])["message"] == (
        "signed\n\nwith a body\n\n\nand blank lines\n"
    )
    assert stored_commit(store, repo_id, shas[5])["message"] == ""
    assert stored_commit(store, repo_id, shas[7])["author_name"] == "  Leading"
    assert stored_commit(store, repo_id, shas[8])["author_email"] == " s@example.org "
    assert stored_commit(store, repo_id, shas[9])["author_offset"] == 5
    undated = stored_commit(store, repo_id, shas[10])
    assert (undated["author_time"], undated["author_offset"], undated["author_day"]) == (
        None, None, None)  # fmt: skip
