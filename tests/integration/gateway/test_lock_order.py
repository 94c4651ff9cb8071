"""Two gateways at once on a real PostgreSQL: the sensor writer, the liveness sweep, the start-up
recount and bay-stay pricing all take lot locks in one order (docs/gateway.md, "Lock order"), so
running them together, round after round, never deadlocks.

The rounds are built like demo start-up, where the deadlock was seen: each gateway's batch holds
readings of one lot and presence messages of another lot's sensors (the simulator publishes a
retained presence for every sensor as it starts), while the other gateway's batch has them the
other way round, a sweep turns silent sensors offline and the start-up recount looks for wrong
counters (it locks only lots it must repair, with the writers' LOCK_LOTS).
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from device_gateway.decode import PresenceReport, SensorReading
from device_gateway.gate_pricing import StayPricer, price_closed_sessions
from device_gateway.store import write_batch
from device_gateway.sweeps import recount_lots, sweep_silent
from simulators.city import CityLayout, generate_city
from simulators.provision import provision_city
from tests.integration.gates.gate_helpers import store_example_tariff

pytestmark = [pytest.mark.db]
ROUNDS = 40  # each round is a few transactions racing; the deadlock showed within a few rounds
TARIFF_ID = "zz-zone1-underground"


@pytest.fixture
async def city(database_url: str) -> CityLayout:
    """Three lots of 20 sensors (ids of this test's own), priced by an example tariff."""
    layout = generate_city(1, 3, 20, prefix=f"lk{secrets.token_hex(2)}")
    await provision_city(database_url, layout, heartbeat_interval_s=60)
    conn = await asyncpg.connect(database_url)
    try:
        await store_example_tariff(conn, TARIFF_ID)
        await conn.execute(
            "UPDATE lots SET tariff_id = $2 WHERE lot_id = ANY($1::text[])",
            [lot.lot_id for lot in layout.lots],
            TARIFF_ID,
        )
    finally:
        await conn.close()
    return layout


@pytest.fixture
async def conns(database_url: str) -> AsyncIterator[list[asyncpg.Connection]]:
    """Four connections with the writer's temp tables: two gateways' writers, a sweep, a recount."""
    opened = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        yield opened
    finally:
        for conn in opened:
            await conn.close()


def readings(city: CityLayout, lot: int, round_: int, now: datetime) -> list[SensorReading]:
    """A state reading of every sensor of *lot*, with a battery value that changes every round."""
    ts = now - timedelta(seconds=1)
    return [
        SensorReading(s.device_id, "state", round_, ts, (round_ + i) % 2 == 0, 3000 + round_, -70, None, now)
        for i, s in enumerate(city.lots[lot].spots)
    ]


def presences(city: CityLayout, lot: int, round_: int, now: datetime) -> list[PresenceReport]:
    """A presence message of every sensor of *lot*, online and offline by turns (so each one writes)."""
    return [PresenceReport(s.device_id, round_ % 2 == 0, now) for s in city.lots[lot].spots]


async def make_silent(conn: asyncpg.Connection, city: CityLayout, lots: Sequence[int], now: datetime) -> None:
    """Make every sensor of *lots* overdue, as after a stop: the sweep turns them offline."""
    devices = [s.device_id for lot in lots for s in city.lots[lot].spots]
    await conn.execute(
        "UPDATE devices SET status = 'online', last_seen_at = $2, silent_after = $2"
        " WHERE device_id = ANY($1::text[])",
        devices,
        now - timedelta(minutes=10),
    )
    await conn.execute(
        "INSERT INTO device_deadlines (device_id, check_at) SELECT unnest($1::text[]), $2"
        " ON CONFLICT (device_id) DO UPDATE SET check_at = excluded.check_at",
        devices,
        now - timedelta(minutes=10),
    )


async def closed_stays(conn: asyncpg.Connection, city: CityLayout, round_: int, now: datetime) -> None:
    """Two plated bay stays to invoice, the one of the later lot ended first (so the pricer meets
    the lots out of their order).
    """
    for lot, ended_min in ((2, 30), (0, 20)):
        await conn.execute(
            "INSERT INTO sessions (session_id, lot_id, kind, state, plate, spot_id, started_at, ended_at,"
            " closed_by) VALUES ($1, $2, 'bay', 'closed', $3, $4, $5, $6, 'sensor')",
            uuid.uuid4(),
            city.lots[lot].lot_id,
            f"豫L{round_:03d}{lot}{secrets.randbelow(10)}",
            city.lots[lot].spots[-1].spot_id,
            now - timedelta(hours=3),
            now - timedelta(minutes=ended_min),
        )


async def test_two_writers_with_each_others_presence_never_deadlock(
    city: CityLayout, conns: list[asyncpg.Connection]
) -> None:
    """Gateway 1 writes lot 0's readings and lot 1's presence, gateway 2 the other way round."""
    one, two = conns[0], conns[1]
    for round_ in range(1, ROUNDS + 1):
        now = datetime.now(UTC)
        first, second = await asyncio.gather(
            write_batch(one, readings(city, 0, round_, now), presences(city, 1, round_, now), [], now),
            write_batch(two, readings(city, 1, round_, now), presences(city, 0, round_, now), [], now),
        )
        assert (first.accepted, second.accepted) == (20, 20)
        assert (first.presence, second.presence) == (20, 20)


async def test_writer_sweep_recount_and_pricing_together_never_deadlock(
    city: CityLayout, conns: list[asyncpg.Connection], database_url: str
) -> None:
    """A batch over lots 0-2 with presence across them, the sweep of lots 1-2, the start-up recount
    and the pricing of stays at lots 2 and 0, all at once, round after round.
    """
    writer, sweeper, recounter, other = conns
    for round_ in range(1, ROUNDS + 1):
        now = datetime.now(UTC)
        await make_silent(other, city, (1, 2), now)
        await closed_stays(other, city, round_, now)
        batch = readings(city, 0, round_, now) + readings(city, 2, round_, now)[:5]
        heard = presences(city, 1, round_, now) + presences(city, 2, round_, now)
        pricer = await asyncpg.connect(database_url)
        try:
            result, *_ = await asyncio.gather(
                write_batch(writer, batch, heard, [], now),
                sweep_silent(sweeper, now),
                recount_lots(recounter, now),
                price_closed_sessions(pricer, StayPricer()),
            )
        finally:
            await pricer.close()
        assert result.accepted == 25
    lots = [lot.lot_id for lot in city.lots]
    stays = await other.fetch(
        "SELECT s.state,"
        " (SELECT count(*) FROM invoices i WHERE i.session_id = s.session_id::text) AS invoices"
        " FROM sessions s WHERE s.lot_id = ANY($1::text[]) AND s.plate LIKE '豫L%'",
        lots,
    )
    assert len(stays) == 2 * ROUNDS
    # each stay invoiced once, or still closed, waiting for the next pricing sweep
    assert {(r["state"], r["invoices"]) for r in stays} <= {("invoiced", 1), ("closed", 0)}
    counts = await other.fetch(
        "SELECT l.free_count + l.occupied_count + l.unknown_count AS counted,"
        " (SELECT count(*) FROM spots s WHERE s.lot_id = l.lot_id) AS spots"
        " FROM lots l WHERE l.lot_id = ANY($1::text[])",
        lots,
    )
    assert all(r["counted"] == r["spots"] for r in counts)
