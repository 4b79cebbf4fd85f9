"""File and content metrics against numbers worked out by hand on small generated repositories.

Every repository here is built with the git CLI from contents chosen so that git's numstat is
obvious: lines are unique, a "replace" swaps one line for a new one (+1 -1), an "append" adds
lines at the end (+n). The expected values are literals with their arithmetic in a comment;
nothing in this file asks repometer how to compute them.

The main history (``build_history``), dates at 12:00 UTC:

====  ==========  ========  ===============================================================
c1    2023-01-10  alice*    add src/core/engine.py (6), src/core/parse.py (4), src/cli.py (4),
                            README.md (3), logo.png (binary)
c2    2023-02-01  Carol     src/cli.py +2; add old.txt (4), docs/notes.md (5)
c3    2023-03-01  Bob       engine.py +5 -1 (-> 10); parse.py +3 -1 (-> 6)
c4    2023-04-01  Alice     engine.py +3 -1 (-> 12); parse.py +1 (-> 7)
c5    2023-05-01  Bob       rename src/cli.py -> src/main.py (unchanged); delete old.txt (-4)
c6    2023-06-01  Alice     (branch feature) README.md +1 (-> 4)
c7    2023-06-02  Bob       engine.py +1 (-> 13); parse.py +2 -1 (-> 8)
c8    2023-06-10  Bob       merge feature (no file rows)
c9    2023-07-01  Alice     src/main.py +1 -1 (6); add .mailmap (1)
====  ==========  ========  ===============================================================

``alice*`` is ``alice <alice@old.example>``, which .mailmap maps to
``Alice Liddell <alice@example.org>`` (the address Alice uses from c4 on). ``Bob``'s rename in
c5 is pure (R100), so git detects it and the file's rows after it are under src/main.py.
"""

from __future__ import annotations

import os

import pytest

from metrics.builtin import hotspots, language_distribution
from repometer.compute import get_or_compute
from repometer.context import _PARALLEL_THRESHOLD, StoreContext
from repometer.ingest import ingest_repository
from repometer.registry import add_repository, git_dir_of
from repometer.settings import Settings
from repometer.storage import open_store

ALICE_OLD = {"GIT_AUTHOR_NAME": "alice", "GIT_AUTHOR_EMAIL": "alice@old.example"}
ALICE = {"GIT_AUTHOR_NAME": "Alice Liddell", "GIT_AUTHOR_EMAIL": "alice@example.org"}
BOB = {"GIT_AUTHOR_NAME": "Bob Builder", "GIT_AUTHOR_EMAIL": "bob@example.org"}
CAROL = {"GIT_AUTHOR_NAME": "Carol Coder", "GIT_AUTHOR_EMAIL": "carol@example.org"}

#: Not text to git (a NUL in the first 8000 bytes), so numstat says "-" and content metrics
#: leave it out.
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"


