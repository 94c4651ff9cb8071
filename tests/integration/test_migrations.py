"""Migrations on a real PostgreSQL: from empty, twice, and the schema's own guards."""

from __future__ import annotations

import psycopg
import pytest

from parking_core.adapters.migrate_pg import database_status, upgrade_database
from parking_core.adapters.migrations import SchemaMode, default_sql_dir, discover
from parking_core.devtools.harness import ServiceHarness

pytestmark = pytest.mark.db


def test_upgrade_on_an_empty_database_then_again_applies_nothing_more(
    harness: ServiceHarness,
) -> None:
    """The first run applies every migration in plain mode; the second applies none."""
    url = harness.create_database("t_upgrade_twice")
    mode, first = upgrade_database(url)
    assert mode is SchemaMode.PLAIN
    assert [m.version for m in first] == [m.version for m in discover(default_sql_dir())]
    mode_again, second = upgrade_database(url)
    assert (mode_again, second) == (SchemaMode.PLAIN, [])
    status = database_status(url)
    assert status.mode is SchemaMode.PLAIN
    assert status.pending == []
    assert status.timescaledb_version is None


def test_asking_for_timescale_where_it_is_missing_is_refused(harness: ServiceHarness) -> None:
    """PARKING_TIMESCALE=on on a server without the extension fails before changing anything."""
    url = harness.create_database("t_ts_missing")
    with pytest.raises(RuntimeError, match="no timescaledb extension"):
        upgrade_database(url, "on")
    with psycopg.connect(url) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'lots'").fetchone()
    assert tables == (0,)


def test_a_failing_migration_leaves_no_trace(harness: ServiceHarness, tmp_path: object) -> None:
    """Each migration runs in a transaction: a broken one is neither half-applied nor recorded."""
    from pathlib import Path

    sql_dir = Path(str(tmp_path))
    (sql_dir / "0001_good.sql").write_text("CREATE TABLE good (x int);")
    (sql_dir / "0002_bad.sql").write_text("CREATE TABLE half (x int); SELECT no_such_function();")
    url = harness.create_database("t_bad_migration")
    with pytest.raises(psycopg.errors.UndefinedFunction):
        upgrade_database(url, sql_dir=sql_dir)
    with psycopg.connect(url) as conn:
        names = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
    assert "good" in names
    assert "half" not in names
    assert versions == [1]


def test_lot_counters_can_never_leave_zero_to_capacity(database_url: str) -> None:
    """The database itself refuses counters below 0 or above capacity."""
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO districts (district_id, name) VALUES ('d1', 'D1')")
        conn.execute(
            "INSERT INTO lots (lot_id, district_id, name, kind, lat, lon, capacity)"
            " VALUES ('l1', 'd1', 'L1', 'on_street', 34.75, 113.62, 2)"
        )
        conn.commit()
        for bad in ("free_count = -1", "free_count = 3", "free_count = 2, occupied_count = 1"):
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(f"UPDATE lots SET {bad} WHERE lot_id = 'l1'")
            conn.rollback()
