"""Liveness from device_deadlines: a sweep at any moment past a deadline finds the device, and only it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from device_gateway.config import GatewaySettings
from device_gateway.decode import Limits, SensorReading, decode
from device_gateway.messages import encode_state
from device_gateway.store import write_batch
from device_gateway.sweeps import sweep_silent
from parking_core.adapters.settings import Settings
from parking_core.topics import sensor_topic
from simulators.city import generate_city
from simulators.provision import provision_city
from simulators.publisher import mqtt_client
from tests.integration.gateway.helpers import eventually, gateway_settings, running_gateway

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
P = "parking/v1"
T0 = datetime.now(UTC).replace(microsecond=0)
WINDOW_S = 30
WINDOW = timedelta(seconds=WINDOW_S)
EPS = timedelta(milliseconds=1)
CITY = generate_city(1, 1, 6, prefix="dl")
DEFAULT_SWEEP_S = GatewaySettings.model_fields["gateway_liveness_interval_s"].default
SPOTS = CITY.lots[0].spots


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    await provision_city(
        database_url, CITY, heartbeat_interval_s=10, stale_after_s=int(WINDOW.total_seconds())
    )
    yield connection
    await connection.close()


async def speak(conn: asyncpg.Connection, index: int, seq: int, at: datetime) -> None:
    """One state reading of sensor *index*, received at *at*."""
    item = decode(f"{P}/sensors/{SPOTS[index].device_id}/state", encode_state(seq, at, True), P, at, Limits())
    assert isinstance(item, SensorReading)
    await write_batch(conn, [item], [], [], at)


async def state(conn: asyncpg.Connection, index: int) -> tuple[str, str, datetime | None]:
    """Return (device status, spot status, check_at) of sensor *index*."""
    row = await conn.fetchrow(
        "SELECT d.status, s.status, dl.check_at FROM devices d JOIN spots s USING (spot_id) "
        "LEFT JOIN device_deadlines dl USING (device_id) WHERE d.device_id = $1",
        SPOTS[index].device_id,
    )
    assert row is not None
    return (row[0], row[1], row[2])


async def test_a_sweep_just_past_the_deadline_turns_the_sensor_offline(conn: asyncpg.Connection) -> None:
    """First message arms check_at = silent_after; 1 ms before it nothing, 1 ms after it offline."""
    await speak(conn, 0, 1, T0)
    assert await state(conn, 0) == ("online", "occupied", T0 + WINDOW)
    assert (await sweep_silent(conn, T0 + WINDOW - EPS)).devices_offline == 0
    swept = await sweep_silent(conn, T0 + WINDOW + EPS)
    assert (swept.devices_offline, swept.spots_unknown) == (1, 1)
    assert await state(conn, 0) == ("offline", "unknown", None)  # done with: the row is gone
    lost = await conn.fetchval(
        "SELECT ts FROM device_presence_changes WHERE device_id = $1 AND event = 'comms_lost'",
        SPOTS[0].device_id,
    )
    assert lost - (T0 + WINDOW) == EPS


async def test_a_sensor_that_spoke_again_is_moved_forward_not_dropped(conn: asyncpg.Connection) -> None:
    """The writer does not move deadlines of live sensors: the due sweep does, once per window."""
    await speak(conn, 1, 1, T0)
    later = T0 + timedelta(seconds=20)
    await speak(conn, 1, 2, later)
    assert (await state(conn, 1))[2] == T0 + WINDOW  # unchanged by the second message (HOT update)
    assert (await sweep_silent(conn, T0 + WINDOW + EPS)).devices_offline == 0
    assert await state(conn, 1) == ("online", "occupied", later + WINDOW)
    assert (await sweep_silent(conn, later + WINDOW + EPS)).devices_offline == 1


async def test_a_sensor_back_from_offline_is_armed_again(conn: asyncpg.Connection) -> None:
    """comms_restored arms a new deadline, which the next silence honours."""
    await speak(conn, 2, 1, T0)
    await sweep_silent(conn, T0 + WINDOW + EPS)
    back = T0 + timedelta(seconds=100)
    await speak(conn, 2, 2, back)
    assert await state(conn, 2) == ("online", "occupied", back + WINDOW)
    assert (await sweep_silent(conn, back + WINDOW + EPS)).devices_offline == 1
    assert (await state(conn, 2))[:2] == ("offline", "unknown")


async def test_a_shorter_window_brings_the_check_forward(conn: asyncpg.Connection) -> None:
    """Shrinking stale_after_s (operator or provisioning) can only make the check earlier."""
    await speak(conn, 3, 1, T0)
    device = SPOTS[3].device_id
    await conn.execute("UPDATE devices SET stale_after_s = 10 WHERE device_id = $1", device)
    seen = await conn.fetchval("SELECT last_seen_at FROM devices WHERE device_id = $1", device)
    assert (await state(conn, 3))[2] == seen + timedelta(seconds=10)
    await conn.execute("UPDATE devices SET stale_after_s = 60 WHERE device_id = $1", device)
    assert (await state(conn, 3))[2] == seen + timedelta(seconds=10)  # longer: left as a lower bound


async def test_rows_of_devices_that_are_no_longer_sensors_are_dropped(conn: asyncpg.Connection) -> None:
    """A due row whose device changed kind is removed under its lot's lock; the device is left alone."""
    await speak(conn, 4, 1, T0)
    device = SPOTS[4].device_id
    await conn.execute("UPDATE devices SET kind = 'sign', spot_id = NULL WHERE device_id = $1", device)
    await sweep_silent(conn, T0 + WINDOW + EPS)
    assert await conn.fetchval("SELECT count(*) FROM device_deadlines WHERE device_id = $1", device) == 0
    assert await conn.fetchval("SELECT status FROM devices WHERE device_id = $1", device) == "online"