def text(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def numbered(prefix: str, first: int, last: int) -> list[str]:
    return [f"{prefix} {i}" for i in range(first, last + 1)]


def day(date: str) -> str:
    return f"{date}T12:00:00+0000"


def build_history(make_repo):
    repo = make_repo()
    engine = numbered("engine", 1, 6)
    parse = numbered("parse", 1, 4)
    cli = numbered("cli", 1, 4)

    # c1: alice (old address) adds 6 + 4 + 4 + 3 lines and a binary file
    repo.write("src/core/engine.py", text(engine))
    repo.write("src/core/parse.py", text(parse))
    repo.write("src/cli.py", text(cli))
    repo.write("README.md", text(numbered("readme", 1, 3)))
    repo.write("logo.png", PNG)
    repo.commit("c1", date=day("2023-01-10"), **ALICE_OLD)

    # c2: Carol appends 2 lines to cli.py, adds old.txt (4) and docs/notes.md (5)
    cli += ["cli 5", "cli 6"]
    repo.write("src/cli.py", text(cli))
    repo.write("old.txt", text(numbered("old", 1, 4)))
    repo.write("docs/notes.md", text(numbered("note", 1, 5)))
    repo.commit("c2", date=day("2023-02-01"), **CAROL)

    # c3: Bob: engine.py replace 1 + append 4 = +5 -1; parse.py replace 1 + append 2 = +3 -1
    engine[0] = "engine 1 by bob"
    engine += numbered("engine", 7, 10)
    parse[0] = "parse 1 by bob"
    parse += numbered("parse", 5, 6)
    repo.write("src/core/engine.py", text(engine))
    repo.write("src/core/parse.py", text(parse))
    repo.commit("c3", date=day("2023-03-01"), **BOB)

    # c4: Alice: engine.py replace 1 + append 2 = +3 -1; parse.py append 1 = +1
    engine[1] = "engine 2 by alice"
    engine += numbered("engine", 11, 12)
    parse += ["parse 7"]
    repo.write("src/core/engine.py", text(engine))
    repo.write("src/core/parse.py", text(parse))
    repo.commit("c4", date=day("2023-04-01"), **ALICE)

    # c5: Bob renames cli.py unchanged (R100, 0/0) and deletes old.txt (-4)
    repo.git("mv", "src/cli.py", "src/main.py")
    repo.git("rm", "-q", "old.txt")
    repo.commit("c5", date=day("2023-05-01"), **BOB)

    # c6 on a branch: Alice appends a line to README.md
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("README.md", text(numbered("readme", 1, 4)))
    repo.commit("c6", date=day("2023-06-01"), **ALICE)
    repo.git("checkout", "-q", "main")

    # c7: Bob: engine.py append 1 = +1; parse.py replace 1 + append 1 = +2 -1
    engine += ["engine 13"]
    parse[1] = "parse 2 by bob"
    parse += ["parse 8"]
    repo.write("src/core/engine.py", text(engine))
    repo.write("src/core/parse.py", text(parse))
    repo.commit("c7", date=day("2023-06-02"), **BOB)

    # c8: Bob merges the branch (a merge commit has no file rows)
    repo.git("merge", "-q", "--no-ff", "-m", "c8 merge feature", "feature",
             env={**BOB, "GIT_AUTHOR_DATE": day("2023-06-10"),
                  "GIT_COMMITTER_DATE": day("2023-06-10")})  # fmt: skip

    # c9: Alice replaces a line of main.py (+1 -1) and adds .mailmap (1 line)
    cli[2] = "main 3"
    repo.write("src/main.py", text(cli))
    repo.write(".mailmap", "Alice Liddell <alice@example.org> <alice@old.example>\n")
    repo.commit("c9", date=day("2023-07-01"), **ALICE)
    return repo


def by_key(rows: list[dict], key: str = "path") -> dict:
    return {row[key]: {k: v for k, v in row.items() if k != key} for row in rows}


def assert_descending(rows: list[dict], key: str = "value") -> None:
    values = [row[key] for row in rows]
    assert values == sorted(values, reverse=True)


# -- history metrics --------------------------------------------------------------------------


def test_change_frequency(make_repo, ingest, compute) -> None:
    record = ingest(build_history(make_repo))
    rows = compute(record, "change_frequency")
    assert {row["path"]: row["value"] for row in rows} == {
        "src/core/engine.py": 4,  # c1 c3 c4 c7
        "src/core/parse.py": 4,  # c1 c3 c4 c7
        "src/cli.py": 2,  # c1 c2 (its history stays under the old path)
        "src/main.py": 2,  # c5 (the rename) c9
        "README.md": 2,  # c1 c6; the merge c8 has no file rows
        "old.txt": 2,  # c2 c5 (the deletion)
        "docs/notes.md": 1,  # c2
        "logo.png": 1,  # c1
        ".mailmap": 1,  # c9
    }
    assert_descending(rows)


def test_churn_by_file(make_repo, ingest, compute) -> None:
    record = ingest(build_history(make_repo))
    rows = compute(record, "churn")
    assert by_key(rows) == {
        # c1 +6, c3 +5-1, c4 +3-1, c7 +1 -> 15 added, 2 deleted
        "src/core/engine.py": {"added": 15, "deleted": 2, "value": 17, "commits": 4},
        # c1 +4, c3 +3-1, c4 +1, c7 +2-1 -> 10 added, 2 deleted
        "src/core/parse.py": {"added": 10, "deleted": 2, "value": 12, "commits": 4},
        # c2 +4, c5 -4
        "old.txt": {"added": 4, "deleted": 4, "value": 8, "commits": 2},
        # c1 +4, c2 +2
        "src/cli.py": {"added": 6, "deleted": 0, "value": 6, "commits": 2},
        # c2 +5
        "docs/notes.md": {"added": 5, "deleted": 0, "value": 5, "commits": 1},
        # c1 +3, c6 +1
        "README.md": {"added": 4, "deleted": 0, "value": 4, "commits": 2},
        # c5 rename 0/0, c9 +1-1
        "src/main.py": {"added": 1, "deleted": 1, "value": 2, "commits": 2},
        ".mailmap": {"added": 1, "deleted": 0, "value": 1, "commits": 1},
        # binary: git counts no lines
        "logo.png": {"added": 0, "deleted": 0, "value": 0, "commits": 1},
    }
    assert_descending(rows)


def test_churn_by_directory(make_repo, ingest, compute) -> None:
    record = ingest(build_history(make_repo))
    depth1 = compute(record, "churn", by="directory", depth=1)
    assert depth1 == [
        # engine 15/2 + parse 10/2 + cli 6/0 + main 1/1; commits c1 c2 c3 c4 c5 c7 c9
        {"path": "src", "added": 32, "deleted": 5, "value": 37, "commits": 7},
        # README 4/0 + old.txt 4/4 + .mailmap 1/0 + logo 0/0; commits c1 c2 c5 c6 c9
        {"path": ".", "added": 9, "deleted": 4, "value": 13, "commits": 5},
        # notes 5/0; c2
        {"path": "docs", "added": 5, "deleted": 0, "value": 5, "commits": 1},
    ]
    depth2 = compute(record, "churn", by="directory", depth=2)
    assert depth2 == [
        # engine 15/2 + parse 10/2; commits c1 c3 c4 c7
        {"path": "src/core", "added": 25, "deleted": 4, "value": 29, "commits": 4},
        {"path": ".", "added": 9, "deleted": 4, "value": 13, "commits": 5},
        # cli 6/0 + main 1/1 (files directly under src stay in src); commits c1 c2 c5 c9
        {"path": "src", "added": 7, "deleted": 1, "value": 8, "commits": 4},
        {"path": "docs", "added": 5, "deleted": 0, "value": 5, "commits": 1},
    ]
    # June 2023: c6 README +1, c7 engine +1 and parse +2 -1 (the merge c8 has no rows)
    assert compute(record, "churn", by="directory", since="2023-06-01", until="2023-06-30") == [
        {"path": "src", "added": 3, "deleted": 1, "value": 4, "commits": 1},
        {"path": ".", "added": 1, "deleted": 0, "value": 1, "commits": 1},
    ]
    # a range with no commits: no rows (not an error)
    assert compute(record, "churn", by="directory", since="2030-01-01") == []


def test_hotspots(make_repo, ingest, compute) -> None:
    record = ingest(build_history(make_repo))
    rows = compute(record, "hotspots")
    # Files at HEAD only: old.txt (deleted) and src/cli.py (renamed) are gone, logo.png is
    # binary. value = changes x lines at HEAD.
    assert rows == [
        {"path": "src/core/engine.py", "changes": 4, "lines": 13, "value": 52},  # 4 x 13
        {"path": "src/core/parse.py", "changes": 4, "lines": 8, "value": 32},  # 4 x 8
        {"path": "src/main.py", "changes": 2, "lines": 6, "value": 12},  # 2 x 6
        {"path": "README.md", "changes": 2, "lines": 4, "value": 8},  # 2 x 4
        {"path": "docs/notes.md", "changes": 1, "lines": 5, "value": 5},  # 1 x 5
        {"path": ".mailmap", "changes": 1, "lines": 1, "value": 1},  # 1 x 1
    ]


def test_ownership(make_repo, ingest, compute) -> None:
    record = ingest(build_history(make_repo))
    rows = compute(record, "ownership")
    alice = {"owner": "Alice Liddell", "owner_email": "alice@example.org"}
    assert rows == [
        {"path": ".mailmap", **alice, "value": 1.0, "authors": 1},
        # c1 (old address) + c6: one author once .mailmap is applied
        {"path": "README.md", **alice, "value": 1.0, "authors": 1},
        {"path": "docs/notes.md", "owner": "Carol Coder", "owner_email": "carol@example.org",
         "value": 1.0, "authors": 1},
        # binary: no lines changed by anyone, so the one author holds it all
        {"path": "logo.png", **alice, "value": 1.0, "authors": 1},
        # only the new path's rows: Bob's rename changed 0 lines, Alice's c9 changed 2 -> 2/2
        {"path": "src/main.py", **alice, "value": 1.0, "authors": 2},
        # Alice 6 (c1, old address) + 4 (c4) = 10, Bob 6 (c3) + 1 (c7) = 7 -> 10/17.
        # Without .mailmap Bob (7) would beat either of Alice's addresses (6, 4).
        {"path": "src/core/engine.py", **alice, "value": pytest.approx(10 / 17), "authors": 2},
        # Bob 4 (c3) + 3 (c7) = 7, Alice 4 (c1) + 1 (c4) = 5 -> 7/12
        {"path": "src/core/parse.py", "owner": "Bob Builder", "owner_email": "bob@example.org",
         "value": pytest.approx(7 / 12), "authors": 2},
    ]  # fmt: skip


def test_knowledge_loss(make_repo, ingest, compute) -> None:
    record = ingest(build_history(make_repo))
    # Newest commit 2023-07-01. Last seen: Alice 2023-07-01 (her old address, last used
    # 2023-01-10, is the same person through .mailmap), Bob 2023-06-10 (c8), Carol 2023-02-01.
    # 7 files at HEAD; owners (see test_ownership): Carol docs/notes.md, Bob parse.py, Alice
    # the other 5.
    assert compute(record, "knowledge_loss") == [
        {"value": 0.0, "files": 7, "files_lost": 0, "inactive_owners": []}
    ]  # 180 days: cutoff 2023-01-02, everyone active since
    # Carol's last commit is 28 + 31 + 30 + 31 + 30 = 150 days before 2023-07-01.
    # 149 days: cutoff 2023-02-02 > 2023-02-01 -> Carol inactive: 1 of 7 files
    assert compute(record, "knowledge_loss", inactive_days=149) == [
        {"value": pytest.approx(1 / 7), "files": 7, "files_lost": 1,
         "inactive_owners": ["Carol Coder"]}
    ]  # fmt: skip
    # 150 days: cutoff 2023-02-01, a commit on the cutoff day still counts as active
    assert compute(record, "knowledge_loss", inactive_days=150)[0]["files_lost"] == 0
    # 20 days: cutoff 2023-06-11 > Bob's 2023-06-10 -> Bob's parse.py lost too: 2 of 7
    assert compute(record, "knowledge_loss", inactive_days=20) == [
        {"value": pytest.approx(2 / 7), "files": 7, "files_lost": 2,
         "inactive_owners": ["Bob Builder", "Carol Coder"]}
    ]  # fmt: skip


def test_authors_per_file_history(make_repo, ingest, compute) -> None:
    record = ingest(build_history(make_repo))
    rows = compute(record, "authors_per_file")
    assert by_key(rows) == {
        "src/core/engine.py": {"value": 2, "minor_authors": 0, "commits": 4},  # A c1 c4, B c3 c7
        "src/core/parse.py": {"value": 2, "minor_authors": 0, "commits": 4},  # A c1 c4, B c3 c7
        "src/cli.py": {"value": 2, "minor_authors": 0, "commits": 2},  # A c1, Carol c2
        "src/main.py": {"value": 2, "minor_authors": 0, "commits": 2},  # Bob c5, A c9
        "old.txt": {"value": 2, "minor_authors": 0, "commits": 2},  # Carol c2, Bob c5
        "README.md": {"value": 1, "minor_authors": 0, "commits": 2},  # A c1 + c6 (mailmap)
        "docs/notes.md": {"value": 1, "minor_authors": 0, "commits": 1},
        "logo.png": {"value": 1, "minor_authors": 0, "commits": 1},
        ".mailmap": {"value": 1, "minor_authors": 0, "commits": 1},
    }
    assert_descending(rows)


def test_authors_per_file_minor_authors(make_repo, ingest, compute) -> None:
    repo = make_repo()
    for i in range(1, 20):  # commits 1-19: Alice appends to both files
        repo.write("hot.py", text(numbered("hot", 1, i)))
        repo.write("warm.py", text(numbered("warm", 1, i)))
        repo.commit(f"alice {i}", date=day(f"2024-03-{i:02d}"), **ALICE)
    repo.write("hot.py", text(numbered("hot", 1, 20)))  # commit 20: Alice, hot.py only
    repo.commit("alice 20", date=day("2024-03-20"), **ALICE)
    repo.write("hot.py", text(numbered("hot", 1, 21)))  # commit 21: Bob, both files
    repo.write("warm.py", text(numbered("warm", 1, 20)))
    repo.commit("bob", date=day("2024-03-21"), **BOB)
    record = ingest(repo)

    assert compute(record, "authors_per_file") == [
        # Bob: 1 of 21 commits = 4.76 % < 5 % -> minor
        {"path": "hot.py", "value": 2, "minor_authors": 1, "commits": 21},
        # Bob: 1 of 20 commits = exactly 5 %, not under 5 % -> not minor
        {"path": "warm.py", "value": 2, "minor_authors": 0, "commits": 20},
    ]
    # under 10 %: Bob is minor in both (4.76 %, 5 %); Alice (95.2 %, 95 %) in neither
    assert by_key(compute(record, "authors_per_file", minor_share=0.1)) == {
        "hot.py": {"value": 2, "minor_authors": 1, "commits": 21},
        "warm.py": {"value": 2, "minor_authors": 1, "commits": 20},
    }


def test_temporal_coupling(make_repo, ingest, compute) -> None:
    repo = make_repo()
    content: dict[str, list[str]] = {}

    def touch(day_of_month: int, *paths: str) -> None:
        for path in paths:  # append one line to each file
            content.setdefault(path, []).append(f"{path} {day_of_month}")
            repo.write(path, text(content[path]))
        repo.commit(f"touch {paths}", date=day(f"2024-05-{day_of_month:02d}"))

    touch(1, "a.py", "b.py")  # k1
    touch(2, "a.py", "b.py")  # k2
    touch(3, "a.py", "b.py", "c.py")  # k3
    touch(4, "a.py")  # k4
    touch(5, "a.py", "c.py")  # k5
    touch(6, "a.py", "b.py", "c.py", "vendor/d1.txt", "vendor/d2.txt", "vendor/d3.txt")  # k6
    record = ingest(repo)

    # max_files=5 skips k6 (6 files). Revisions: a 5 (k1-k5), b 3 (k1-k3), c 2 (k3 k5).
    # Shared: a+b 3 (k1 k2 k3), a+c 2 (k3 k5), b+c 1 (k3).
    assert compute(record, "temporal_coupling", max_files=5) == [
        {"file": "b.py", "coupled_file": "a.py", "support": 3, "confidence": 1.0,
         "revisions": 3},  # 3/3
        {"file": "a.py", "coupled_file": "b.py", "support": 3, "confidence": pytest.approx(0.6),
         "revisions": 5},  # 3/5
        {"file": "c.py", "coupled_file": "a.py", "support": 2, "confidence": 1.0,
         "revisions": 2},  # 2/2
        {"file": "a.py", "coupled_file": "c.py", "support": 2, "confidence": pytest.approx(0.4),
         "revisions": 5},  # 2/5
    ]  # fmt: skip
    # min_support=1 adds b+c (k3): 1/3 from b, 1/2 from c
    pairs = {(row["file"], row["coupled_file"]): row for row in
             compute(record, "temporal_coupling", max_files=5, min_support=1)}  # fmt: skip
    assert set(pairs) == {("a.py", "b.py"), ("b.py", "a.py"), ("a.py", "c.py"), ("c.py", "a.py"),
                          ("b.py", "c.py"), ("c.py", "b.py")}  # fmt: skip
    assert (pairs["b.py", "c.py"]["support"], pairs["b.py", "c.py"]["confidence"]) == (
        1,
        pytest.approx(1 / 3),
    )
    assert (pairs["c.py", "b.py"]["support"], pairs["c.py", "b.py"]["confidence"]) == (1, 0.5)

    # max_files=6 keeps k6 (exactly 6 files). Revisions: a 6, b 4, c 3, each d 1.
    # Shared: a+b 4, a+c 3, b+c 2; pairs with a d file: 1 (below min_support=2).
    expected_k6 = [
        {"file": "b.py", "coupled_file": "a.py", "support": 4, "confidence": 1.0,
         "revisions": 4},  # 4/4
        {"file": "a.py", "coupled_file": "b.py", "support": 4,
         "confidence": pytest.approx(4 / 6), "revisions": 6},
        {"file": "c.py", "coupled_file": "a.py", "support": 3, "confidence": 1.0,
         "revisions": 3},  # 3/3
        {"file": "a.py", "coupled_file": "c.py", "support": 3, "confidence": 0.5,
         "revisions": 6},  # 3/6
        {"file": "c.py", "coupled_file": "b.py", "support": 2,
         "confidence": pytest.approx(2 / 3), "revisions": 3},
        {"file": "b.py", "coupled_file": "c.py", "support": 2, "confidence": 0.5,
         "revisions": 4},  # 2/4
    ]  # fmt: skip
    assert compute(record, "temporal_coupling", max_files=6) == expected_k6
    assert compute(record, "temporal_coupling") == expected_k6  # default max_files=30


# -- content at HEAD --------------------------------------------------------------------------

CALC_C = """\
int clamp(int x, int lo, int hi)
{
    if (x < lo)
        return lo;
    if (x > hi)
        return hi;
    return x;
}

int count_odd(const int *v, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++) {
        if (v[i] % 2 != 0 && v[i] > 0)
            c++;
    }
    return c;
}

int kind(int x)
{
    switch (x) {
    case 0:
        return 10;
    case 1:
        return 20;
    default:
        return 30;
    }
}

void noop(void)
{
}
"""  # 34 lines: clamp 1-8, count_odd 10-18, kind 20-30, noop 32-34

SHAPES_PY = """\
def classify(n):
    if n < 0:
        return "negative"
    elif n == 0:
        return "zero"
    for d in (2, 3):
        if n % d == 0 and n > d:
            return "composite"
    return "other"


def drain(items):
    total = 0
    while items:
        total += items.pop()
    return total


class Box:
    def pick(self, a, b):
        return a or b
"""  # 21 lines: classify 1-9, drain 12-16, class Box 19, pick 20-21


def build_content(make_repo):
    repo = make_repo()
    repo.write("app/__init__.py", "")  # 0 lines
    repo.write("app/main.py", "import sys\n\nprint(sys.argv)\n")  # 3 lines
    repo.write("app/util.py", "A = 1\nB = 2")  # 2 lines, the last without a newline
    repo.write("app/shapes.py", SHAPES_PY)  # 21 lines
    repo.write("lib/calc.c", CALC_C)  # 34 lines
    repo.write("README.md", "# Demo\nA demo.\n")  # 2 lines
    repo.write("docs/guide.txt", "# Guide\n\nRun make.\n")  # 3 lines, renamed to .md below
    repo.write("Makefile", "all:\n\tcc -o calc lib/calc.c\n")  # 2 lines
    repo.write("assets/logo.png", PNG)  # binary
    repo.write("old.py", text(numbered("old", 1, 5)))  # deleted below
    repo.commit("content", date=day("2024-02-01"))
    repo.git("mv", "docs/guide.txt", "docs/guide.md")
    repo.git("rm", "-q", "old.py")
    repo.commit("rename and delete", date=day("2024-02-02"))
    return repo


def test_language_distribution(make_repo, ingest, compute) -> None:
    record = ingest(build_content(make_repo))
    # Python: __init__ 0 + main 3 + util 2 + shapes 21 = 26 lines in 4 files (old.py deleted)
    # C: calc.c 34; Markdown: README 2 + guide 3 (renamed from .txt) = 5; Makefile 2.
    # The binary logo.png counts nowhere (no "Other" row). Total 34 + 26 + 5 + 2 = 67.
    assert compute(record, "language_distribution") == [
        {"language": "C", "files": 1, "value": 34, "share": pytest.approx(34 / 67)},
        {"language": "Python", "files": 4, "value": 26, "share": pytest.approx(26 / 67)},
        {"language": "Markdown", "files": 2, "value": 5, "share": pytest.approx(5 / 67)},
        {"language": "Makefile", "files": 1, "value": 2, "share": pytest.approx(2 / 67)},
    ]


def test_complexity(make_repo, ingest, compute) -> None:
    record = ingest(build_content(make_repo))
    # Cyclomatic complexity = 1 + decision points (if/elif/for/while/case/&&/||/and/or):
    # clamp 1+2 if = 3; count_odd 1+for+if+&& = 4; kind 1+2 case = 3 (default not counted);
    # noop 1. classify 1+if+elif+for+if+and = 6; drain 1+while = 2; pick 1+or = 2.
    # Files without functions (app/__init__.py, main.py, util.py) and files lizard cannot
    # read (Markdown, Makefile, the binary) have no row.
    assert compute(record, "complexity") == [
        # 3 + 4 + 3 + 1 = 11 over 4 functions
        {"path": "lib/calc.c", "functions": 4, "value": 11, "max": 4, "average": 2.75},
        # 6 + 2 + 2 = 10 over 3 functions
        {"path": "app/shapes.py", "functions": 3, "value": 10, "max": 6,
         "average": pytest.approx(10 / 3)},
    ]  # fmt: skip
    # nloc: the function's non-blank lines (line ranges noted next to CALC_C and SHAPES_PY)
    assert compute(record, "complexity", by="function") == [
        {"path": "app/shapes.py", "function": "classify", "line": 1, "value": 6, "nloc": 9},
        {"path": "lib/calc.c", "function": "count_odd", "line": 10, "value": 4, "nloc": 9},
        {"path": "lib/calc.c", "function": "clamp", "line": 1, "value": 3, "nloc": 8},
        {"path": "lib/calc.c", "function": "kind", "line": 20, "value": 3, "nloc": 11},
        {"path": "app/shapes.py", "function": "drain", "line": 12, "value": 2, "nloc": 5},
        {"path": "app/shapes.py", "function": "pick", "line": 20, "value": 2, "nloc": 2},
        {"path": "lib/calc.c", "function": "noop", "line": 32, "value": 1, "nloc": 3},
    ]
    # files larger than max_file_bytes are skipped: calc.c is the larger of the two
    assert len(SHAPES_PY.encode()) < len(CALC_C.encode())
    small = compute(record, "complexity", max_file_bytes=len(SHAPES_PY.encode()))
    assert [row["path"] for row in small] == ["app/shapes.py"]


# -- releases ---------------------------------------------------------------------------------


def test_release_frequency(make_repo, ingest, compute) -> None:
    repo = make_repo()

    def tag(name: str, target: str, when: str | None = None) -> None:
        """A lightweight tag, or an annotated one tagged at ``when``."""
        if when is None:
            repo.git("tag", name, target)
        else:
            repo.git("tag", "-a", "-m", name, name, target, env={"GIT_COMMITTER_DATE": when})

    repo.write("README.md", "v1\n")
    r1 = repo.commit("r1", date="2024-01-01T12:00:00+0000")
    repo.write("README.md", "v1.1\n")
    r2 = repo.commit("r2", date="2024-01-10T08:00:00+0000")
    repo.git("checkout", "-q", "-b", "experiment")  # never part of the ingested history
    repo.write("README.md", "experiment\n")
    side = repo.commit("side", date="2024-01-25T12:00:00+0000")
    tag("v1.5-exp", side)
    tag("v1.6-exp", side, "2024-01-26T12:00:00+0000")
    repo.git("checkout", "-q", "main")
    repo.write("README.md", "v2\n")
    r3 = repo.commit("r3", date="2024-02-01T00:00:00+0000")

    tag("v1.0", r1)  # lightweight: the commit's time, 2024-01-01 12:00 UTC
    tag("v1.1", r2, "2024-01-21T23:00:00-0100")  # annotated: tagger time = 2024-01-22 00:00 UTC
    tag("v2.0-rc1", r3)  # lightweight: 2024-02-01 00:00 UTC
    tag("v2.0", r3, "2024-02-15T00:00:00+0000")  # annotated
    tag("readme-blob", f"{r3}:README.md")  # tags of a blob name no commit: ignored
    tag("readme-blob-annotated", f"{r3}:README.md", "2024-02-20T00:00:00+0000")
    record = ingest(repo)

    assert compute(record, "release_frequency") == [
        {"tag": "v1.0", "sha": r1, "date": "2024-01-01", "value": None},
        # 2024-01-01 12:00 -> 2024-01-22 00:00 UTC = 20 days 12 hours
        {"tag": "v1.1", "sha": r2, "date": "2024-01-22", "value": 20.5},
        # 2024-01-22 00:00 -> 2024-02-01 00:00 = 10 days (v1.5-exp, v1.6-exp not ingested)
        {"tag": "v2.0-rc1", "sha": r3, "date": "2024-02-01", "value": 10.0},
        # 2024-02-01 -> 2024-02-15 = 14 days
        {"tag": "v2.0", "sha": r3, "date": "2024-02-15", "value": 14.0},
    ]
    # pattern: only matching tags, and gaps between matching tags
    assert compute(record, "release_frequency", pattern="v2") == [
        {"tag": "v2.0-rc1", "sha": r3, "date": "2024-02-01", "value": None},
        {"tag": "v2.0", "sha": r3, "date": "2024-02-15", "value": 14.0},
    ]
    assert compute(record, "release_frequency", pattern="v1.") == [
        {"tag": "v1.0", "sha": r1, "date": "2024-01-01", "value": None},
        {"tag": "v1.1", "sha": r2, "date": "2024-01-22", "value": 20.5},
    ]
    assert compute(record, "release_frequency", pattern="exp") == []
    # a date range keeps the tags dated in it (inclusive UTC days of the tag's time); the
    # first one in the range has no previous release to count from
    assert compute(record, "release_frequency", since="2024-01-22", until="2024-02-01") == [
        {"tag": "v1.1", "sha": r2, "date": "2024-01-22", "value": None},
        {"tag": "v2.0-rc1", "sha": r3, "date": "2024-02-01", "value": 10.0},
    ]


# -- fan-out ----------------------------------------------------------------------------------


def worker_pid(path: str, content: bytes) -> int:
    """Which process read a file (module-level: map_files sends it to workers by name)."""
    return os.getpid()


def test_map_files_fan_out_matches_sequential(make_repo, tmp_path) -> None:
    """Above the threshold, workers=2 reads the files in worker processes and must give
    exactly what workers=1 gives. map_files reads only git, so one backend (SQLite) is enough,
    and starting worker pools is slow on a shared machine."""
    repo = make_repo()
    extensions = [".py", ".c", ".md"]
    for i in range(450):
        # i % 3 picks the language; (i // 3) % 5 + 1 lines: within each language, i // 3
        # runs 0..149, so the line counts 1..5 repeat 30 times: 30 x 15 = 450 lines each.
        lines = (i // 3) % 5 + 1
        repo.write(f"pkg{i % 9}/m{i:03d}{extensions[i % 3]}", text(numbered(f"f{i}", 1, lines)))
    repo.write("bin/a.dat", PNG)
    repo.write("bin/b.dat", PNG + b"more")
    repo.commit("many files", date=day("2024-04-01"))

    db_url = f"sqlite:///{tmp_path / 'fan-out.db'}"
    one = Settings(home=tmp_path / "home", db_url=db_url, workers=1)
    two = Settings(home=tmp_path / "home", db_url=db_url, workers=2)
    store = open_store(db_url)
    try:
        record, _ = add_repository(store, one, str(repo.path))
        ingest_repository(store, record, one)
        record = store.get_repository(record.id)

        context = StoreContext(store, record, git_dir_of(record, two), workers=2)
        entries = context.tree()
        assert len(entries) == 452 > _PARALLEL_THRESHOLD
        pids = context.map_files(worker_pid, entries)
        assert len(pids) == 452 and os.getpid() not in pids  # really read in worker processes

        def rows(settings: Settings, metric) -> list[dict]:
            result, computed = get_or_compute(store, record, settings, metric, {}, force=True)
            assert computed and result.status == "ok", result.error
            return result.rows

        languages = rows(two, language_distribution)
        assert languages == rows(one, language_distribution)
        assert sorted((r["language"], r["files"], r["value"]) for r in languages) == [
            ("C", 150, 450), ("Markdown", 150, 450), ("Python", 150, 450),
        ]  # fmt: skip
        spots = rows(two, hotspots)
        assert spots == rows(one, hotspots)
        # one commit each, so value = lines: 90 files of each size 1..5 (30 per language)
        assert len(spots) == 450 and sum(r["value"] for r in spots) == 1350
        assert {r["path"]: r["lines"] for r in spots}["pkg4/m013.c"] == 5  # 13 // 3 % 5 + 1
    finally:
        store.engine.dispose()
