"""Apply migrations to a PostgreSQL server with psycopg, one transaction each, under an advisory lock."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from parking_core.adapters.migrations import (
    ADVISORY_LOCK_KEY,
    Migration,
    SchemaMode,
    default_sql_dir,
    discover,
    upgrade,
)


@dataclass
class PsycopgSession:
    """A :class:`~parking_core.adapters.migrations.SqlSession` over one autocommit psycopg connection."""

    conn: psycopg.Connection[tuple[object, ...]]

    def run_script(self, sql: str) -> None:
        """Run several statements."""
        self.conn.execute(sql.encode())

    def run_in_transaction(self, sql: str, record: tuple[int, str, list[str], str]) -> None:
        """Run *sql* and record it, atomically."""
        with self.conn.transaction():
            self.conn.execute(sql.encode())
            self.conn.execute(
                "INSERT INTO schema_migrations (version, name, files, checksum) VALUES (%s, %s, %s, %s)",
                record,
            )

    def scalar(self, sql: str) -> object:
        """Return one value."""
        try:
            row = self.conn.execute(sql.encode()).fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return None if row is None else row[0]

    def versions(self) -> set[int]:
        """Return the applied versions."""
        rows = self.conn.execute(b"SELECT version FROM schema_migrations").fetchall()
        return {int(str(row[0])) for row in rows}


@contextlib.contextmanager
def locked_session(dsn: str) -> Iterator[PsycopgSession]:
    """Yield a session holding the migrations advisory lock."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            yield PsycopgSession(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))


def upgrade_database(
    dsn: str,
    wanted: str = "auto",
    sql_dir: Path | None = None,
    progress: Callable[[str], None] = lambda _msg: None,
) -> tuple[SchemaMode, list[Migration]]:
    """Bring the database at *dsn* up to date; return its mode and the migrations applied now."""
    migrations = discover(sql_dir or default_sql_dir())
    with locked_session(dsn) as session:
        return upgrade(session, migrations, wanted, progress)


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """What `parking-db status` reports."""

    mode: SchemaMode | None
    applied: list[tuple[int, str, str]]
    pending: list[Migration]
    timescaledb_version: str | None


def database_status(dsn: str, sql_dir: Path | None = None) -> SchemaStatus:
    """Return the mode, the applied and the pending migrations of the database at *dsn*."""
    migrations = discover(sql_dir or default_sql_dir())
    with psycopg.connect(dsn, autocommit=True) as conn:
        session = PsycopgSession(conn)
        mode_value = session.scalar("SELECT mode FROM schema_info")
        applied: list[tuple[int, str, str]] = []
        if mode_value is not None:
            rows = conn.execute(
                "SELECT version, name, applied_at::text FROM schema_migrations ORDER BY version"
            ).fetchall()
            applied = [(int(str(v)), str(n), str(a)) for v, n, a in rows]
        ts_version = session.scalar("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    done = {version for version, _, _ in applied}
    return SchemaStatus(
        SchemaMode(str(mode_value)) if mode_value is not None else None,
        applied,
        [m for m in migrations if m.version not in done],
        None if ts_version is None else str(ts_version),
    )
