"""``python -m parking_core.devtools.purity``: the pure domain reads no clock and no environment.

import-linter (``lint-imports``) keeps database, MQTT, HTTP and OS libraries out of the pure modules;
this check covers what an import rule cannot see: ``datetime.now()``, ``date.today()`` and friends.
The pure modules are the ``source_modules`` of the forbidden contract in ``pyproject.toml``.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Calls that read the clock or the environment: time must come in as an argument.
CLOCK_CALLS = frozenset({"now", "utcnow", "today", "time", "monotonic", "perf_counter", "getenv"})
CLOCK_OWNERS = frozenset({"datetime", "date", "time", "os"})


def pure_modules(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """Return the modules the forbidden contract declares pure."""
    config = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]["contracts"]
    forbidden = [c for c in config if c["type"] == "forbidden" and "pure" in c["name"]]
    return [m for c in forbidden for m in c["source_modules"]]


def module_files(module: str) -> list[Path]:
    """Return the source files of *module* (a package's files, recursively)."""
    path = ROOT.joinpath(*module.split("."))
    if path.is_dir():
        return sorted(path.rglob("*.py"))
    return [path.with_suffix(".py")]


def clock_reads(source: str) -> Iterator[tuple[int, str]]:
    """Yield (line, call) for every ``owner.call()`` that reads the clock or the environment."""
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in CLOCK_CALLS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in CLOCK_OWNERS
        ):
            yield node.lineno, f"{node.func.value.id}.{node.func.attr}()"


def main(argv: Sequence[str] | None = None) -> int:
    """Print every clock read in a pure module; exit 1 if there is one."""
    parser = argparse.ArgumentParser(prog="python -m parking_core.devtools.purity", description=__doc__)
    parser.parse_args(argv)
    found = 0
    for module in pure_modules():
        for path in module_files(module):
            for line, call in clock_reads(path.read_text()):
                print(f"{path.relative_to(ROOT)}:{line}: {call} in a pure module: pass the time in")
                found += 1
    print(f"purity: {found} clock read(s) in {len(pure_modules())} pure module(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
