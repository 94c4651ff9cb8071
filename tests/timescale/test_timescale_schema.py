"""The schema in TimescaleDB mode on real TimescaleDB (PGlite in Node): migrations, hypertables, geo.

Applies every migration with ``PARKING_TIMESCALE=on`` and checks what was recorded, the hypertables
and their chunk intervals, the nearest-lot search (cube + earthdistance) and the bridge itself.
"""

from __future__ import annotations

import math

import pytest

from parking_core.adapters.migrations import SchemaMode, default_sql_dir, discover, upgrade
from tests.timescale.conftest import Migrated, require_bridge
from tests.timescale.pglite_bridge import BridgeError, PgliteError, PgliteSession

pytestmark = pytest.mark.timescale

HISTORY_HYPERTABLES = {
    "sensor_readings": "1 day",
    "spot_status_changes": "7 days",
    "device_presence_changes": "30 days",
    "lot_occupancy": "7 days",
    "gate_reads": "30 days",
    "gate_passages": "30 days",
    "gate_acks": "30 days",
    "gate_events": "30 days",
    "plate_lookups": "30 days",
}
REFUSALS_HYPERTABLE = ("rejected_messages", "received_at", "1 day")  # kept 30 days (0020)
EARTH_RADIUS_M = 6378168.0  # earthdistance's earth()


# -- (a) migrations ------------------------------------------------------------------------------


def test_upgrade_applies_every_migration_in_timescale_mode(migrated: Migrated) -> None:
    """`upgrade(..., "on")` picks TimescaleDB mode, runs each migration's .timescale.sql, records it."""
    migrations = discover(default_sql_dir())
    timescale_db = migrated.session
    assert migrated.mode is SchemaMode.TIMESCALE
    assert [m.version for m in migrated.applied] == [m.version for m in migrations]
    assert timescale_db.scalar("SELECT mode FROM schema_info") == "timescale"
    assert timescale_db.scalar("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'") == (
        timescale_db.timescaledb_version
    )
    recorded = {row["version"]: row for row in timescale_db.query("SELECT * FROM schema_migrations")}
    for migration in migrations:
        row = recorded[migration.version]
        assert row["files"] == [p.name for p in migration.files_for(SchemaMode.TIMESCALE)]
        assert row["checksum"] == migration.checksum(SchemaMode.TIMESCALE)
    assert "0002_history.timescale.sql" in recorded[2]["files"]


def test_second_upgrade_applies_nothing(migrated: Migrated) -> None:
    """Running the upgrade again is a no-op that keeps TimescaleDB mode."""
    mode, applied = upgrade(migrated.session, discover(default_sql_dir()), "on")
    assert mode is SchemaMode.TIMESCALE
    assert applied == []
    mode, applied = upgrade(migrated.session, discover(default_sql_dir()), "auto")
    assert (mode, applied) == (SchemaMode.TIMESCALE, [])


# -- (b) hypertables -------------------------------------------------------------------------------


def test_history_tables_are_hypertables(timescale_db: PgliteSession) -> None:
    """The history tables are hypertables with the chunk intervals and compression we set."""
    rows = timescale_db.query(
        "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
        " WHERE hypertable_schema = 'public'"
    )
    assert {row["hypertable_name"] for row in rows} == {*HISTORY_HYPERTABLES, REFUSALS_HYPERTABLE[0]}
    compressed = {row["hypertable_name"] for row in rows if row["compression_enabled"]}
    assert compressed == {"sensor_readings", "spot_status_changes", "lot_occupancy"}
    dims = timescale_db.query(
        "SELECT hypertable_name, column_name, time_interval::text AS every"
        " FROM timescaledb_information.dimensions WHERE hypertable_schema = 'public'"
    )
    assert {row["hypertable_name"]: (row["column_name"], row["every"]) for row in dims} == {
        table: ("ts", every) for table, every in HISTORY_HYPERTABLES.items()
    } | {REFUSALS_HYPERTABLE[0]: REFUSALS_HYPERTABLE[1:]}
    caggs = timescale_db.query(
        "SELECT view_name, hypertable_name FROM timescaledb_information.continuous_aggregates"
        " ORDER BY view_name"
    )
    assert caggs == [
        {"view_name": "lot_occupancy_1h", "hypertable_name": "lot_occupancy"},
        {"view_name": "lot_occupancy_5m", "hypertable_name": "lot_occupancy"},
    ]


# -- (e) nearest lots ---------------------------------------------------------------------------------

