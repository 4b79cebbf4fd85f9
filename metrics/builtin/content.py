"""Content at the head: languages and code complexity, read from the blobs themselves.

Both fan out over files (``ctx.map_files``), so they scale with the number of workers.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, Literal

from metrics.api import Shape, metric
from metrics.builtin._common import count_lines, is_binary

LANGUAGES: dict[str, str] = {
    ".c": "C", ".h": "C", ".cc": "C++", ".cpp": "C++", ".cxx": "C++", ".hh": "C++",
    ".hpp": "C++", ".hxx": "C++", ".cs": "C#", ".go": "Go", ".rs": "Rust", ".java": "Java",
    ".kt": "Kotlin", ".kts": "Kotlin", ".scala": "Scala", ".swift": "Swift", ".m": "Objective-C",
    ".mm": "Objective-C++", ".py": "Python", ".pyi": "Python", ".rb": "Ruby", ".php": "PHP",
    ".pl": "Perl", ".pm": "Perl", ".t": "Perl", ".js": "JavaScript", ".mjs": "JavaScript",
    ".cjs": "JavaScript", ".jsx": "JavaScript", ".ts": "TypeScript", ".tsx": "TypeScript",
    ".vue": "Vue", ".lua": "Lua", ".r": "R", ".jl": "Julia", ".hs": "Haskell", ".ml": "OCaml",
    ".ex": "Elixir", ".exs": "Elixir", ".erl": "Erlang", ".clj": "Clojure", ".dart": "Dart",
    ".zig": "Zig", ".f90": "Fortran", ".f": "Fortran", ".sh": "Shell", ".bash": "Shell",
    ".zsh": "Shell", ".ps1": "PowerShell", ".tcl": "Tcl", ".sql": "SQL", ".html": "HTML",
    ".htm": "HTML", ".css": "CSS", ".scss": "SCSS", ".less": "Less", ".md": "Markdown",
    ".rst": "reStructuredText", ".adoc": "AsciiDoc", ".txt": "Text", ".tex": "TeX",
    ".json": "JSON", ".yaml": "YAML", ".yml": "YAML", ".toml": "TOML", ".xml": "XML",
    ".ini": "INI", ".cfg": "INI", ".mk": "Makefile", ".cmake": "CMake", ".po": "Gettext",
    ".proto": "Protocol Buffers", ".asm": "Assembly", ".s": "Assembly", ".S": "Assembly",
}  # fmt: skip
FILENAMES: dict[str, str] = {
    "Makefile": "Makefile", "GNUmakefile": "Makefile", "makefile": "Makefile",
    "Dockerfile": "Dockerfile", "CMakeLists.txt": "CMake", "Rakefile": "Ruby", "Gemfile": "Ruby",
}  # fmt: skip


def language_of(path: str) -> str:
    pure = PurePosixPath(path)
    if pure.name in FILENAMES:
        return FILENAMES[pure.name]
    return LANGUAGES.get(pure.suffix) or LANGUAGES.get(pure.suffix.lower()) or "Other"


def language_lines(path: str, content: bytes) -> tuple[str, int] | None:
    """(language, lines) of a text file; runs in the workers."""
    if is_binary(content):
        return None
    return language_of(path), count_lines(content)


@metric(version=1, unit="lines", shape=Shape.TABLE, entity="language")
def language_distribution(ctx) -> list[dict[str, Any]]:
    """Programming Language Distribution: files and lines per language at the head."""
    totals: dict[str, dict[str, int]] = {}
    for result in ctx.map_files(language_lines, ctx.tree()):
        if result is None:
            continue
        language, lines = result
        entry = totals.setdefault(language, {"files": 0, "lines": 0})
        entry["files"] += 1
        entry["lines"] += lines
    all_lines = sum(e["lines"] for e in totals.values())
    rows = [
        {"language": lang, "files": e["files"], "value": e["lines"],
         "share": e["lines"] / all_lines if all_lines else 0.0}
        for lang, e in totals.items()
    ]  # fmt: skip
    return sorted(rows, key=lambda r: (-r["value"], r["language"]))


def function_complexity(path: str, content: bytes) -> list[dict[str, Any]] | None:
    """Cyclomatic complexity of each function in one source file (lizard); runs in workers."""
    from lizard import analyze_file
    from lizard_languages import get_reader_for

    if is_binary(content) or get_reader_for(path) is None:
        return None
    code = content.decode("utf-8", "replace")
    info = analyze_file.analyze_source_code(path, code)
    return [
        {"path": path, "function": f.name, "line": f.start_line, "value": f.cyclomatic_complexity,
         "nloc": f.nloc}
        for f in info.function_list
    ]  # fmt: skip


@metric(version=1, unit="cyclomatic complexity", shape=Shape.TABLE, entity="file")
def complexity(
    ctx, *, by: Literal["file", "function"] = "file", max_file_bytes: int = 1_000_000
) -> list[dict[str, Any]]:
    """Cyclomatic complexity (McCabe, via lizard) per file or per function at the head."""
    entries = [e for e in ctx.tree() if e.size <= max_file_bytes]
    rows = []
    for functions in ctx.map_files(function_complexity, entries):
        if not functions:
            continue
        if by == "function":
            rows.extend(functions)
            continue
        values = [f["value"] for f in functions]
        rows.append({
            "path": functions[0]["path"], "functions": len(functions), "value": sum(values),
            "max": max(values), "average": sum(values) / len(values),
        })  # fmt: skip
    return sorted(rows, key=lambda r: (-r["value"], r["path"], r.get("line", 0)))
