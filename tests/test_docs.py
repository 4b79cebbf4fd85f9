"""docs/reliability.md maps every bad input and fault to the tests that prove its behaviour:
each test it names must exist, so that the page cannot point at a test renamed or removed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_REFERENCE = re.compile(r"`((?:test_\w+\.py)?(?:::test_\w+)?)`")


def referenced_tests(text: str) -> list[tuple[str, str | None]]:
    """(file, test or None) for each reference; ``::name`` continues the file named before."""
    found: list[tuple[str, str | None]] = []
    current = None
    for reference in _REFERENCE.findall(text):
        file, _, name = reference.partition("::")
        current = file or current
        assert current, f"{reference} names no file"
        found.append((current, name or None))
    return found


def test_every_test_named_in_the_reliability_page_exists() -> None:
    references = referenced_tests((ROOT / "docs" / "reliability.md").read_text())
    assert len(references) > 50
    missing = []
    for file, name in references:
        path = ROOT / "tests" / file
        if not path.is_file() or (name and f"def {name}(" not in path.read_text()):
            missing.append(f"{file}::{name}" if name else file)
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"
