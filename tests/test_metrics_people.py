"""The activity, people and organisation metrics against numbers worked out by hand.

One small repository (``build_history``) is generated with the git CLI, once per test module,
and ingested afresh by each test. Every expected value below is written out literally, with
the arithmetic in a comment; nothing is computed with repometer's own code.

The history: 22 commits (21 + 1 merge) from 5 people and a bot, January to June 2024.
Alice commits under two addresses that the committed ``.mailmap`` unifies; time zones range
from -05:00 to +09:00, so that local and UTC days, weeks and months differ in places.

    id author (mailmap)      author date (local)         UTC day    local   +/-    files
    A1 Alice  corp           2024-01-02 09:00 +0100      01-02 Tue  Tue 9   5/0    3
    B1 Bob    corp.co.uk     2024-01-03 14:00 +0000      01-03 Wed  Wed 14  10/0   2
    A2 Alice  gmail->corp    2024-01-09 23:30 -0500      01-10 Wed  Tue 23  2/2    1
    C1 Carol  gmail          2024-01-15 02:00 +0530      01-14 Sun  Mon 2   5/0    1
    X1 dependabot[bot]       2024-01-22 06:00 +0000      01-22 Mon  Mon 6   1/1    1
    A3 Alice  corp           2024-02-01 04:00 -0500      02-01 Thu  Thu 4   1200/0 1
    D1 Dave   gmail          2024-02-05 10:00 +0000      02-05 Mon  Mon 10  3/0    1  (lag +48 h)
    B2 Bob    (rename)       2024-02-12 09:00 +0000      02-12 Mon  Mon 9   0/0    1
    B3 Bob    [feature]      2024-02-20 11:00 +0000      02-20 Tue  Tue 11  20/0   2  (lag +2 h)
    C2 Carol                 2024-02-21 16:00 +0100      02-21 Wed  Wed 16  1/1    1  (lag +1 h)
    B4 Bob    [feature]      2024-02-22 11:00 +0000      02-22 Thu  Thu 11  0/5    1  (lag +6 h)
    M  Alice  corp (merge)   2024-03-01 01:00 +0200      02-29 Thu  Fri 1   0/0    0  (lag +100 h)
    A4 Alice  gmail->corp    2024-03-04 23:30 -0500      03-05 Tue  Mon 23  1/0    1
    D2 Dave                  2024-03-12 08:00 +0000      03-12 Tue  Tue 8   2/0    1
    D3 Dave                  2024-03-18 20:00 -0300      03-18 Mon  Mon 20  4/0    1
    C3 Carol                 2024-03-20 12:00 +0000      03-20 Wed  Wed 12  4/1    1
    E1 Erin   uni.example    2024-04-02 15:00 +0200      04-02 Tue  Tue 15  8/0    1
    A5 Alice  corp           2024-04-15 10:00 +0000      04-15 Mon  Mon 10  0/300  1
    B5 Bob                   2024-05-13 09:00 +0000      05-13 Mon  Mon 9   30/10  1
    C4 Carol                 2024-06-03 09:00 +0000      06-03 Mon  Mon 9   0/2    1
    A6 Alice  gmail->corp    2024-06-10 18:00 +0900      06-10 Mon  Mon 18  1/1    1
    X2 dependabot[bot]       2024-06-24 06:00 +0000      06-24 Mon  Mon 6   1/1    1

Commits per person: Alice 7 (A1 A2 A3 M A4 A5 A6), Bob 5, Carol 4, Dave 3, Erin 1, bot 2.
Trailers: X1, X2 "Signed-off-by: dependabot[bot] <support@github.com>"; D1 signed off by Dave;
C2 co-authored by Alice (under her gmail address) and Erin, signed off by Carol; E1
co-authored by github-actions[bot].
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import GitRepo, git_env

from metrics.api import ParameterError
from metrics.builtin._common import smallest_group_reaching
from metrics.builtin.people import Mailmap

# -- the repository ---------------------------------------------------------------------------

ALICE = {"GIT_AUTHOR_NAME": "Alice Smith", "GIT_AUTHOR_EMAIL": "alice@corp.example"}
ALICE_GMAIL = {"GIT_AUTHOR_NAME": "alice s", "GIT_AUTHOR_EMAIL": "alice.smith@gmail.com"}
BOB = {"GIT_AUTHOR_NAME": "Bob Jones", "GIT_AUTHOR_EMAIL": "bob@corp.example.co.uk"}
CAROL = {"GIT_AUTHOR_NAME": "Carol White", "GIT_AUTHOR_EMAIL": "carol@gmail.com"}
DAVE = {"GIT_AUTHOR_NAME": "Dave Brown", "GIT_AUTHOR_EMAIL": "dave@gmail.com"}
ERIN = {"GIT_AUTHOR_NAME": "Erin Green", "GIT_AUTHOR_EMAIL": "erin@uni.example"}
BOT_EMAIL = "49699333+dependabot[bot]@users.noreply.github.com"
BOT = {"GIT_AUTHOR_NAME": "dependabot[bot]", "GIT_AUTHOR_EMAIL": BOT_EMAIL}
ACTIONS_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"

MAILMAP = "Alice Smith <alice@corp.example> <alice.smith@gmail.com>\n"
ORGS = "corp.example=Corp,corp.example.co.uk=Corp"


def text(prefix: str, first: int, last: int) -> str:
    return "".join(f"{prefix} {i}\n" for i in range(first, last + 1))


def lag(author: str, committer: str) -> dict[str, str]:
    return {"GIT_AUTHOR_DATE": author, "GIT_COMMITTER_DATE": committer}


def build_history(root: Path) -> GitRepo:
    """The repository described in the module docstring, as a bare repository.

    A bare repository because git reads its ``.mailmap`` from ``HEAD:.mailmap`` there,
    wherever the process runs; in a work tree git looks in the work tree, which is only
    right when git runs from it (see CWD_BUG in test_ingest_groundtruth.py).
    """
    home = root / "git-home"
    home.mkdir(parents=True)
    work = GitRepo(root / "work", git_env(home))
    work.path.mkdir()
    work.git("init", "-q", "--initial-branch=main")

    signoff_bot = "Signed-off-by: dependabot[bot] <support@github.com>"

    # A1: +5 in 3 files
    work.write(".mailmap", MAILMAP)
    work.write("README.md", "# Demo\nintro\nusage\n")
    work.write("requirements.txt", "requests==2.0\n")
    work.commit("Initial commit", date="2024-01-02T09:00:00+0100", **ALICE)
    # B1: +10 in 2 files (one of them empty)
    work.write("src/app.py", text("app", 1, 10))
    work.write("src/__init__.py", "")
    work.commit("Add app", date="2024-01-03T14:00:00+0000", **BOB)
    # A2: two lines changed, +2/-2
    work.write("src/app.py", "app 1 tweaked\napp 2 tweaked\n" + text("app", 3, 10))
    work.commit("Tweak app", date="2024-01-09T23:30:00-0500", **ALICE_GMAIL)
    # C1: +5
    work.write("docs/guide.md", text("guide", 1, 5))
    work.commit("Add guide", date="2024-01-15T02:00:00+0530", **CAROL)
    # X1: +1/-1
    work.write("requirements.txt", "requests==2.1\n")
    work.commit(f"Bump requests from 2.0 to 2.1\n\n{signoff_bot}",
                date="2024-01-22T06:00:00+0000", **BOT)  # fmt: skip
    # A3: the large commit, +1200
    work.write("data/big.txt", text("row", 1, 1200))
    work.commit("Add data set", date="2024-02-01T04:00:00-0500", **ALICE)
    # D1: +3, committed 48 h after it was authored
    work.write("docs/guide.md", text("guide", 1, 8))
    work.commit("Extend guide\n\nSigned-off-by: Dave Brown <dave@gmail.com>",
                **lag("2024-02-05T10:00:00+0000", "2024-02-07T10:00:00+0000"), **DAVE)  # fmt: skip
    # B2: a pure rename, 0/0 in 1 file
    work.git("mv", "src/app.py", "src/main.py")
    work.commit("Rename app", date="2024-02-12T09:00:00+0000", **BOB)
    # B3, B4 on a branch
    work.git("checkout", "-q", "-b", "feature")
    work.write("src/feature.py", text("feature", 1, 15))
    work.write("docs/feature.md", text("feature doc", 1, 5))
    work.commit("Add feature", **lag("2024-02-20T11:00:00+0000", "2024-02-20T13:00:00+0000"),
                **BOB)  # fmt: skip
    work.write("src/feature.py", text("feature", 1, 10))
    work.commit("Trim feature", **lag("2024-02-22T11:00:00+0000", "2024-02-22T17:00:00+0000"),
                **BOB)  # fmt: skip
    work.git("checkout", "-q", "main")
    # C2: +1/-1, with trailers
    work.write("docs/guide.md", text("guide", 1, 2) + "guide 3 fixed\n" + text("guide", 4, 8))
    work.commit(
        "Fix guide typo\n\n"
        "Co-authored-by: Alice Smith <alice.smith@gmail.com>\n"
        "Co-authored-by: Erin Green <erin@uni.example>\n"
        "Signed-off-by: Carol White <carol@gmail.com>",
        **lag("2024-02-21T16:00:00+0100", "2024-02-21T17:00:00+0100"),
        **CAROL,
    )
    # M: the merge, committed 100 h after it was authored
    merge_env = {**ALICE, **lag("2024-03-01T01:00:00+0200", "2024-03-05T05:00:00+0200")}
    work.git("merge", "-q", "--no-ff", "-m", "Merge branch 'feature'", "feature", env=merge_env)
    # A4: +1
    work.write("README.md", "# Demo\nintro\nusage\nmore\n")
    work.commit("Update README", date="2024-03-04T23:30:00-0500", **ALICE_GMAIL)
    # D2: +2, D3: +4
    work.write("docs/guide.md", text("guide", 1, 2) + "guide 3 fixed\n" + text("guide", 4, 10))
    work.commit("More guide", date="2024-03-12T08:00:00+0000", **DAVE)
    work.write("docs/guide.md", text("guide", 1, 2) + "guide 3 fixed\n" + text("guide", 4, 14))
    work.commit("Guide examples", date="2024-03-18T20:00:00-0300", **DAVE)
    # C3: one line changed and three added, +4/-1
    main_c3 = "app 1 tweaked\napp 2 tweaked\n" + text("app", 3, 4) + "app 5 improved\n"
    main_c3 += text("app", 6, 10) + text("main", 11, 13)
    work.write("src/main.py", main_c3)
    work.commit("Improve main", date="2024-03-20T12:00:00+0000", **CAROL)
    # E1: +8, co-authored by a bot
    work.write("tests/test_main.py", text("test", 1, 8))
    work.commit(f"Add tests\n\nCo-authored-by: github-actions[bot] <{ACTIONS_EMAIL}>",
                date="2024-04-02T15:00:00+0200", **ERIN)  # fmt: skip
    # A5: -300
    work.write("data/big.txt", text("row", 1, 900))
    work.commit("Trim data set", date="2024-04-15T10:00:00+0000", **ALICE)
    # B5: the first 10 lines deleted, 30 appended: +30/-10
    work.write("src/main.py", text("main", 11, 43))
    work.commit("Refactor main", date="2024-05-13T09:00:00+0000", **BOB)
    # C4: -2
    work.write("docs/guide.md", text("guide", 1, 2) + "guide 3 fixed\n" + text("guide", 4, 12))
    work.commit("Guide cleanup", date="2024-06-03T09:00:00+0000", **CAROL)
    # A6: +1/-1
    work.write("README.md", "# Demo\nintro\nusage\nmore, polished\n")
    work.commit("Polish README", date="2024-06-10T18:00:00+0900", **ALICE_GMAIL)
    # X2: +1/-1
    work.write("requirements.txt", "requests==2.2\n")
    work.commit(f"Bump requests from 2.1 to 2.2\n\n{signoff_bot}",
                date="2024-06-24T06:00:00+0000", **BOT)  # fmt: skip

    bare = GitRepo(root / "history.git", work.env)
    bare.path.mkdir()
    bare.git("init", "-q", "--bare", "--initial-branch=main")
    work.git("push", "-q", str(bare.path), "main")
    return bare


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> GitRepo:
    """Built once per module (both backends ingest the same repository)."""
    return build_history(tmp_path_factory.mktemp("people"))


@pytest.fixture
def record(history: GitRepo, ingest):
    return ingest(history)


def approx(value: float) -> object:
    return pytest.approx(value, abs=1e-12)


# -- activity -----------------------------------------------------------------------------------


def test_commits_per_day_week_and_month(record, compute, history):
    assert history.git("rev-list", "--count", "HEAD") == "22"
    # one commit per UTC day; A4 is on 2024-03-05 (UTC) though authored on 03-04 locally,
    # C1 on Sunday 01-14 (UTC) though Monday 01-15 locally, M on 02-29 though 03-01 locally
    days = ["2024-01-02", "2024-01-03", "2024-01-10", "2024-01-14", "2024-01-22",
            "2024-02-01", "2024-02-05", "2024-02-12", "2024-02-20", "2024-02-21",
            "2024-02-22", "2024-02-29", "2024-03-05", "2024-03-12", "2024-03-18",
            "2024-03-20", "2024-04-02", "2024-04-15", "2024-05-13", "2024-06-03",
            "2024-06-10", "2024-06-24"]  # fmt: skip
    assert compute(record, "commits") == [{"period": d, "value": 1} for d in days]
    assert compute(record, "commits", period="day") == [{"period": d, "value": 1} for d in days]
    # weeks start on the Monday of the UTC day: C1 (Sun 01-14) falls in the week of 01-08
    weekly = [
        ("2024-01-01", 2),  # A1 B1
        ("2024-01-08", 2),  # A2 C1
        ("2024-01-22", 1),  # X1
        ("2024-01-29", 1),  # A3 (Thu 02-01)
        ("2024-02-05", 1),  # D1
        ("2024-02-12", 1),  # B2
        ("2024-02-19", 3),  # B3 C2 B4
        ("2024-02-26", 1),  # M
        ("2024-03-04", 1),  # A4
        ("2024-03-11", 1),  # D2
        ("2024-03-18", 2),  # D3 C3
        ("2024-04-01", 1),  # E1
        ("2024-04-15", 1),  # A5
        ("2024-05-13", 1),  # B5
        ("2024-06-03", 1),  # C4
        ("2024-06-10", 1),  # A6
        ("2024-06-24", 1),  # X2
    ]  # 2+2+1+1+1+1+3+1+1+1+2+1+1+1+1+1+1 = 22
    assert compute(record, "commits", period="week") == [
        {"period": p, "value": v} for p, v in weekly
    ]
    monthly = compute(record, "commits", period="month")
    assert monthly == [
        {"period": "2024-01", "value": 5},  # A1 B1 A2 C1 X1
        {"period": "2024-02", "value": 7},  # A3 D1 B2 B3 C2 B4 M (the merge is counted)
        {"period": "2024-03", "value": 4},  # A4 D2 D3 C3
        {"period": "2024-04", "value": 2},  # E1 A5
        {"period": "2024-05", "value": 1},  # B5
        {"period": "2024-06", "value": 3},  # C4 A6 X2
    ]
    assert sum(r["value"] for r in monthly) == 22  # = git rev-list --count HEAD


def test_commits_exclude_bots(record, compute):
    # X1 (January) and X2 (June) left out: 22 - 2 = 20
    assert compute(record, "commits", period="month", exclude_bots=True) == [
        {"period": "2024-01", "value": 4},
        {"period": "2024-02", "value": 7},
        {"period": "2024-03", "value": 4},
        {"period": "2024-04", "value": 2},
        {"period": "2024-05", "value": 1},
        {"period": "2024-06", "value": 2},
    ]


def test_commits_date_range(record, compute):
    # inclusive UTC author days: 02-01 (A3) .. 03-05 (A4, authored 03-04 -0500 = 03-05 UTC)
    assert compute(record, "commits", period="month", since="2024-02-01", until="2024-03-05") == [
        {"period": "2024-02", "value": 7},
        {"period": "2024-03", "value": 1},
    ]
    # until the local day of A4 leaves A4 out
    assert compute(record, "commits", period="month", since="2024-02-01", until="2024-03-04") == [
        {"period": "2024-02", "value": 7},
    ]
    # 02-29 is the merge M's UTC day (03-01 locally); 01-31 has no commit
    assert compute(record, "commits", period="day", since="2024-02-22", until="2024-02-29") == [
        {"period": "2024-02-22", "value": 1},
        {"period": "2024-02-29", "value": 1},
    ]
    assert compute(record, "commits", since="2024-01-23", until="2024-01-31") == []
    assert compute(record, "commits", period="month", since="2024-06-01", exclude_bots=True) == [
        {"period": "2024-06", "value": 2}
    ]  # C4 A6 (X2 is a bot)


def test_lines_changed(record, compute):
    # (added, deleted) per commit from the module docstring; merges have no diff
    assert compute(record, "lines_changed") == [  # default: weeks
        {"period": p, "added": a, "deleted": d, "value": v}
        for p, a, d, v in [
            ("2024-01-01", 15, 0, 15),  # A1 5/0 + B1 10/0
            ("2024-01-08", 7, 2, 9),  # A2 2/2 + C1 5/0
            ("2024-01-22", 1, 1, 2),  # X1
            ("2024-01-29", 1200, 0, 1200),  # A3
            ("2024-02-05", 3, 0, 3),  # D1
            ("2024-02-12", 0, 0, 0),  # B2, a pure rename
            ("2024-02-19", 21, 6, 27),  # B3 20/0 + C2 1/1 + B4 0/5
            ("2024-02-26", 0, 0, 0),  # M, a merge
            ("2024-03-04", 1, 0, 1),  # A4
            ("2024-03-11", 2, 0, 2),  # D2
            ("2024-03-18", 8, 1, 9),  # D3 4/0 + C3 4/1
            ("2024-04-01", 8, 0, 8),  # E1
            ("2024-04-15", 0, 300, 300),  # A5
            ("2024-05-13", 30, 10, 40),  # B5
            ("2024-06-03", 0, 2, 2),  # C4
            ("2024-06-10", 1, 1, 2),  # A6
            ("2024-06-24", 1, 1, 2),  # X2
        ]
    ]
    with_bots = [
        ("2024-01", 23, 3, 26),  # 5+10+2+5+1 / 2+1
        ("2024-02", 1224, 6, 1230),  # 1200+3+0+20+1+0+0 / 1+5
        ("2024-03", 11, 1, 12),  # 1+2+4+4 / 1
        ("2024-04", 8, 300, 308),
        ("2024-05", 30, 10, 40),
        ("2024-06", 2, 4, 6),  # 0+1+1 / 2+1+1
    ]  # added 1298, deleted 324 in all
    assert compute(record, "lines_changed", period="month") == [
        {"period": p, "added": a, "deleted": d, "value": v} for p, a, d, v in with_bots
    ]
    without_bots = [
        ("2024-01", 22, 2, 24),  # X1's 1/1 left out
        *with_bots[1:5],
        ("2024-06", 1, 3, 4),  # X2's 1/1 left out
    ]
    assert compute(record, "lines_changed", period="month", exclude_bots=True) == [
        {"period": p, "added": a, "deleted": d, "value": v} for p, a, d, v in without_bots
    ]


def test_merges(record, compute):
    # the one merge M is on 2024-02-29 UTC (2024-03-01 in its author's +02:00)
    assert compute(record, "merges") == [
        {"period": "2024-01", "value": 0, "commits": 5, "share": 0.0},
        {"period": "2024-02", "value": 1, "commits": 7, "share": approx(1 / 7)},
        {"period": "2024-03", "value": 0, "commits": 4, "share": 0.0},
        {"period": "2024-04", "value": 0, "commits": 2, "share": 0.0},
        {"period": "2024-05", "value": 0, "commits": 1, "share": 0.0},
        {"period": "2024-06", "value": 0, "commits": 3, "share": 0.0},
    ]
    assert compute(record, "merges", period="week", since="2024-02-26", until="2024-03-10") == [
        {"period": "2024-02-26", "value": 1, "commits": 1, "share": 1.0},
        {"period": "2024-03-04", "value": 0, "commits": 1, "share": 0.0},
    ]


def size_rows(counts: dict[str, int], total: int, median_files: dict[str, float]):
    bounds = {"0": (0, 0), "1-9": (1, 9), "10-49": (10, 49), "50-199": (50, 199),
              "200-999": (200, 999), "1000+": (1000, None)}  # fmt: skip
    return [
        {"size": label, "min_lines": low, "max_lines": high, "commits": counts[label],
         "share": approx(counts[label] / total), "median_files": median_files.get(label)}
        for label, (low, high) in bounds.items()
    ]  # fmt: skip


def test_commit_size(record, compute):
    # lines (added + deleted) of the 21 non-merge commits:
    #   0: B2 (the rename, 1 file)
    #   1-9: A1 5 (3 files), A2 4, C1 5, X1 2, D1 3, C2 2, B4 5, A4 1, D2 2, D3 4, C3 5, E1 8,
    #        C4 2, A6 2, X2 2  -> 15 commits, files [3, 1 x 14] -> median 1
    #   10-49: B1 10 (2 files), B3 20 (2 files), B5 40 (1 file) -> median 2
    #   200-999: A5 300;  1000+: A3 1200
    median = {"0": 1.0, "1-9": 1.0, "10-49": 2.0, "200-999": 1.0, "1000+": 1.0}
    counts = {"0": 1, "1-9": 15, "10-49": 3, "50-199": 0, "200-999": 1, "1000+": 1}
    assert compute(record, "commit_size") == size_rows(counts, 21, median)
    # without X1 and X2: 13 commits of 1-9 lines, 19 in all
    counts = {**counts, "1-9": 13}
    assert compute(record, "commit_size", exclude_bots=True) == size_rows(counts, 19, median)


def test_commit_lag(record, compute):
    # hours from author to committer date of non-merge commits; February:
    # A3 0, D1 48, B2 0, B3 2, C2 1, B4 6 -> sorted 0 0 1 2 6 48, median (1 + 2) / 2 = 1.5.
    # The merge M (100 h) is left out: with it the median would be 2.
    assert compute(record, "commit_lag") == [
        {"period": "2024-01", "value": 0.0, "max": 0.0, "commits": 5},
        {"period": "2024-02", "value": 1.5, "max": 48.0, "commits": 6},
        {"period": "2024-03", "value": 0.0, "max": 0.0, "commits": 4},
        {"period": "2024-04", "value": 0.0, "max": 0.0, "commits": 2},
        {"period": "2024-05", "value": 0.0, "max": 0.0, "commits": 1},
        {"period": "2024-06", "value": 0.0, "max": 0.0, "commits": 3},
    ]
    assert compute(record, "commit_lag", period="week", since="2024-02-19", until="2024-02-25") == [
        {"period": "2024-02-19", "value": 2.0, "max": 6.0, "commits": 3},  # B3 2, C2 1, B4 6
    ]


#: (weekday, hour) in the author's own time zone, 0 = Monday, from the module docstring.
LOCAL_TIMES = {
    (0, 2): 1,  # C1 Mon 02:00 +0530 (Sunday 20:30 UTC)
    (0, 6): 2,  # X1, X2
    (0, 9): 3,  # B2, B5, C4
    (0, 10): 2,  # D1, A5
    (0, 18): 1,  # A6 +0900
    (0, 20): 1,  # D3 -0300 (23:00 UTC)
    (0, 23): 1,  # A4 Mon 23:30 -0500 (Tuesday 04:30 UTC)
    (1, 8): 1,  # D2
    (1, 9): 1,  # A1 +0100
    (1, 11): 1,  # B3
    (1, 15): 1,  # E1 +0200
    (1, 23): 1,  # A2 Tue 23:30 -0500 (Wednesday 04:30 UTC)
    (2, 12): 1,  # C3
    (2, 14): 1,  # B1
    (2, 16): 1,  # C2 +0100
    (3, 4): 1,  # A3 Thu 04:00 -0500
    (3, 11): 1,  # B4
    (4, 1): 1,  # M Fri 01:00 +0200 (Thursday 23:00 UTC)
}  # 15 cells of 1 + 2 + 3 + 2 = 22


def test_activity_dates_times(record, compute):
    grid = [(d, h) for d in range(7) for h in range(24)]
    rows = compute(record, "activity_dates_times")
    assert rows == [{"weekday": d, "hour": h, "value": LOCAL_TIMES.get((d, h), 0)} for d, h in grid]
    assert sum(r["value"] for r in rows) == 22
    no_bots = {**LOCAL_TIMES, (0, 6): 0}  # X1 and X2 were Monday 06:00
    assert compute(record, "activity_dates_times", exclude_bots=True) == [
        {"weekday": d, "hour": h, "value": no_bots.get((d, h), 0)} for d, h in grid
    ]


def test_timezones(record, compute):
    def rows(zones, total):
        return [
            {"timezone": tz, "offset_minutes": minutes, "value": n, "authors": authors,
             "share": approx(n / total)}
            for tz, minutes, n, authors in zones
        ]  # fmt: skip

    zones = [
        ("-05:00", -300, 3, 1),  # A2 A3 A4: Alice under both addresses, one person
        ("-03:00", -180, 1, 1),  # D3
        ("+00:00", 0, 12, 5),  # B1 X1 D1 B2 B3 B4 D2 C3 A5 B5 C4 X2: Bob Dave Carol Alice bot
        ("+01:00", 60, 2, 2),  # A1 C2
        ("+02:00", 120, 2, 2),  # M E1
        ("+05:30", 330, 1, 1),  # C1
        ("+09:00", 540, 1, 1),  # A6
    ]  # 3+1+12+2+2+1+1 = 22
    assert compute(record, "timezones") == rows(zones, 22)
    zones[2] = ("+00:00", 0, 10, 4)  # without X1 and X2 (and the bot)
    assert compute(record, "timezones", exclude_bots=True) == rows(zones, 20)


# -- people -------------------------------------------------------------------------------------

#: commits per person after .mailmap: Alice 4 + 3 under her gmail address.
ALICE_ROW = ("Alice Smith", "alice@corp.example", 7)
BOB_ROW = ("Bob Jones", "bob@corp.example.co.uk", 5)
CAROL_ROW = ("Carol White", "carol@gmail.com", 4)
DAVE_ROW = ("Dave Brown", "dave@gmail.com", 3)
BOT_ROW = ("dependabot[bot]", BOT_EMAIL, 2)
ERIN_ROW = ("Erin Green", "erin@uni.example", 1)


def test_contributors(record, compute):
    # distinct people per UTC month (Alice once, whichever address she used)
    assert compute(record, "contributors") == [
        {"period": "2024-01", "value": 4, "commits": 5},  # Alice (A1, A2) Bob Carol bot
        {"period": "2024-02", "value": 4, "commits": 7},  # Alice Dave Bob Carol
        {"period": "2024-03", "value": 3, "commits": 4},  # Alice (A4) Dave Carol
        {"period": "2024-04", "value": 2, "commits": 2},  # Erin Alice
        {"period": "2024-05", "value": 1, "commits": 1},  # Bob
        {"period": "2024-06", "value": 3, "commits": 3},  # Carol Alice bot
    ]
    assert compute(record, "contributors", exclude_bots=True) == [
        {"period": "2024-01", "value": 3, "commits": 4},
        {"period": "2024-02", "value": 4, "commits": 7},
        {"period": "2024-03", "value": 3, "commits": 4},
        {"period": "2024-04", "value": 2, "commits": 2},
        {"period": "2024-05", "value": 1, "commits": 1},
        {"period": "2024-06", "value": 2, "commits": 2},
    ]
    assert compute(record, "contributors", period="week", until="2024-01-21") == [
        {"period": "2024-01-01", "value": 2, "commits": 2},  # Alice Bob
        {"period": "2024-01-08", "value": 2, "commits": 2},  # Alice (gmail) Carol
    ]
    assert compute(record, "contributors", since="2024-03-01", until="2024-04-30") == [
        {"period": "2024-03", "value": 3, "commits": 4},
        {"period": "2024-04", "value": 2, "commits": 2},
    ]


def test_new_contributors(record, compute):
    # first UTC days: Alice 01-02, Bob 01-03, Carol 01-14, bot 01-22, Dave 02-05, Erin 04-02
    assert compute(record, "new_contributors") == [
        {"period": "2024-01", "value": 4,
         "authors": ["Alice Smith", "Bob Jones", "Carol White", "dependabot[bot]"]},
        {"period": "2024-02", "value": 1, "authors": ["Dave Brown"]},
        {"period": "2024-04", "value": 1, "authors": ["Erin Green"]},
    ]  # fmt: skip
    assert compute(record, "new_contributors", exclude_bots=True) == [
        {"period": "2024-01", "value": 3, "authors": ["Alice Smith", "Bob Jones", "Carol White"]},
        {"period": "2024-02", "value": 1, "authors": ["Dave Brown"]},
        {"period": "2024-04", "value": 1, "authors": ["Erin Green"]},
    ]
    # by week: Alice's gmail address (first used 01-10) is not a newcomer in week 01-08
    assert compute(record, "new_contributors", period="week") == [
        {"period": "2024-01-01", "value": 2, "authors": ["Alice Smith", "Bob Jones"]},
        {"period": "2024-01-08", "value": 1, "authors": ["Carol White"]},
        {"period": "2024-01-22", "value": 1, "authors": ["dependabot[bot]"]},
        {"period": "2024-02-05", "value": 1, "authors": ["Dave Brown"]},
        {"period": "2024-04-01", "value": 1, "authors": ["Erin Green"]},
    ]


def test_inactive_contributors(record, compute):
    # last UTC days: Dave 03-18, Erin 04-02, Bob 05-13, Carol 06-03, Alice 06-10 (A6, under her
    # gmail address; her corp address last 04-15), bot 06-24. Newest commit: 06-24 (X2).
    # 30 days: Dave 03-18 + 30 = 04-17, Erin 04-02 + 30 = 05-02, Bob 05-13 + 30 = 06-12;
    # Carol 07-03, Alice 07-10 and the bot 07-24 are after 06-24.
    expected = [
        {"period": "2024-04", "value": 1, "authors": ["Dave Brown"]},
        {"period": "2024-05", "value": 1, "authors": ["Erin Green"]},
        {"period": "2024-06", "value": 1, "authors": ["Bob Jones"]},
    ]
    assert compute(record, "inactive_contributors", inactive_days=30) == expected
    # without bots the newest commit is A6 on 06-10, before Bob's 06-12
    assert (
        compute(record, "inactive_contributors", inactive_days=30, exclude_bots=True)
        == (expected[:2])
    )
    # 42 days: Bob 05-13 + 42 = 06-24, the newest commit's day itself, counts
    assert compute(record, "inactive_contributors", inactive_days=42) == expected
    # 43 days: Bob 06-25 is later than the newest commit; Dave 04-30, Erin 05-15
    assert compute(record, "inactive_contributors", inactive_days=43) == expected[:2]
    # weeks of the day they went inactive: 04-17 (Wed) -> 04-15, 05-02 (Thu) -> 04-29,
    # 06-12 (Wed) -> 06-10
    assert compute(record, "inactive_contributors", inactive_days=30, period="week") == [
        {"period": "2024-04-15", "value": 1, "authors": ["Dave Brown"]},
        {"period": "2024-04-29", "value": 1, "authors": ["Erin Green"]},
        {"period": "2024-06-10", "value": 1, "authors": ["Bob Jones"]},
    ]
    # the default 180 days: Dave 03-18 + 180 = 09-14, after 06-24: nobody yet
    assert compute(record, "inactive_contributors") == []


def onion(rows_in, total):
    return [
        {"author": name, "email": email, "commits": n, "share": approx(n / total),
         "category": category}
        for (name, email, n), category in rows_in
    ]  # fmt: skip


def test_occasional_contributors(record, compute):
    # without bots, 20 commits ranked 7 5 4 3 1; an author's layer is where the commits
    # before theirs put them: 0, 7, 12 (< 80 % = 16) -> core; Dave at 16/20 = 80 % ->
    # regular; Erin at 19/20 = 95 % -> casual (the last 5 % of the commits is hers alone)
    assert compute(record, "occasional_contributors", exclude_bots=True) == onion(
        [(ALICE_ROW, "core"), (BOB_ROW, "core"), (CAROL_ROW, "core"), (DAVE_ROW, "regular"),
         (ERIN_ROW, "casual")], 20)  # fmt: skip
    # with bots, 22 commits ranked 7 5 4 3 2 1: before Dave 16/22 = 72.7 % -> core; before the
    # bot 19/22 = 86.4 % -> regular; before Erin 21/22 = 95.5 % -> casual
    assert compute(record, "occasional_contributors") == onion(
        [(ALICE_ROW, "core"), (BOB_ROW, "core"), (CAROL_ROW, "core"), (DAVE_ROW, "core"),
         (BOT_ROW, "regular"), (ERIN_ROW, "casual")], 22)  # fmt: skip
    # core 60 %, regular 35 %: 0 and 7/20 = 35 % are core; Carol at 12/20 = 60 % and Dave at
    # 16/20 = 80 % are regular (< 95 %); Erin at 19/20 = 95 % is casual
    assert compute(
        record, "occasional_contributors", core_share=0.6, regular_share=0.35, exclude_bots=True
    ) == onion(
        [(ALICE_ROW, "core"), (BOB_ROW, "core"), (CAROL_ROW, "regular"),
         (DAVE_ROW, "regular"), (ERIN_ROW, "casual")], 20)  # fmt: skip


def test_contributor_absence_factor(record, compute):
    # 50 % of 20 = 10: Alice 7 < 10, Alice + Bob 12 >= 10 -> 2
    assert compute(record, "contributor_absence_factor", exclude_bots=True) == [
        {"value": 2, "authors": ["Alice Smith", "Bob Jones"], "total_authors": 5}
    ]
    # 50 % of 22 = 11: 7, 12 -> 2; the bot is a sixth author
    assert compute(record, "contributor_absence_factor") == [
        {"value": 2, "authors": ["Alice Smith", "Bob Jones"], "total_authors": 6}
    ]
    # 80 % of 20 = 16: 7, 12, 16 -> 3 (reaching the share exactly is enough)
    assert compute(record, "contributor_absence_factor", share=0.8, exclude_bots=True) == [
        {"value": 3, "authors": ["Alice Smith", "Bob Jones", "Carol White"], "total_authors": 5}
    ]
    # 80 % of 22 = 17.6: 7, 12, 16, 19 -> 4
    assert compute(record, "contributor_absence_factor", share=0.8) == [
        {"value": 4, "authors": ["Alice Smith", "Bob Jones", "Carol White", "Dave Brown"],
         "total_authors": 6}
    ]  # fmt: skip


def test_smallest_group_reaching_an_exact_share():
    # 7 of 25 is exactly 28 %, though 0.28 * 25 is 7.000000000000001 in floating point
    assert smallest_group_reaching(pd.Series({"a": 7, "b": 6, "c": 6, "d": 6}), 0.28) == (
        1, ["a"]
    )  # fmt: skip
    assert smallest_group_reaching(pd.Series({"a": 7, "b": 18}), 0.72) == (1, ["b"])  # 18/25
    assert smallest_group_reaching(pd.Series({"a": 7, "b": 18}), 1.0) == (2, ["b", "a"])
    assert smallest_group_reaching(pd.Series({"a": 0}, dtype=int), 0.5) == (0, [])
    for share in (0.0, 1.5):
        with pytest.raises(ParameterError):
            smallest_group_reaching(pd.Series({"a": 7, "b": 18}), share)


def test_bot_activity(record, compute):
    assert compute(record, "bot_activity") == [
        {"period": "2024-01", "value": approx(1 / 5), "bot_commits": 1, "commits": 5},  # X1
        {"period": "2024-02", "value": 0.0, "bot_commits": 0, "commits": 7},
        {"period": "2024-03", "value": 0.0, "bot_commits": 0, "commits": 4},
        {"period": "2024-04", "value": 0.0, "bot_commits": 0, "commits": 2},
        {"period": "2024-05", "value": 0.0, "bot_commits": 0, "commits": 1},
        {"period": "2024-06", "value": approx(1 / 3), "bot_commits": 1, "commits": 3},  # X2
    ]
    assert compute(record, "bot_activity", period="day", since="2024-06-20") == [
        {"period": "2024-06-24", "value": 1.0, "bot_commits": 1, "commits": 1},
    ]


def attribution(*rows):
    return [
        {"person": name, "email": email, "authored": a, "co_authored": c, "signed_off": s}
        for name, email, a, c, s in rows
    ]


def test_contribution_attribution(record, compute):
    # authored after .mailmap; C2's "Co-authored-by: Alice Smith <alice.smith@gmail.com>" is
    # Alice (the .mailmap maps that address to alice@corp.example); sorted by
    # authored + co-authored, then email
    assert compute(record, "contribution_attribution") == attribution(
        ("Alice Smith", "alice@corp.example", 7, 1, 0),  # 8
        ("Bob Jones", "bob@corp.example.co.uk", 5, 0, 0),  # 5
        ("Carol White", "carol@gmail.com", 4, 0, 1),  # 4; signed off C2
        ("Dave Brown", "dave@gmail.com", 3, 0, 1),  # 3; signed off D1
        ("dependabot[bot]", BOT_EMAIL, 2, 0, 0),  # 2
        ("Erin Green", "erin@uni.example", 1, 1, 0),  # 2; co-authored C2
        ("github-actions[bot]", ACTIONS_EMAIL, 0, 1, 0),  # 1; co-authored E1
        ("dependabot[bot]", "support@github.com", 0, 0, 2),  # 0; signed off X1 and X2
    )
    # without bots: no bot commits, and no bot named in a trailer either
    assert compute(record, "contribution_attribution", exclude_bots=True) == attribution(
        ("Alice Smith", "alice@corp.example", 7, 1, 0),
        ("Bob Jones", "bob@corp.example.co.uk", 5, 0, 0),
        ("Carol White", "carol@gmail.com", 4, 0, 1),
        ("Dave Brown", "dave@gmail.com", 3, 0, 1),
        ("Erin Green", "erin@uni.example", 1, 1, 0),
    )
    # February only: C2's co-author is still Alice though her gmail address authored nothing
    # that month (A3 and M are under her corp address)
    assert compute(
        record, "contribution_attribution", since="2024-02-01", until="2024-02-29"
    ) == attribution(
        ("Alice Smith", "alice@corp.example", 2, 1, 0),  # A3 M + C2: 3
        ("Bob Jones", "bob@corp.example.co.uk", 3, 0, 0),  # B2 B3 B4: 3, after alice@
        ("Carol White", "carol@gmail.com", 1, 0, 1),  # C2
        ("Dave Brown", "dave@gmail.com", 1, 0, 1),  # D1
        ("Erin Green", "erin@uni.example", 0, 1, 0),  # C2
    )


def test_trailer_mailmap_follows_git(tmp_path):
    """The .mailmap applied to trailers does what ``git check-mailmap`` does."""
    text_ = (
        "# a comment <not@an.entry>\n"
        "Proper Name <proper@example.org>\n"  # name only, for this email
        "<new@example.org> <Old@Example.org>\n"  # email only
        "Both Changed <both@example.org> <both-old@example.org>\n"
        "One <one@example.org> Jo <shared@example.org>\n"  # by commit name
        "Two <two@example.org> Jim <shared@example.org>\n"
    )
    cases = {
        ("Someone", "proper@example.org"): ("Proper Name", "proper@example.org"),
        ("Someone", "PROPER@example.org"): ("Proper Name", "PROPER@example.org"),
        ("Old Name", "old@example.org"): ("Old Name", "new@example.org"),
        ("X", "both-old@example.org"): ("Both Changed", "both@example.org"),
        ("jo", "shared@example.org"): ("One", "one@example.org"),
        ("Jim", "Shared@Example.org"): ("Two", "two@example.org"),
        ("Jack", "shared@example.org"): ("Jack", "shared@example.org"),
        ("Nobody", "nobody@example.org"): ("Nobody", "nobody@example.org"),
    }
    mailmap = Mailmap(text_)
    assert {ident: mailmap(*ident) for ident in cases} == cases
    # git agrees
    repo = GitRepo(tmp_path / "mm", git_env(tmp_path))
    repo.path.mkdir()
    repo.git("init", "-q")
    repo.write(".mailmap", text_)
    for (name, email), expected in cases.items():
        assert repo.git("check-mailmap", f"{name} <{email}>") == "{} <{}>".format(*expected)


# -- organisations ------------------------------------------------------------------------------


def test_email_domains(record, compute):
    def rows(domains, total):
        return [{"domain": d, "value": n, "authors": a, "share": approx(n / total)}
                for d, n, a in domains]  # fmt: skip

    # after .mailmap Alice's 7 commits are all corp.example; gmail.com has Carol 4 + Dave 3;
    # ties (7, 7) in domain order
    domains = [
        ("corp.example", 7, 1),
        ("gmail.com", 7, 2),
        ("corp.example.co.uk", 5, 1),
        ("users.noreply.github.com", 2, 1),
        ("uni.example", 1, 1),
    ]
    assert compute(record, "email_domains") == rows(domains, 22)
    del domains[3]
    assert compute(record, "email_domains", exclude_bots=True) == rows(domains, 20)


def test_elephant_factor(record, compute):
    # with the map: Corp = Alice 7 + Bob 5 = 12; carol@gmail.com 4 and dave@gmail.com 3 are
    # independent individuals; uni.example 1; (the bot, on a public host, 2)
    # 50 % of 20 = 10 (of 22 = 11): Corp's 12 reach it alone
    assert compute(record, "elephant_factor", organizations=ORGS, exclude_bots=True) == [
        {"value": 1, "organizations": ["Corp"], "total_organizations": 4}
    ]
    assert compute(record, "elephant_factor", organizations=ORGS) == [
        {"value": 1, "organizations": ["Corp"], "total_organizations": 5}
    ]
    # 90 % of 20 = 18: Corp 12, + Carol 16, + Dave 19 -> 3 (were gmail.com one organisation,
    # 12 + 7 = 19 would make it 2)
    assert compute(
        record, "elephant_factor", organizations=ORGS, share=0.9, exclude_bots=True
    ) == [
        {"value": 3, "total_organizations": 4,
         "organizations": ["Corp", "independent: carol@gmail.com", "independent: dave@gmail.com"]}
    ]  # fmt: skip
    # without the map each domain is its own organisation: corp.example 7, corp.example.co.uk 5
    # -> 7 < 10, 12 >= 10 -> 2
    assert compute(record, "elephant_factor", exclude_bots=True) == [
        {"value": 2, "organizations": ["corp.example", "corp.example.co.uk"],
         "total_organizations": 5}
    ]  # fmt: skip


def test_organizational_diversity(record, compute):
    def rows(orgs, total):
        return [{"organization": o, "value": n, "authors": a, "share": approx(n / total)}
                for o, n, a in orgs]  # fmt: skip

    orgs = [
        ("Corp", 12, 2),  # Alice 7 (both addresses) + Bob 5
        ("independent: carol@gmail.com", 4, 1),
        ("independent: dave@gmail.com", 3, 1),
        ("uni.example", 1, 1),
    ]
    assert compute(record, "organizational_diversity", organizations=ORGS, exclude_bots=True) == (
        rows(orgs, 20)
    )
    with_bot = [*orgs[:3], (f"independent: {BOT_EMAIL}", 2, 1), orgs[3]]
    assert compute(record, "organizational_diversity", organizations=ORGS) == rows(with_bot, 22)
    assert compute(record, "organizational_diversity", exclude_bots=True) == rows(
        [("corp.example", 7, 1), ("corp.example.co.uk", 5, 1), *orgs[1:]], 20
    )
