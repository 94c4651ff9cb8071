"""``parking-db``: apply migrations and tell which schema mode (plain or TimescaleDB) is active."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import psycopg

from parking_core.adapters.migrate_pg import database_status, upgrade_database
from parking_core.adapters.settings import Settings
from parking_core.devtools.embedded_defaults import embedded_database


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parking-db",
        description="Manage the parking database schema. Uses PARKING_DATABASE_URL, or the embedded "
        "PostgreSQL under PARKING_DATA_DIR (default ./var) when it is not set.",
    )
    parser.add_argument("--database-url", help="override PARKING_DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("upgrade", help="apply pending migrations (safe to run again)")
    up.add_argument(
        "--timescale",
        choices=["auto", "on", "off"],
        help="use TimescaleDB: auto (if installed; default), on (required), off",
    )
    sub.add_parser("status", help="show the schema mode and the applied and pending migrations")
    create = sub.add_parser("create-database", help="create a database on the server if missing")
    create.add_argument("name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``parking-db`` command."""
    args = _parser().parse_args(argv)
    settings = Settings()
    with embedded_database(settings, args.database_url) as dsn:
        try:
            return _run(args, settings, dsn)
        except psycopg.OperationalError as exc:
            print(f"parking-db: cannot reach the database: {exc}", file=sys.stderr)
            return 2


def _run(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    if args.command == "upgrade":
        wanted = args.timescale or settings.timescale.value
        mode, applied = upgrade_database(dsn, wanted, progress=lambda m: print(m, flush=True))
        print(f"schema up to date ({mode.value} mode; {len(applied)} migration(s) applied now)")
        return 0
    if args.command == "create-database":
        with psycopg.connect(dsn, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.name,))
            if exists.fetchone() is None:
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(args.name)))
                print(f"created database {args.name}")
            else:
                print(f"database {args.name} exists")
        return 0
    status = database_status(dsn)
    if status.mode is None:
        print("mode: none (no migrations applied yet; run `parking-db upgrade`)")
    else:
        detail = (
            f"TimescaleDB {status.timescaledb_version}"
            if status.timescaledb_version
            else (
                "plain PostgreSQL: ordinary tables, date_bin views instead of hypertables and "
                "continuous aggregates"
            )
        )
        print(f"mode: {status.mode.value} ({detail})")
    for version, name, applied_at in status.applied:
        print(f"applied  {version:04d}_{name}  {applied_at}")
    for migration in status.pending:
        print(f"pending  {migration.version:04d}_{migration.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
