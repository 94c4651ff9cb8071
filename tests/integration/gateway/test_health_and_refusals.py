"""Device health keeps the newest values within the write throttle; refusals are pruned and storable."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from device_gateway.decode import Limits, Rejection, SensorReading, decode
from device_gateway.messages import encode_heartbeat, encode_state
from device_gateway.store import write_batch
from device_gateway.sweeps import prune_refusals, refusals_need_pruning
from simulators.city import generate_city
from simulators.provision import provision_city

pytestmark = [pytest.mark.db]
P = "parking/v1"
T0 = datetime.now(UTC).replace(microsecond=0)
CITY = generate_city(1, 1, 2, prefix="hh")
DEVICE = CITY.lots[0].spots[0].device_id


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    await provision_city(database_url, CITY, heartbeat_interval_s=60)
    yield connection
    await connection.close()


def heartbeat(seq: int, at: datetime, **extra: int | str) -> SensorReading:
    got = decode(f"{P}/sensors/{DEVICE}/heartbeat", encode_heartbeat(seq, at, True, **extra), P, at, Limits())
    assert isinstance(got, SensorReading)
    return got


async def health(conn: asyncpg.Connection) -> tuple[int, int, str, int]:
    row = await conn.fetchrow(
        "SELECT battery_mv, rssi_dbm, firmware, last_seq FROM devices WHERE device_id = $1", DEVICE
    )
    assert row is not None
    return row["battery_mv"], row["rssi_dbm"], row["firmware"], row["last_seq"]


async def test_the_newest_battery_reading_is_kept_within_the_throttle(conn: asyncpg.Connection) -> None:
    """3002 mV a second after 3001 mV is shown, though the device was touched under 5 s ago."""
    await write_batch(conn, [heartbeat(1, T0, battery_mv=3001, rssi_dbm=-80, fw="1.0")], [], [], T0)
    later = T0 + timedelta(seconds=1)
    await write_batch(conn, [heartbeat(2, later, battery_mv=3002)], [], [], later)
    assert await health(conn) == (3002, -80, "1.0", 2)
    again = T0 + timedelta(seconds=2)
    await write_batch(conn, [heartbeat(3, again, rssi_dbm=-70, fw="1.1")], [], [], again)
    assert await health(conn) == (3002, -70, "1.1", 3)


async def test_an_older_reading_never_overwrites_newer_health(conn: asyncpg.Connection) -> None:
    """A late heartbeat (older ts) does not bring back its older battery value."""
    base = T0 + timedelta(minutes=1)
    await write_batch(conn, [heartbeat(20, base, battery_mv=2900)], [], [], base)
    late = base + timedelta(seconds=30)
    old = decode(
        f"{P}/sensors/{DEVICE}/state",
        encode_state(19, base - timedelta(seconds=30), True, battery_mv=3500),
        P,
        late,
        Limits(),
    )
    assert isinstance(old, SensorReading)
    await write_batch(conn, [old], [], [], late)
    battery, _, _, seq = await health(conn)
    assert (battery, seq) == (2900, 20)


async def test_refusals_with_any_characters_are_stored_and_pruned(conn: asyncpg.Connection) -> None:
    """Refusals holding NUL-laden keys are stored; plain mode prunes those past retention only."""
    refusal = decode(
        f"{P}/sensors/{DEVICE}/heartbeat",
        b'{"\\u0000":1,"seq":"\\u0000"}',
        P,
        T0 - timedelta(days=40),
        Limits(),
    )
    fresh = decode(f"{P}/sensors/{DEVICE}/heartbeat", b"\x00", P, T0, Limits())
    assert isinstance(refusal, Rejection)
    assert isinstance(fresh, Rejection)
    result = await write_batch(conn, [], [], [refusal, fresh], T0)
    assert sum(result.rejected.values()) == 2
    if not await refusals_need_pruning(conn):
        pytest.skip("TimescaleDB mode: a retention policy drops old refusals")
    deleted = await prune_refusals(conn, T0 - timedelta(days=30))
    assert deleted == 1
    left = await conn.fetch("SELECT received_at FROM rejected_messages")
    assert [r["received_at"] for r in left] == [T0]
