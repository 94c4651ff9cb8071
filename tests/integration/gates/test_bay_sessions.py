"""On-street sessions from bay sensors: occupied opens, free closes, in the sensor batch's transaction."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from device_gateway.decode import SensorReading
from device_gateway.gate_pricing import StayPricer, price_closed_sessions
from device_gateway.store import write_batch
from simulators.city import generate_city
from simulators.provision import provision_city

pytestmark = [pytest.mark.db]
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)


def reading(device: str, seq: int, minutes: int, occupied: bool) -> SensorReading:
    ts = T0 + timedelta(minutes=minutes)
    return SensorReading(device, "state", seq, ts, occupied, None, None, None, ts)


async def test_bay_sessions_follow_the_sensor_and_are_priced(database_url: str) -> None:
    """Across batches and inside one batch; a stay ending is priced by the gateway's sweep."""
    city = generate_city(1, 1, 2, prefix=f"b{secrets.token_hex(3)}")
    await provision_city(database_url, city)
    spot_a, spot_b = city.lots[0].spots
    conn = await asyncpg.connect(database_url)
    try:
        await write_batch(conn, [reading(spot_a.device_id, 1, 0, True)], [], [], T0)
        await write_batch(conn, [reading(spot_a.device_id, 2, 90, False)], [], [], T0)
        one_batch = [
            reading(spot_b.device_id, 1, 0, True),
            reading(spot_b.device_id, 2, 30, False),
            reading(spot_b.device_id, 3, 40, True),
            reading(spot_b.device_id, 4, 41, True),  # no change: no new session
        ]
        await write_batch(conn, one_batch, [], [], T0)
        rows = await conn.fetch(
            "SELECT spot_id, state, started_at, ended_at FROM sessions WHERE kind = 'bay'"
            " ORDER BY spot_id, started_at"
        )
        got = [
            (r["spot_id"], r["state"], r["started_at"] - T0, r["ended_at"] and r["ended_at"] - T0)
            for r in rows
        ]
        m = timedelta(minutes=1)
        assert got == [
            (spot_a.spot_id, "closed", 0 * m, 90 * m),
            (spot_b.spot_id, "closed", 0 * m, 30 * m),
            (spot_b.spot_id, "open", 40 * m, None),
        ]
        assert await price_closed_sessions(conn, StayPricer()) == 2
        states = await conn.fetch("SELECT state, amount_fen FROM sessions WHERE state <> 'open'")
        assert {(r["state"], r["amount_fen"]) for r in states} == {("paid", 0)}  # the lot has no tariff
    finally:
        await conn.close()
