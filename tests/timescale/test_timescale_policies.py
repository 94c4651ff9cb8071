"""TimescaleDB's policies on our hypertables: registered, runnable, retention and compression."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.timescale.pglite_bridge import PgliteError, PgliteSession

pytestmark = pytest.mark.timescale


def job_id(timescale_db: PgliteSession, proc_name: str, table: str) -> int:
    """Return the id of the *proc_name* policy job of *table*."""
    rows = timescale_db.query(
        "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = $1 AND hypertable_name = $2",
        [proc_name, table],
    )
    assert len(rows) == 1, f"expected one {proc_name} job on {table}, got {rows}"
    return int(rows[0]["job_id"])


def run_job(timescale_db: PgliteSession, job: int) -> None:
    """Run one policy job now (``CALL`` must be a statement of its own: it commits)."""
    timescale_db.execute(f"CALL run_job({int(job)})")


# -- (d) policies -----------------------------------------------------------------------------------


def test_policies_are_registered(timescale_db: PgliteSession) -> None:
    """The continuous-aggregate, compression and retention policies exist with our settings."""
    rows = timescale_db.query(
        "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs"
        " WHERE proc_name IN ('policy_refresh_continuous_aggregate', 'policy_compression',"
        " 'policy_retention')"
    )
    got = {
        (row["proc_name"], row["hypertable_name"]): {
            key: value
            for key, value in row["config"].items()
            if key in ("start_offset", "end_offset", "compress_after", "drop_after")
        }
        for row in rows
    }
    assert got == {
        ("policy_refresh_continuous_aggregate", "lot_occupancy_5m"): {
            "start_offset": "3 days",
            "end_offset": "00:05:00",
        },
        ("policy_refresh_continuous_aggregate", "lot_occupancy_1h"): {  # from the oldest sample
            "start_offset": None,
            "end_offset": "01:00:00",
        },
        ("policy_compression", "sensor_readings"): {"compress_after": "7 days"},
        ("policy_compression", "spot_status_changes"): {"compress_after": "14 days"},
        ("policy_compression", "lot_occupancy"): {"compress_after": "14 days"},
        ("policy_retention", "sensor_readings"): {"drop_after": "90 days"},
        ("policy_retention", "spot_status_changes"): {"drop_after": "730 days"},
        ("policy_retention", "device_presence_changes"): {"drop_after": "365 days"},
        ("policy_retention", "lot_occupancy"): {"drop_after": "90 days"},
        ("policy_retention", "gate_reads"): {"drop_after": "730 days"},
        ("policy_retention", "gate_passages"): {"drop_after": "730 days"},
        ("policy_retention", "gate_acks"): {"drop_after": "90 days"},
        ("policy_retention", "gate_events"): {"drop_after": "365 days"},
        ("policy_retention", "rejected_messages"): {"drop_after": "30 days"},
    }
    assert len(rows) == len(got)


def test_every_policy_job_runs(timescale_db: PgliteSession) -> None:
    """`CALL run_job(id)` runs each of our policies without error (PGlite has no scheduler)."""
    jobs = timescale_db.query(
        "SELECT job_id, proc_name, hypertable_name FROM timescaledb_information.jobs"
        " WHERE proc_name IN ('policy_refresh_continuous_aggregate', 'policy_compression',"
        " 'policy_retention') ORDER BY job_id"
    )
    assert len(jobs) == 14  # 9 of the sensor history (0085: hourly roll-up), 4 of the gates, 1 of refusals
    for job in jobs:
        try:
            run_job(timescale_db, job["job_id"])
        except PgliteError as exc:  # pragma: no cover - the message names the failing policy
            pytest.fail(f"{job['proc_name']} on {job['hypertable_name']}: {exc}")


def sensor_row(ts: datetime, device: str, seq: int) -> list[Any]:
    """Return the parameters of one sensor_readings INSERT."""
    return [ts, device, seq, "S-1", ts, "state", seq % 2 == 0]


INSERT_READING = (
    "INSERT INTO sensor_readings (ts, device_id, seq, spot_id, received_at, message, occupied)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


def chunks_of(timescale_db: PgliteSession, table: str) -> dict[str, bool]:
    """Return chunk name -> is_compressed for *table*."""
    rows = timescale_db.query(
        "SELECT chunk_name, is_compressed FROM timescaledb_information.chunks WHERE hypertable_name = $1",
        [table],
    )
    return {row["chunk_name"]: row["is_compressed"] for row in rows}


def chunk_holding(timescale_db: PgliteSession, table: str, ts: datetime) -> str:
    """Return the name of the chunk of *table* whose range holds *ts*."""
    rows = timescale_db.query(
        "SELECT chunk_name FROM timescaledb_information.chunks"
        " WHERE hypertable_name = $1 AND range_start <= $2 AND range_end > $2",
        [table, ts],
    )
    assert len(rows) == 1, rows
    return str(rows[0]["chunk_name"])


def test_retention_job_drops_old_chunk(timescale_db: PgliteSession) -> None:
    """The sensor_readings retention job drops a chunk 200 days old and keeps recent data."""
    old_ts = datetime.now(UTC) - timedelta(days=200)
    recent_ts = datetime.now(UTC) - timedelta(hours=1)
    timescale_db.execute(INSERT_READING, sensor_row(old_ts, "D-ret", 1))
    timescale_db.execute(INSERT_READING, sensor_row(recent_ts, "D-ret", 2))
    old_chunk = chunk_holding(timescale_db, "sensor_readings", old_ts)

    run_job(timescale_db, job_id(timescale_db, "policy_retention", "sensor_readings"))

    assert old_chunk not in chunks_of(timescale_db, "sensor_readings")
    rows = timescale_db.query("SELECT seq FROM sensor_readings WHERE device_id = 'D-ret'")
    assert rows == [{"seq": 2}]


def test_compression_job_compresses_old_chunk_and_keeps_uniqueness(timescale_db: PgliteSession) -> None:
    """The compression job compresses a 10-day-old chunk; (device_id, seq, ts) stays unique there."""
    day = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=10)
    readings = [(day + timedelta(seconds=17 * seq, microseconds=123456), seq) for seq in range(1, 5)]
    for ts, seq in readings:
        timescale_db.execute(INSERT_READING, sensor_row(ts, "D-cmp", seq))
    chunk = chunk_holding(timescale_db, "sensor_readings", day)
    assert chunks_of(timescale_db, "sensor_readings")[chunk] is False

    run_job(timescale_db, job_id(timescale_db, "policy_compression", "sensor_readings"))

    assert chunks_of(timescale_db, "sensor_readings")[chunk] is True
    stats = timescale_db.query(
        "SELECT compression_status FROM chunk_compression_stats('sensor_readings') WHERE chunk_name = $1",
        [chunk],
    )
    assert stats == [{"compression_status": "Compressed"}]
    got = timescale_db.query("SELECT ts, seq FROM sensor_readings WHERE device_id = 'D-cmp' ORDER BY seq")
    assert [(row["ts"], row["seq"]) for row in got] == readings  # microseconds survive too

    ts, seq = readings[0]
    with pytest.raises(PgliteError) as caught:
        timescale_db.execute(INSERT_READING, sensor_row(ts, "D-cmp", seq))
    assert caught.value.sqlstate == "23505"
    # Raised by TimescaleDB's check against the compressed batch: the chunk's copy of our constraint
    # is named in the message (the error carries no separate constraint field there).
    assert "one_reading_per_device_seq_ts" in str(caught.value)
    assert timescale_db.execute(INSERT_READING + " ON CONFLICT DO NOTHING", sensor_row(ts, "D-cmp", seq)) == 0
    assert (
        timescale_db.execute(
            INSERT_READING + " ON CONFLICT (device_id, seq, ts) DO NOTHING", sensor_row(ts, "D-cmp", seq)
        )
        == 0
    )
    # A late reading that is new still goes into the compressed chunk.
    late = day + timedelta(minutes=30)
    assert timescale_db.execute(INSERT_READING + " ON CONFLICT DO NOTHING", sensor_row(late, "D-cmp", 9)) == 1
    assert timescale_db.scalar("SELECT count(*) FROM sensor_readings WHERE device_id = 'D-cmp'") == 5
