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


# The live feed's one listener is a connection of its own (asyncpg.connect, closed when done), never
# one of the pool's: its LISTEN cannot leak into a request.
OWN_CONNECTION = {("live.py", "add_listener")}


def test_no_module_of_the_api_sets_session_state() -> None:
    """A statement starting with SET (not SET LOCAL), LISTEN, session locks or cursors would leak."""
    found = [
        f"{path.name}: {match.group(0)}"
        for path in SOURCES
        for match in SESSION_STATE.finditer(path.read_text())
        if (path.name, match.group(0)) not in OWN_CONNECTION
    ]
    assert SOURCES
    assert found == []


def test_the_live_feed_listens_on_a_connection_of_its_own() -> None:
    """The exception above holds only while the listener never comes from the pool."""
    api = Path(guidance_api.__file__).parent
    assert "acquire(" not in (api / "live.py").read_text()
    assert "LOT_WATCH].connect = lambda: asyncpg.connect(" in (api / "app.py").read_text()
