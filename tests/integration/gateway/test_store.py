"""The batch writer on a real PostgreSQL: idempotent history, newest-wins state, counters, silence."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from device_gateway.decode import Limits, PresenceReport, Rejection, SensorReading, decode
from device_gateway.messages import encode_state
from device_gateway.results import BatchResult
from device_gateway.store import write_batch
from device_gateway.sweeps import recount_lots, sample_active_lots, sweep_silent
from simulators.city import generate_city
from simulators.provision import provision_city

pytestmark = [pytest.mark.db]
P = "parking/v1"
T0 = datetime.now(UTC).replace(microsecond=0)
CITY = generate_city(1, 2, 4, prefix="st")
LOT = CITY.lots[0]


@pytest.fixture
async def conn(db: asyncpg.Connection, database_url: str) -> asyncpg.Connection:
    """Return the test's connection after provisioning the city."""
    await provision_city(database_url, CITY, heartbeat_interval_s=10, stale_after_s=30)
    return db


def reading(  # noqa: PLR0917
    index: int, seq: int, ts: datetime, occupied: bool, at: datetime = T0, device: str | None = None
) -> SensorReading | PresenceReport | Rejection:
    dev = device or LOT.spots[index].device_id
    return decode(f"{P}/sensors/{dev}/state", encode_state(seq, ts, occupied), P, at, Limits())


async def write(conn: asyncpg.Connection, items: Sequence[object], now: datetime = T0) -> BatchResult:
    readings = [x for x in items if isinstance(x, SensorReading)]
    presences = [x for x in items if isinstance(x, PresenceReport)]
    rejections = [x for x in items if isinstance(x, Rejection)]
    return await write_batch(conn, readings, presences, rejections, now)


async def lot_counts(conn: asyncpg.Connection, lot_id: str) -> tuple[int, int, int]:
    row = await conn.fetchrow(
        "SELECT free_count, occupied_count, unknown_count FROM lots WHERE lot_id = $1", lot_id
    )
    assert row is not None
    return (row[0], row[1], row[2])


async def test_readings_apply_once_and_the_newest_wins(conn: asyncpg.Connection) -> None:
    """Duplicates and late readings land in history once and never override newer state."""
    spot = LOT.spots[0].spot_id
    batch = [
        reading(0, 2, T0 - timedelta(seconds=10), occupied=True),
        reading(0, 2, T0 - timedelta(seconds=10), occupied=True),
        reading(0, 1, T0 - timedelta(seconds=20), occupied=False),
        reading(1, 1, T0 - timedelta(seconds=5), occupied=False),
    ]
    result = await write(conn, batch)
    assert (result.accepted, result.duplicates) == (3, 1)
    again = await write(conn, [reading(0, 1, T0 - timedelta(seconds=20), occupied=False)])
    assert (again.accepted, again.duplicates) == (0, 1)
    status = await conn.fetchval("SELECT status FROM spots WHERE spot_id = $1", spot)
    assert status == "occupied"
    assert await conn.fetchval("SELECT count(*) FROM sensor_readings WHERE spot_id = $1", spot) == 2
    changes = await conn.fetch(
        "SELECT previous_status, status FROM spot_status_changes WHERE spot_id = $1 ORDER BY ts", spot
    )
    assert [tuple(c) for c in changes] == [("unknown", "free"), ("free", "occupied")]
    assert await lot_counts(conn, LOT.lot_id) == (1, 1, 2)
    samples = await conn.fetchval("SELECT count(*) FROM lot_occupancy WHERE lot_id = $1", LOT.lot_id)
    assert samples == 1


async def test_unknown_devices_and_bad_input_are_recorded(conn: asyncpg.Connection) -> None:
    """Refusals from decoding and from the registry are kept beside good readings."""
    before = await conn.fetchval("SELECT count(*) FROM rejected_messages")
    batch = [
        reading(2, 1, T0, occupied=True),
        reading(0, 9, T0, occupied=True, device="ghost"),
        decode(f"{P}/sensors/x/state", b"garbage", P, T0, Limits()),
        decode(f"{P}/devices/ghost/presence", b'{"online":true}', P, T0, Limits()),
    ]
    result = await write(conn, batch)
    assert result.accepted == 1
    rows = await conn.fetch(
        "SELECT reason, device_id, payload FROM rejected_messages ORDER BY rejected_id OFFSET $1", before
    )
    assert sorted((r["reason"], r["device_id"]) for r in rows) == [
        ("not_json", "x"),
        ("unknown_device", "ghost"),
        ("unknown_device", "ghost"),
    ]
    assert any("seq" in r["payload"] for r in rows)


async def test_silence_turns_spots_unknown_and_a_message_restores(conn: asyncpg.Connection) -> None:
    """A sensor past its window goes offline, its spot unknown; its next message restores both."""
    spot = LOT.spots[3]
    await write(conn, [reading(3, 1, T0, occupied=True)])
    assert (await sweep_silent(conn, T0 + timedelta(seconds=29))).devices_offline == 0
    swept = await sweep_silent(conn, T0 + timedelta(seconds=31))
    assert swept.devices_offline >= 1
    assert await conn.fetchval("SELECT status FROM spots WHERE spot_id = $1", spot.spot_id) == "unknown"
    assert await conn.fetchval("SELECT status FROM devices WHERE device_id = $1", spot.device_id) == "offline"
    later = T0 + timedelta(seconds=60)
    dup = reading(3, 1, T0, occupied=True, at=later)  # a redelivery is still a sign of life
    await write(conn, [dup], now=later)
    assert await conn.fetchval("SELECT status FROM spots WHERE spot_id = $1", spot.spot_id) == "occupied"
    events = await conn.fetch(
        "SELECT event FROM device_presence_changes WHERE device_id = $1 ORDER BY ts", spot.device_id
    )
    assert [e["event"] for e in events] == ["comms_lost", "comms_restored"]
    causes = await conn.fetch(
        "SELECT cause, status FROM spot_status_changes WHERE spot_id = $1 ORDER BY ts", spot.spot_id
    )
    assert [tuple(c) for c in causes][-2:] == [("comms_lost", "unknown"), ("reading", "occupied")]
    counts = await lot_counts(conn, LOT.lot_id)
    assert sum(counts) == LOT.capacity
    assert await recount_lots(conn, later) == []  # the counters were right all along
    assert await sample_active_lots(conn, later + timedelta(hours=1), timedelta(hours=2)) >= 1


async def test_presence_is_recorded_once_per_change(conn: asyncpg.Connection) -> None:
    """A retained presence delivered twice is one event."""
    device = LOT.spots[1].device_id
    topic = f"{P}/devices/{device}/presence"
    for payload in (b'{"online":true}', b'{"online":true}', b'{"online":false}'):
        await write(conn, [decode(topic, payload, P, T0, Limits())])
    events = await conn.fetch(
        "SELECT event FROM device_presence_changes WHERE device_id = $1 AND event IN "
        "('online', 'offline') ORDER BY ts, event",
        device,
    )
    assert sorted(e["event"] for e in events) == ["offline", "online"]
