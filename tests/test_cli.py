"""The ``repometer`` command line, run for real in subprocesses, over SQLite and PostgreSQL.

Every expected number comes from git itself (``git rev-list``, ``git log --numstat -M``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from repometer.targets import parse_target

if TYPE_CHECKING:
    from conftest import GitRepo

DOCUMENTED_FIELDS = {
    "id", "name", "url", "head", "commits", "merges", "authors",
    "lines_added", "lines_deleted", "last_ingested",
}  # fmt: skip

_SCRIPT = Path(sys.executable).with_name("repometer")
COMMAND = (
    [str(_SCRIPT)]
    if _SCRIPT.exists()
    else [sys.executable, "-c", "from app.cli import main; main()"]
)


# -- running the CLI ---------------------------------------------------------------------------


@dataclass
class Cli:
    """Runs ``repometer`` with a clean environment: no REPOMETER_* or GIT_* from the caller."""

    home: Path | None
    db: str | None
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)

    def __call__(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        argv = [*COMMAND]
        if self.home is not None:
            argv += ["--home", str(self.home)]
        if self.db is not None:
            argv += ["--db", self.db]
        return subprocess.run(
            [*argv, *args],
            cwd=self.cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        proc = self(*args, env=env)
        assert proc.returncode == 0, f"repometer {' '.join(args)}: {proc.stderr}"
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def repos(self, env: dict[str, str] | None = None) -> list[dict]:
        return json.loads(self.ok("repos", "--format", "json", env=env).stdout)


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPOMETER_", "GIT_"))}
    # the default data directory (platformdirs) must never be the real user's
    env.update(HOME=str(tmp_path / "user-home"), XDG_DATA_HOME=str(tmp_path / "user-data"))
    env.pop("COLUMNS", None)
    return env


@pytest.fixture
def cli(tmp_path: Path, db_url: str) -> Cli:
    """The CLI over each database backend available."""
    return Cli(home=tmp_path / "home", db=db_url, cwd=tmp_path, env=clean_env(tmp_path))


@pytest.fixture
def sqlite_cli(tmp_path: Path) -> Cli:
    """The CLI over SQLite only, for behaviour that does not depend on the database (each run
    of the CLI costs most of a second, so those tests are not repeated for every backend)."""
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    return Cli(home=tmp_path / "home", db=db, cwd=tmp_path, env=clean_env(tmp_path))


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- repositories and git's own answers --------------------------------------------------------


def git_truth(repo: GitRepo) -> dict:
    """What git itself says about the history reachable from HEAD."""
    added = deleted = 0
    for line in repo.git("log", "--numstat", "-M", "--no-merges", "--format=").splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or parts[0] == "-":  # a binary file: "-\t-\tpath"
            continue
        added += int(parts[0])
        deleted += int(parts[1])
    return {
        "head": repo.git("rev-parse", "HEAD"),
        "commits": int(repo.git("rev-list", "--count", "HEAD")),
        "merges": int(repo.git("rev-list", "--merges", "--count", "HEAD")),
        "authors": len(set(repo.git("log", "--format=%aE").splitlines())),
        "lines_added": added,
        "lines_deleted": deleted,
    }


def build_history(repo: GitRepo) -> None:
    """Two author emails, a binary file, a rename with edits, and a merge commit."""
    bob = {"GIT_AUTHOR_NAME": "Bob", "GIT_AUTHOR_EMAIL": "bob@example.org"}
    repo.write("README", "hello\n")
    repo.write("a.txt", "".join(f"line {i}\n" for i in range(30)))
    repo.write("logo.bin", bytes(range(256)) * 8)
    repo.commit("initial", date="2024-01-01T10:00:00+0000")
    repo.write("a.txt", "".join(f"line {i}\n" for i in range(25)) + "new\nnewer\n")
    repo.write("logo.bin", bytes(reversed(range(256))) * 8)
    repo.commit("edit", date="2024-01-02T10:00:00+0000", **bob)
    repo.git("checkout", "-q", "-b", "feature")
    repo.git("mv", "a.txt", "docs-a.txt")
    repo.write("docs-a.txt", "".join(f"line {i}\n" for i in range(25)) + "new\nchanged\n")
    repo.commit("rename", date="2024-01-03T10:00:00+0000")
    repo.git("checkout", "-q", "main")
    repo.write("README", "hello\nworld\n")
    repo.commit("readme", date="2024-01-04T10:00:00+0000", **bob)
    repo.git("merge", "-q", "--no-ff", "-m", "merge feature", "feature")
    repo.write("README", "world\n")
    repo.commit("trim", date="2024-01-05T10:00:00+0000")


def fast_history(repo: GitRepo, count: int) -> None:
    """``count`` commits written at once with git fast-import, then checked out."""
    chunks = []
    for i in range(1, count + 1):
        data = "".join(f"row {j}\n" for j in range(i % 17 + 1))
        message = f"commit {i}\n"
        chunks.append(
            f"commit refs/heads/main\n"
            f"author A{i % 3} <a{i % 3}@example.org> {1_700_000_000 + i * 60} +0000\n"
            f"committer C <c@example.org> {1_700_000_000 + i * 60} +0000\n"
            f"data {len(message)}\n{message}"
            f"M 644 inline f{i % 7}.txt\ndata {len(data)}\n{data}\n"
        )
    repo.git("fast-import", "--quiet", input="".join(chunks).encode())
    repo.git("reset", "-q", "--hard", "main")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- tests -------------------------------------------------------------------------------------


def test_add_reads_local_repositories_in_place_and_only_once(
    sqlite_cli: Cli, make_repo, tmp_path: Path
) -> None:
    cli = sqlite_cli
    work: GitRepo = make_repo("work")
    work.write("f.txt", "x\n")
    work.commit("one")
    bare: GitRepo = make_repo("bare.git", bare=True)
    work.git("push", "-q", str(bare.path), "main")
    assert cli.cwd == bare.path.parent

    assert "added work" in cli.ok("add", str(work.path)).stderr
    assert "added bare" in cli.ok("add", str(bare.path)).stderr
    # the same repositories under other spellings: relative, via the .git directory, with a
    # trailing slash
    for spelling in ["work/.git/", "bare.git/"]:
        again = cli.ok("add", spelling)
        assert "already registered" in again.stderr, (spelling, again.stderr)

    listed = cli.repos()
    assert sorted(r["name"] for r in listed) == ["bare", "work"]
    by_name = {r["name"]: r for r in listed}
    assert by_name["work"]["url"] == str(work.path.resolve())
    assert by_name["bare"]["url"] == str(bare.path.resolve())
    assert by_name["work"]["id"] == parse_target(str(work.path)).id
    mirrors = tmp_path / "home" / "mirrors"
    assert not mirrors.exists() or list(mirrors.iterdir()) == []  # read in place, never copied


def test_run_reports_git_s_own_numbers(cli: Cli, make_repo, db_url: str) -> None:
    repo: GitRepo = make_repo("project")
    build_history(repo)
    truth = git_truth(repo)
    assert truth["merges"] == 1 and truth["authors"] == 2  # the history is what it should be
    assert "-\t-\tlogo.bin" in repo.git("log", "--numstat", "--format=")
    assert "=>" in repo.git("log", "--numstat", "-M", "--format=")
    empty: GitRepo = make_repo("empty")
    other: GitRepo = make_repo("other")
    other.commit("one")

    run = cli.ok("run", str(repo.path))
    assert "project: 6 commits added" in run.stderr and "project" in run.stdout
    cli.ok("run", str(empty.path))  # an empty repository is not an error
    # an unknown --ref is refused, and the failed add registers nothing (see the listing)
    assert_one_line_error(cli("add", "--ref", "nosuchref", str(other.path)), "nosuchref")

    # the database named by the environment instead of --db
    listed = Cli(home=cli.home, db=None, cwd=cli.cwd, env=cli.env).repos(
        env={"REPOMETER_DB_URL": db_url}
    )
    assert [r["name"] for r in listed] == ["empty", "project"]
    entry = listed[1]
    assert DOCUMENTED_FIELDS <= set(entry)
    assert {k: entry[k] for k in truth} == truth
    assert entry["url"] == str(repo.path.resolve())
    assert entry["id"] == parse_target(str(repo.path)).id
    assert datetime.fromisoformat(entry["last_ingested"])

    nothing = listed[0]
    assert DOCUMENTED_FIELDS <= set(nothing)
    assert nothing["head"] is None
    counts = truth.keys() - {"head"}
    assert {k: nothing[k] for k in counts} == dict.fromkeys(counts, 0)


def test_ingest_all_by_name_and_by_id(sqlite_cli: Cli, make_repo) -> None:
    cli = sqlite_cli
    alpha: GitRepo = make_repo("alpha")
    fast_history(alpha, 400)
    beta: GitRepo = make_repo("beta")
    build_history(beta)
    cli.ok("add", str(alpha.path))
    cli.ok("add", str(beta.path))

    everything = cli.ok("ingest")
    assert "commits/s" in everything.stderr, everything.stderr
    assert "alpha: 400 commits added" in everything.stderr
    assert f"beta: {git_truth(beta)['commits']} commits added" in everything.stderr
    listed = {r["name"]: r for r in cli.repos()}
    for repo in (alpha, beta):
        truth = git_truth(repo)
        assert {k: listed[repo.path.name][k] for k in truth} == truth

    alpha.write("late.txt", "late\n")
    alpha.commit("late")
    beta.write("late.txt", "late\nlater\n")
    beta.commit("late")
    by_name = cli.ok("ingest", "alpha")
    assert "alpha: 1 commits added" in by_name.stderr and "beta" not in by_name.stderr
    by_id = cli.ok("ingest", listed["beta"]["id"])
    assert "beta: 1 commits added" in by_id.stderr and "alpha" not in by_id.stderr
    listed = {r["name"]: r for r in cli.repos()}
    for repo in (alpha, beta):
        truth = git_truth(repo)
        assert {k: listed[repo.path.name][k] for k in truth} == truth


def test_errors_are_one_line_and_register_nothing(
    sqlite_cli: Cli, make_repo, tmp_path: Path
) -> None:
    cli = sqlite_cli
    work: GitRepo = make_repo("work")
    work.commit("one")
    (tmp_path / "plain").mkdir()
    pwned = tmp_path / "pwned"
    port = closed_port()
    assert cli.repos() == []  # creates the schema before the concurrent runs below

    cases: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
        (("run", str(tmp_path / "plain")), ("not a git repository",)),
        (("add", str(tmp_path / "missing")), ("not a git repository", "does not exist")),
        (("add", f"ext::sh -c touch% {pwned}"), ("refused",)),
        (("add", f"file://{work.path}"), ("refused", "file")),
        (("add", "--", "-oProxyCommand=x"), ("refused",)),
        (("add", "https://user:pass@example.com/r.git"), ("refused", "credentials")),
        (("add", f"git://127.0.0.1:{port}/x.git"), ("refused", "not a public address")),
        (("add", "https://nosuchhost.invalid/x.git"), ("refused", "could not resolve host")),
        (("ingest", "nosuchrepo"), ("unknown repository", "nosuchrepo")),
        (("add", "--ref", "nosuchref", str(work.path)), ("unknown revision", "nosuchref")),
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        # an option-like target without "--" is a usage error, not a crash
        pending_usage = pool.submit(cli, "add", "-oProxyCommand=x")
        results = list(pool.map(lambda case: cli(*case[0]), cases))
        usage = pending_usage.result()
    for (args, fragments), proc in zip(cases, results, strict=True):
        line = assert_one_line_error(proc, *fragments)
        assert proc.returncode == 1, (args, proc.returncode)
        assert "pass@" not in line  # a password is never echoed back

    assert usage.returncode == 2 and "Traceback" not in usage.stderr, usage.stderr
    assert usage.stderr.strip().splitlines()[-1].startswith("Error: No such option"), usage.stderr

    assert not pwned.exists()  # the ext:: payload never ran
    assert cli.repos() == []
    mirrors = tmp_path / "home" / "mirrors"
    assert not mirrors.exists() or list(mirrors.iterdir()) == []


def test_a_head_pointing_to_no_branch_is_one_line_naming_the_branches(
    sqlite_cli: Cli, make_repo
) -> None:
    """Reading such a repository as empty would hide its whole history. Found by a run, the
    error is the run's one line (Prefect's own report of the failed tasks stays off the
    console)."""
    repo: GitRepo = make_repo("dangling")
    fast_history(repo, 5)
    sqlite_cli.ok("add", str(repo.path))
    repo.git("symbolic-ref", "HEAD", "refs/heads/gone")
    proc = sqlite_cli("ingest", "dangling")
    line = assert_one_line_error(proc, "HEAD points to refs/heads/gone", "branches (main)")
    assert line.endswith("choose one as the ref"), line
    (listed,) = sqlite_cli.repos()
    assert (listed["status"], listed["commits"], listed["head"]) == ("failed", 0, None)


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("REPOMETER_WORKERS", "abc", "REPOMETER_WORKERS: Input should be a valid integer"),
        ("REPOMETER_MAX_MIRROR_SIZE", "huge", "REPOMETER_MAX_MIRROR_SIZE: could not parse"),
        (
            "REPOMETER_URL_SCHEMES",
            "https,ftp",
            "REPOMETER_URL_SCHEMES: Input should be 'https', 'ssh' or 'git' (got 'ftp')",
        ),
        ("REPOMETER_API_REGISTRATION_RATE", "often", "'often' is not a rate"),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_variable(
    sqlite_cli: Cli, variable: str, value: str, fragment: str
) -> None:
    proc = sqlite_cli("repos", env={variable: value})
    assert proc.returncode == 1
    assert fragment in assert_one_line_error(proc)


def test_home_option_and_environment_choose_the_data_directory(make_repo, tmp_path: Path) -> None:
    repo: GitRepo = make_repo("project")
    repo.commit("one")
    env = clean_env(tmp_path)
    by_option = Cli(home=tmp_path / "by-option", db=None, cwd=tmp_path, env=env)
    by_env = Cli(home=None, db=None, cwd=tmp_path,
                 env={**env, "REPOMETER_HOME": str(tmp_path / "by-env")})  # fmt: skip

    by_option.ok("run", str(repo.path))
    by_env.ok("add", str(repo.path))

    for home in (tmp_path / "by-option", tmp_path / "by-env"):
        database = home / "repometer.db"
        assert database.read_bytes()[:16] == b"SQLite format 3\x00", home
    assert [r["commits"] for r in by_env.repos()] == [0]  # added there, never ingested
    # --home wins over REPOMETER_HOME
    both = Cli(home=tmp_path / "by-option", db=None, cwd=tmp_path, env=by_env.env)
    assert [r["commits"] for r in both.repos()] == [1]
    assert not (tmp_path / "user-data").exists() and not (tmp_path / "user-home").exists()