LOTS = {  # lot_id: (lat, lon)
    "L-people-sq": (31.2304, 121.4737),
    "L-bund": (31.2400, 121.4900),
    "L-lujiazui": (31.2397, 121.4998),
    "L-hongqiao": (31.1979, 121.3363),
    "L-beijing": (39.9042, 116.4074),
}
NEAREST = """
SELECT lot_id, earth_distance(earth_point, ll_to_earth($1, $2)) AS meters
FROM lots
ORDER BY earth_point <-> ll_to_earth($1, $2)
LIMIT $3
"""
WITHIN = """
SELECT lot_id FROM lots
WHERE earth_box(ll_to_earth($1, $2), $3) @> earth_point
  AND earth_distance(earth_point, ll_to_earth($1, $2)) <= $3
ORDER BY lot_id
"""


def great_circle_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Return the great-circle distance in metres on earthdistance's sphere."""
    (lat1, lon1), (lat2, lon2) = ((math.radians(x), math.radians(y)) for x, y in (a, b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def test_nearest_lots(timescale_db: PgliteSession) -> None:
    """Lots come back nearest first by `earth_point <-> ll_to_earth`, with correct distances."""
    timescale_db.execute(
        "INSERT INTO districts (district_id, name) VALUES ('D-geo', 'Geo') ON CONFLICT DO NOTHING"
    )
    for lot_id, (lat, lon) in LOTS.items():
        timescale_db.execute(
            "INSERT INTO lots (lot_id, district_id, name, kind, lat, lon, capacity)"
            " VALUES ($1, 'D-geo', $1, 'off_street', $2, $3, 100)",
            [lot_id, lat, lon],
        )
    here = (31.2310, 121.4760)
    rows = timescale_db.query(NEAREST, [here[0], here[1], 10])
    expected = sorted(LOTS, key=lambda lot: great_circle_m(here, LOTS[lot]))
    assert [row["lot_id"] for row in rows] == expected
    for row in rows:
        assert row["meters"] == pytest.approx(great_circle_m(here, LOTS[row["lot_id"]]), rel=1e-9)
    assert rows[0]["meters"] < 300
    assert rows[-1]["lot_id"] == "L-beijing"
    assert rows[-1]["meters"] == pytest.approx(1_068_000, rel=0.01)

    assert [row["lot_id"] for row in timescale_db.query(WITHIN, [here[0], here[1], 3000.0])] == [
        "L-bund",
        "L-lujiazui",
        "L-people-sq",
    ]
    # The GiST index on earth_point serves the nearest-first order (KNN).
    timescale_db.execute("SET enable_seqscan = off")
    try:
        plan = timescale_db.query("EXPLAIN " + NEAREST, [here[0], here[1], 3])
    finally:
        timescale_db.execute("RESET enable_seqscan")
    assert "lots_earth_point" in "\n".join(str(row["QUERY PLAN"]) for row in plan)


# -- the bridge itself --------------------------------------------------------------------------------


def test_sql_error_keeps_the_bridge_alive(timescale_db: PgliteSession) -> None:
    """A failing statement raises PgliteError with its SQLSTATE; the session keeps working."""
    with pytest.raises(PgliteError) as caught:
        timescale_db.query("SELECT 1 / 0")
    assert caught.value.sqlstate == "22012"
    assert timescale_db.query("SELECT 41 + 1 AS answer") == [{"answer": 42}]


def test_failed_migration_rolls_back(timescale_db: PgliteSession) -> None:
    """`run_in_transaction` is atomic: a failing script leaves no table and no record behind."""
    with pytest.raises(PgliteError):
        timescale_db.run_in_transaction(
            "CREATE TABLE rollback_probe (a int); INSERT INTO rollback_probe VALUES (1); SELECT 1 / 0;",
            (9999, "probe", ["9999_probe.sql"], "0" * 16),
        )
    assert timescale_db.scalar("SELECT to_regclass('rollback_probe')") is None
    assert 9999 not in timescale_db.versions()
    assert timescale_db.scalar("SELECT 1") == 1


def test_hung_request_times_out() -> None:
    """A request that does not answer in time raises BridgeError and kills the bridge (no CI hang)."""
    require_bridge()
    with PgliteSession(request_timeout=1.0) as session:
        with pytest.raises(BridgeError, match="no answer"):
            session.query("SELECT pg_sleep(5)")
        with pytest.raises(BridgeError, match="not running"):
            session.query("SELECT 1")
