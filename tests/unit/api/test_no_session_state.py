"""The API's pool skips asyncpg's reset round trip: nothing in the API may leave session state behind."""

from __future__ import annotations

import re
from pathlib import Path

import billing
import guidance_api
import parking_core

# What runs on the API's pool: its own modules, billing's, and the core's adapters (migrations run
# on their own connection in `parking-db`, never through the pool).
SOURCES = sorted(
    [
        *Path(guidance_api.__file__).parent.rglob("*.py"),
        *Path(billing.__file__).parent.rglob("*.py"),
        *(
            p
            for p in (Path(parking_core.__file__).parent / "adapters").glob("*.py")
            if p.name != "migrate_pg.py"
        ),
    ]
)
# What the default reset would undo: session settings, listeners, session advisory locks, cursors.
# SQL is written in capitals in this code base (prose such as "Set a lot's policy" is not SQL).
SESSION_STATE = re.compile(
    r"""["']\s*(?:SET\s+(?!LOCAL)|LISTEN\s|DECLARE\s)|add_listener|pg_advisory_lock\(|set_config\([^)]*false"""
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
