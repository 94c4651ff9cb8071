"""Fixtures of the TimescaleDB tier: one PGlite (real TimescaleDB) for the tier, migrated once.

The tier skips when node or the pinned npm package is missing, except in CI (``CI`` set), where
that is a set-up error and fails instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from parking_core.adapters.migrations import Migration, SchemaMode, default_sql_dir, discover, upgrade
from tests.timescale.pglite_bridge import INSTALL_COMMAND, PgliteSession, bridge_problem


@dataclass(frozen=True)
class Migrated:
    """A PGlite database after ``upgrade(..., "on")``: the session, its mode and what was applied."""

    session: PgliteSession
    mode: SchemaMode
    applied: list[Migration]
    progress: list[str]


def require_bridge() -> None:
    """Skip (or, in CI, fail) when the bridge cannot run here."""
    problem = bridge_problem()
    if problem is None:
        return
    if os.environ.get("CI"):
        pytest.fail(
            f"TimescaleDB tier cannot run in CI: {problem} (set-up must run {INSTALL_COMMAND})", pytrace=False
        )
    pytest.skip(f"TimescaleDB tier needs node and the PGlite package: {problem}")


@pytest.fixture(scope="package")
def pglite() -> Iterator[PgliteSession]:
    """Start PGlite with TimescaleDB (one for the tier's modules: ~4 s and ~550 MB)."""
    require_bridge()
    with PgliteSession() as session:
        yield session


@pytest.fixture(scope="package")
def migrated(pglite: PgliteSession) -> Migrated:
    """Apply every migration in TimescaleDB mode (``PARKING_TIMESCALE=on``)."""
    progress: list[str] = []
    mode, applied = upgrade(pglite, discover(default_sql_dir()), "on", progress.append)
    return Migrated(pglite, mode, applied, progress)


@pytest.fixture
def timescale_db(migrated: Migrated) -> PgliteSession:
    """The migrated PGlite session (tests elsewhere get an asyncpg connection as ``db``)."""
    return migrated.session
