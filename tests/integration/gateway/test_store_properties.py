"""Hypothesis against the real database: the set-based SQL agrees with the pure occupancy rules."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_gateway.decode import SensorReading
from device_gateway.store import write_batch
from parking_core.ids import DeviceId, LotId, SpotId
from parking_core.occupancy import Reading, Spot, apply_reading
from simulators.city import generate_city
from simulators.provision import provision_city

pytestmark = [pytest.mark.db]
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
KEYS = st.lists(
    st.tuples(st.integers(0, 2), st.integers(0, 9), st.integers(0, 30), st.booleans()),
    unique_by=lambda k: k[:3],
    max_size=25,
)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[tuple[int, int, int, bool]], list[list[int]]]:
    """Distinct readings, and their deliveries (with repeats, any order) cut into batches."""
    keys = draw(KEYS)
    order = draw(st.permutations(list(range(len(keys))) * 2)) if keys else []
    cuts = sorted(draw(st.lists(st.integers(0, len(order)), max_size=4)))
    bounds = [0, *cuts, len(order)]
    return keys, [order[a:b] for a, b in pairwise(bounds)]


async def check(url: str, case: tuple[list[tuple[int, int, int, bool]], list[list[int]]]) -> None:
    keys, batches = case
    city = generate_city(1, 1, 3, prefix=f"p{secrets.token_hex(3)}")
    await provision_city(url, city)
    spots = city.lots[0].spots
    conn = await asyncpg.connect(url)
    try:
        readings = [
            SensorReading(
                spots[s].device_id, "state", seq, T0 + timedelta(seconds=sec), occ, None, None, None, T0
            )
            for s, seq, sec, occ in keys
        ]
        for batch in batches:
            await write_batch(conn, [readings[i] for i in batch], [], [], T0)
        expected = {s.spot_id: Spot(SpotId(s.spot_id), LotId(city.lots[0].lot_id)) for s in spots}
        for s, seq, sec, occ in sorted(keys, key=lambda k: (k[2], k[1])):
            spot = SpotId(spots[s].spot_id)
            reading = Reading(DeviceId(spots[s].device_id), spot, seq, T0 + timedelta(seconds=sec), occ)
            expected[spot], _ = apply_reading(expected[spot], reading)
        rows = await conn.fetch(
            "SELECT spot_id, status, occupied FROM spots WHERE spot_id = ANY($1)", list(expected)
        )
        assert {r["spot_id"]: (r["status"], r["occupied"]) for r in rows} == {
            k: (v.status.value, v.occupied) for k, v in expected.items()
        }
        stored = await conn.fetchval(
            "SELECT count(*) FROM sensor_readings WHERE spot_id = ANY($1)", list(expected)
        )
        assert stored == len(keys)
        counts = await conn.fetchrow(
            "SELECT free_count, occupied_count, unknown_count FROM lots WHERE lot_id = $1",
            city.lots[0].lot_id,
        )
        statuses = [v.status.value for v in expected.values()]
        assert counts is not None
        assert tuple(counts) == tuple(statuses.count(s) for s in ("free", "occupied", "unknown"))
        chain = await conn.fetch(
            "SELECT spot_id, status, previous_status FROM spot_status_changes"
            " WHERE spot_id = ANY($1) ORDER BY ctid",
            list(expected),
        )
        last = dict.fromkeys(expected, "unknown")
        for row in chain:
            assert row["previous_status"] == last[row["spot_id"]]
            last[row["spot_id"]] = row["status"]
        assert last == {k: v.status.value for k, v in expected.items()}
    finally:
        await conn.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=deliveries())
def test_sql_agrees_with_the_pure_rules(
    database_url: str, case: tuple[list[tuple[int, int, int, bool]], list[list[int]]]
) -> None:
    """Any order, duplication and batching of readings: state, history and counters match."""
    asyncio.run(check(database_url, case))
