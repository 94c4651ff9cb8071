"""Liveness from the first moment of a gateway's start: neither the start-up recount nor a busy pool
holds it up, and the recount never locks every lot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from device_gateway.config import GatewaySettings
from device_gateway.decode import Limits, SensorReading, decode
from device_gateway.messages import encode_state
from device_gateway.pg_store import POOL_SIZE, open_pool
from device_gateway.service import Gateway, compose
from device_gateway.store import write_batch
from device_gateway.sweeps import recount_lots
from parking_core.adapters.settings import Settings
from parking_core.topics import sensor_topic
from simulators.city import CityLayout, generate_city
from simulators.provision import provision_city
from tests.integration.gateway.helpers import eventually, gateway_settings

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
DEFAULT_SWEEP_S = GatewaySettings.model_fields["gateway_liveness_interval_s"].default
WINDOW_S = 3  # the silent sensors' deadlines fall this long after they spoke, while the start is held


async def counts(conn: asyncpg.Connection, lot_id: str) -> tuple[int, int, int]:
    """Return a lot's (free, occupied, unknown) counters."""
    row = await conn.fetchrow(
        "SELECT free_count, occupied_count, unknown_count FROM lots WHERE lot_id = $1", lot_id
    )
    assert row is not None
    return (row[0], row[1], row[2])


async def arm(database_url: str, city: CityLayout, prefix: str) -> list[str]:
    """Every sensor of *city* speaks once now (straight into the store); return their ids."""
    now = datetime.now(UTC)
    readings = []
    for seq, spot in enumerate(city.spots, start=1):
        topic = sensor_topic(prefix, spot.device_id, "state")
        item = decode(topic, encode_state(seq, now, True), prefix, now, Limits())
        assert isinstance(item, SensorReading)
        readings.append(item)
    conn = await asyncpg.connect(database_url)
    try:
        await write_batch(conn, readings, [], [], now)
    finally:
        await conn.close()
    return [s.device_id for s in city.spots]


async def miscount(conn: asyncpg.Connection, lot_id: str) -> None:
    """Leave a lot's counters as a careless provisioning would: all free, whatever its spots say."""
    await conn.execute(
        "UPDATE lots SET free_count = capacity, occupied_count = 0, reserved_count = 0, unknown_count = 0,"
        " closed_count = 0 WHERE lot_id = $1",
        lot_id,
    )


@asynccontextmanager
async def starting_gateway(
    settings: GatewaySettings, hold_pool: bool
) -> AsyncIterator[tuple[Gateway, AsyncExitStack]]:
    """Start a gateway without waiting for it to connect; with *hold_pool*, every pooled connection
    is taken (a long sample, a writer retrying) until the returned stack is closed. Stop it after."""
    stop = asyncio.Event()
    pool = await open_pool(settings, stop)
    assert pool is not None
    async with AsyncExitStack() as held:
        if hold_pool:
            for _ in range(POOL_SIZE[1]):
                await held.enter_async_context(pool.acquire())
        gateway = compose(settings, pool, stop)
        task = asyncio.create_task(gateway.run())
        try:
            yield gateway, held
        finally:
            await held.aclose()
            stop.set()
            await asyncio.wait_for(task, 30)
            await pool.close()


async def lateness(db: asyncpg.Connection, devices: list[str]) -> list[timedelta]:
    """Return how long after its deadline each device's comms_lost was recorded."""
    rows = await db.fetch(
        "SELECT e.ts - d.silent_after AS late FROM devices d JOIN device_presence_changes e"
        " USING (device_id) WHERE e.event = 'comms_lost' AND d.device_id = ANY($1::text[])",
        devices,
    )
    return [r["late"] for r in rows]


@pytest.mark.parametrize("holding", ["a lot the recount must repair", "every pooled connection"])
async def test_silent_sensors_go_offline_on_time_while_the_start_is_held_up(
    app_settings: Settings, database_url: str, holding: str
) -> None:
    """The liveness sweep runs from the start on its own connection: with the start-up recount
    waiting (for a lot another transaction holds, or for a pooled connection), a small city's
    silent sensors still turn offline ≤ 1 s after their deadlines, before the gateway connects."""
    tag = "p" if holding.startswith("every") else "l"
    silent_city = generate_city(1, 2, 4, prefix=f"las{tag}")
    wrong_city = generate_city(1, 1, 2, prefix=f"law{tag}")
    await provision_city(database_url, silent_city, heartbeat_interval_s=1, stale_after_s=WINDOW_S)
    await provision_city(database_url, wrong_city)
    wrong = wrong_city.lots[0].lot_id
    settings = gateway_settings(app_settings, gateway_liveness_interval_s=DEFAULT_SWEEP_S)
    db = await asyncpg.connect(database_url)
    blocker = await asyncpg.connect(database_url)
    try:
        await miscount(db, wrong)
        blocking = blocker.transaction()
        await blocking.start()
        if tag == "l":  # a long transaction elsewhere holds the lot the recount has to repair
            await blocker.execute("SELECT 1 FROM lots WHERE lot_id = $1 FOR UPDATE", wrong)
        async with starting_gateway(settings, hold_pool=tag == "p") as (gateway, held):
            devices = await arm(database_url, silent_city, settings.topic_prefix)

            async def all_offline() -> bool:
                return len(await lateness(db, devices)) == len(devices)

            async def connected() -> bool:
                return gateway.link.subscribed.is_set()

            await eventually(all_offline)
            assert not await connected()  # the start was still held up meanwhile
            assert await counts(db, wrong) == (2, 0, 0)  # not yet repaired
            late = await lateness(db, devices)
            await blocking.rollback()
            await held.aclose()
            await eventually(connected)
            assert await counts(db, wrong) == (0, 0, 2)  # repaired once it could be
    finally:
        await blocker.close()
        await db.close()
    assert all(timedelta(0) < x <= timedelta(seconds=1) for x in late), sorted(late)


async def test_the_recount_repairs_only_wrong_lots_and_never_waits_for_the_others(
    database_url: str,
) -> None:
    """A lot held by a long transaction does not stop the recount when its counters are right;
    the lots provisioning left wrong are repaired and named, the right ones left alone."""
    city = generate_city(1, 4, 3, prefix="lar")
    await provision_city(database_url, city)
    lots = [lot.lot_id for lot in city.lots]
    conn = await asyncpg.connect(database_url)
    blocker = await asyncpg.connect(database_url)
    try:
        for lot in (lots[1], lots[3]):
            await miscount(conn, lot)
        stamp = "SELECT lot_id, counts_updated_at FROM lots WHERE lot_id = ANY($1::text[]) ORDER BY lot_id"
        before = await conn.fetch(stamp, [lots[0], lots[2]])
        async with blocker.transaction():
            await blocker.execute("SELECT 1 FROM lots WHERE lot_id = $1 FOR UPDATE", lots[0])
            repaired = await asyncio.wait_for(recount_lots(conn, datetime.now(UTC)), 30)
        assert sorted(repaired) == sorted([lots[1], lots[3]])
        assert await conn.fetch(stamp, [lots[0], lots[2]]) == before
        for lot in lots:
            assert await counts(conn, lot) == (0, 0, 3)
        assert await recount_lots(conn, datetime.now(UTC)) == []
    finally:
        await blocker.close()
        await conn.close()
