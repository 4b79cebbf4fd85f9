"""Who is behind a commit: automation accounts recognised from git data alone."""

from __future__ import annotations

import re

#: Accounts that commit on their own; matched against the local part of the email and the name.
KNOWN_BOTS = frozenset({
    "dependabot", "dependabot-preview", "renovate", "renovate-bot", "renovatebot",
    "github-actions", "greenkeeper", "greenkeeperio-bot", "snyk-bot", "pre-commit-ci",
    "codecov", "codecov-io", "mergify", "allcontributors", "all-contributors", "imgbot",
    "imgbotapp", "semantic-release-bot", "gitlab-bot", "bors", "k8s-ci-robot", "travis-ci",
    "jenkins", "azure-pipelines", "deepsource-autofix", "pyup-bot", "whitesource-bolt",
    "copybara-service", "lgtm-com", "stale", "sourcery-ai", "restyled-io", "autofix-ci",
})  # fmt: skip

_BOT_NAME = re.compile(r"\[bot\]|(?:^|[\s_.-])(?:bot|robot)$|^(?:bot|robot)[\s_.-]", re.I)
_BOT_EMAIL = re.compile(
    r"\[bot\]@|^(?:bot|robot|noreply|no-reply|ci|build|automation)@"
    r"|^\d+\+[^@]*\[bot\]@users\.noreply\.github\.com$|@bots?\.",
    re.I,
)


def _local_part(email: str) -> str:
    local = email.split("@", 1)[0].lower()
    # GitHub's "12345+login@users.noreply.github.com" form
    return local.split("+", 1)[1] if "+" in local and local.split("+", 1)[0].isdigit() else local


def is_bot(name: str | None, email: str | None) -> bool:
    """True for automation accounts: ``[bot]`` names, bot-style addresses, well-known bots."""
    name = (name or "").strip()
    email = (email or "").strip()
    if _BOT_NAME.search(name) or (email and _BOT_EMAIL.search(email)):
        return True
    candidates = {name.lower(), _local_part(email)} - {""}
    return any(c in KNOWN_BOTS or c.removesuffix("[bot]") in KNOWN_BOTS for c in candidates)