async def test_a_sensor_is_written_at_most_every_few_seconds(conn: asyncpg.Connection) -> None:
    """Within min(5 s, window/10) of its last write a device is not touched (the writer skips it
    before the statement), after that it is; silence still counts from the last write."""
    await speak(conn, 5, 1, T0)
    device = SPOTS[5].device_id
    seen = "SELECT (last_seen_at, last_seq) FROM devices WHERE device_id = $1"
    await speak(conn, 5, 2, T0 + timedelta(seconds=2))
    assert await conn.fetchval(seen, device) == (T0, 1)
    await speak(conn, 5, 3, T0 + timedelta(seconds=3))  # window 30 s: at most every 3 s
    assert await conn.fetchval(seen, device) == (T0 + timedelta(seconds=3), 3)


async def test_a_small_city_goes_silent_and_every_sensor_is_offline_within_a_second(
    app_settings: Settings, database_url: str
) -> None:
    """The real gateway with its default sweep interval: comms_lost is recorded ≤ 1 s after each deadline."""
    city = generate_city(1, 2, 8, prefix="dlc")
    await provision_city(database_url, city, heartbeat_interval_s=1, stale_after_s=2)
    settings = gateway_settings(app_settings, gateway_liveness_interval_s=DEFAULT_SWEEP_S)
    devices = [s.device_id for s in city.spots]
    db = await asyncpg.connect(database_url)
    try:
        async with running_gateway(settings), mqtt_client(app_settings.mqtt_endpoint()) as pub:
            now = datetime.now(UTC)
            for device in devices:
                await pub.publish(
                    sensor_topic(settings.topic_prefix, device, "state"), encode_state(1, now, True), qos=1
                )

            async def all_offline() -> bool:
                offline = await db.fetchval(
                    "SELECT count(*) FROM devices WHERE device_id = ANY($1::text[]) AND status = 'offline'",
                    devices,
                )
                return bool(offline == len(devices))

            await eventually(all_offline)
        late = [
            r["late"]
            for r in await db.fetch(
                "SELECT e.ts - d.silent_after AS late FROM devices d JOIN device_presence_changes e"
                " USING (device_id) WHERE e.event = 'comms_lost' AND d.device_id = ANY($1::text[])",
                devices,
            )
        ]
    finally:
        await db.close()
    assert len(late) == len(devices)
    assert all(timedelta(0) < x <= timedelta(seconds=1) for x in late), sorted(late)
