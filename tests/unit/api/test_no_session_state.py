"""The API's pool skips asyncpg's reset round trip: nothing in the API may leave session state behind."""

from __future__ import annotations

import re
from pathlib import Path

import guidance_api

SOURCES = sorted(Path(guidance_api.__file__).parent.glob("*.py"))
# What the default reset would undo: session settings, listeners, session advisory locks, cursors.
SESSION_STATE = re.compile(
    r"""["']\s*(?:SET\s+(?!LOCAL)|LISTEN\s|DECLARE\s)|add_listener|pg_advisory_lock\(|set_config\([^)]*false""",
    re.IGNORECASE,
)


def test_no_module_of_the_api_sets_session_state() -> None:
    """A statement starting with SET (not SET LOCAL), LISTEN, session locks or cursors would leak."""
    found = [
        f"{path.name}: {match.group(0)}"
        for path in SOURCES
        for match in SESSION_STATE.finditer(path.read_text())
    ]
    assert SOURCES
    assert found == []
