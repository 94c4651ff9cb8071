"""Numbered SQL migrations in ``sql/``: discovery, planning per mode, and applying them in order."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

MIGRATION_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<mode>timescale|plain))?\.sql$")
ADVISORY_LOCK_KEY = 727_274_001  # any constant: serialises concurrent `parking-db upgrade` runs

BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_info (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    mode text NOT NULL CHECK (mode IN ('plain', 'timescale')),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    files text[] NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


class SchemaMode(StrEnum):
    """Which flavour of the schema a database runs."""

    PLAIN = "plain"  # plain PostgreSQL: ordinary tables, date_bin views
    TIMESCALE = "timescale"  # hypertables, a continuous aggregate, retention and compression


class MigrationError(RuntimeError):
    """Raised when migrations cannot be planned or applied."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered migration: its common file and the files only one mode runs."""

    version: int
    name: str
    common: Path | None
    timescale: Path | None
    plain: Path | None

    def files_for(self, mode: SchemaMode) -> list[Path]:
        """Return the files this migration runs in *mode*, common part first."""
        extra = self.timescale if mode is SchemaMode.TIMESCALE else self.plain
        return [path for path in (self.common, extra) if path is not None]

    def checksum(self, mode: SchemaMode) -> str:
        """Return a digest of what this migration runs in *mode*."""
        digest = hashlib.sha256()
        for path in self.files_for(mode):
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]

    def script(self, mode: SchemaMode) -> str:
        """Return the SQL this migration runs in *mode*."""
        return "\n;\n".join(path.read_text() for path in self.files_for(mode))


def default_sql_dir() -> Path:
    """Return the ``sql/`` folder of this checkout."""
    return Path(__file__).resolve().parents[2] / "sql"


def discover(sql_dir: Path) -> list[Migration]:
    """Return the migrations in *sql_dir*, ordered by version."""
    found: dict[int, dict[str, Path | str]] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        match = MIGRATION_FILE.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: not a migration name (NNNN_name[.timescale|.plain].sql)")
        version = int(match["version"])
        entry = found.setdefault(version, {"name": match["name"]})
        if entry["name"] != match["name"]:
            raise MigrationError(f"version {version} has two names: {entry['name']} and {match['name']}")
        entry[match["mode"] or "common"] = path
    migrations = []
    for version in sorted(found):
        entry = found[version]
        parts = {key: value for key, value in entry.items() if isinstance(value, Path)}
        migrations.append(
            Migration(
                version,
                str(entry["name"]),
                parts.get("common"),
                parts.get("timescale"),
                parts.get("plain"),
            )
        )
    return migrations


def pending(migrations: Sequence[Migration], applied: set[int]) -> list[Migration]:
    """Return the migrations not applied yet, in order."""
    return [m for m in migrations if m.version not in applied]


class SqlSession(Protocol):
    """What the runner needs from a database connection (psycopg, or PGlite in tests)."""

    def run_script(self, sql: str) -> None:
        """Run several statements, outside any explicit transaction."""

    def run_in_transaction(self, sql: str, record: tuple[int, str, list[str], str]) -> None:
        """Run *sql* and insert *record* into schema_migrations, in one transaction."""

    def scalar(self, sql: str) -> object:
        """Return the first column of the first row of *sql*, or None."""

    def versions(self) -> set[int]:
        """Return the applied migration versions."""


def choose_mode(session: SqlSession, wanted: str) -> SchemaMode:
    """Return the database's recorded mode, or decide it (creating the extension) on first run."""
    recorded = session.scalar("SELECT mode FROM schema_info")
    if recorded is not None:
        mode = SchemaMode(str(recorded))
        if wanted == "on" and mode is SchemaMode.PLAIN:
            raise MigrationError("database was set up in plain mode; TimescaleDB mode was asked for")
        return mode
    available = session.scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'")
    if wanted == "on" and not available:
        raise MigrationError("PARKING_TIMESCALE=on but the server has no timescaledb extension")
    mode = SchemaMode.TIMESCALE if available and wanted != "off" else SchemaMode.PLAIN
    if mode is SchemaMode.TIMESCALE:
        session.run_script("CREATE EXTENSION IF NOT EXISTS timescaledb")
    session.run_script(f"INSERT INTO schema_info (mode) VALUES ('{mode.value}')")
    return mode


def upgrade(
    session: SqlSession,
    migrations: Sequence[Migration],
    wanted: str = "auto",
    progress: Callable[[str], None] = lambda _msg: None,
) -> tuple[SchemaMode, list[Migration]]:
    """Apply every pending migration, each in its own transaction; return the mode and what ran."""
    session.run_script(BOOKKEEPING)
    mode = choose_mode(session, wanted)
    todo = pending(migrations, session.versions())
    for migration in todo:
        files = [path.name for path in migration.files_for(mode)]
        progress(f"applying {migration.version:04d}_{migration.name} ({', '.join(files)})")
        session.run_in_transaction(
            migration.script(mode),
            (migration.version, migration.name, files, migration.checksum(mode)),
        )
    return mode, todo
