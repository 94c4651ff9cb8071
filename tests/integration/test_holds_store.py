"""Holds on a real PostgreSQL: the last spaces under 200 concurrent requests, arrivals, no-shows."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parking_core.adapters.hold_endings import release_no_shows, report_plate_in_spot, sensor_arrivals
from parking_core.adapters.holds_store import (
    FIRST_FREE_SPOT,
    HoldRequest,
    arrive_by_gate,
    cancel_hold,
    create_hold,
)
from parking_core.adapters.lot_changes import changes_after, latest_change
from parking_core.adapters.provisioning import LotSpec, SpotSpec, put_district, put_lot
from parking_core.errors import HoldStateError, NoRoomError
from parking_core.ids import LotId, SpotId, ZoneId
from parking_core.occupancy import Spot, SpotStatus
from parking_core.reservations import ArrivalWindow, choose_spot

pytestmark = pytest.mark.db
T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
WINDOW = ArrivalWindow(T0 + timedelta(minutes=30), T0 + timedelta(minutes=60))


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=2, max_size=20) as opened:
        yield opened


async def make_lot(
    pool: asyncpg.Pool, lot_id: str, spots: int, free: int, capacity: int | None = None
) -> None:
    """A lot whose first *free* spots are free and the rest occupied (counters to match)."""
    async with pool.acquire() as conn:
        await put_district(conn, "d1", "District")
        spec = LotSpec(
            "d1",
            lot_id,
            "off_street",
            34.7,
            113.6,
            spots if capacity is None else capacity,
            "Asia/Shanghai",
            None,
            "open",
            [SpotSpec(f"{lot_id}-{i:03d}", zone_id=None) for i in range(spots)],
        )
        await put_lot(conn, lot_id, spec)
        await conn.execute(
            "UPDATE spots SET status = CASE WHEN spot_id < $2 THEN 'free' ELSE 'occupied' END,"
            " occupied = NOT (spot_id < $2), last_reading_ts = $3, last_reading_seq = 0 WHERE lot_id = $1",
            lot_id,
            f"{lot_id}-{free:03d}",
            T0 - timedelta(hours=1),
        )
        await conn.execute(
            "UPDATE lots SET free_count = $2, occupied_count = $3, unknown_count = capacity - $4"
            " WHERE lot_id = $1",
            lot_id,
            free,
            spots - free,
            spots,
        )


async def counts(pool: asyncpg.Pool, lot_id: str) -> tuple[int, int, int]:
    row = await pool.fetchrow(
        "SELECT free_count, occupied_count, reserved_count FROM lots WHERE lot_id = $1", lot_id
    )
    assert row is not None
    return row[0], row[1], row[2]


def request(lot_id: str, n: int, **extra: str) -> HoldRequest:
    return HoldRequest(f"{lot_id}-r{n}", lot_id, f"豫A{n:05d}", WINDOW, **extra)


async def test_200_simultaneous_requests_for_the_last_10_spaces_give_exactly_10_holds(
    pool: asyncpg.Pool,
) -> None:
    """The lot's row lock serialises holds: 10 succeed, 190 are told there is no room, counts agree."""
    await make_lot(pool, "last10", 50, free=10)
    async with pool.acquire() as conn:
        before = await latest_change(conn)

    async def attempt(n: int) -> bool:
        async with pool.acquire() as conn:
            try:
                await create_hold(conn, request("last10", n), T0)
            except NoRoomError:
                return False
            return True

    results = await asyncio.gather(*(attempt(n) for n in range(200)))
    assert sum(results) == 10
    assert await counts(pool, "last10") == (0, 40, 10)
    held = await pool.fetchval(
        "SELECT count(DISTINCT spot_id) FROM reservations WHERE lot_id = 'last10' AND status = 'held'"
    )
    reserved = await pool.fetchval(
        "SELECT count(*) FROM spots WHERE lot_id = 'last10' AND status = 'reserved'"
    )
    assert held == reserved == 10
    async with pool.acquire() as conn:
        _, lots = await changes_after(conn, before)
    assert lots == ["last10"]


async def test_a_lot_counted_without_spots_holds_its_free_room(pool: asyncpg.Pool) -> None:
    """No spots: a hold moves one free space to reserved; none when none is free; cancel gives it back."""
    await make_lot(pool, "nospots", 0, free=0, capacity=5)
    await pool.execute(
        "UPDATE lots SET free_count = 1, unknown_count = 0, occupied_count = 4 WHERE lot_id = 'nospots'"
    )
    async with pool.acquire() as conn:
        held = await create_hold(conn, request("nospots", 1), T0)
        assert held["spot_id"] is None
        with pytest.raises(NoRoomError):
            await create_hold(conn, request("nospots", 2), T0)
        assert await counts(pool, "nospots") == (0, 4, 1)
        cancelled = await cancel_hold(conn, held["reservation_id"], T0)  # just in time
        assert cancelled is not None
        assert (cancelled["status"], cancelled["late_cancellation"]) == ("cancelled", False)
        assert await counts(pool, "nospots") == (1, 4, 0)
        with pytest.raises(HoldStateError):
            await cancel_hold(conn, held["reservation_id"], T0)


async def test_no_shows_are_released_at_their_deadline_and_not_before(pool: asyncpg.Pool) -> None:
    """The sweep leaves a hold alone until window end + grace, then frees its spot."""
    await make_lot(pool, "noshow", 3, free=3)
    async with pool.acquire() as conn:
        held = await create_hold(conn, request("noshow", 1), T0)
        deadline = held["deadline"]
        assert deadline == WINDOW.end + timedelta(minutes=15)
        early = await release_no_shows(conn, deadline - timedelta(seconds=1))
        assert held["reservation_id"] not in {r["reservation_id"] for r in early}
        released = await release_no_shows(conn, deadline)
        assert [r["status"] for r in released if r["lot_id"] == "noshow"] == ["no_show"]
        assert await counts(pool, "noshow") == (3, 0, 0)


async def test_arrivals_by_gate_and_by_sensor(pool: asyncpg.Pool) -> None:
    """The held plate at the gate ends the hold as arrived; so does the held bay turning occupied."""
    await make_lot(pool, "arrive", 4, free=4)
    async with pool.acquire() as conn:
        gate = await create_hold(conn, request("arrive", 1), T0)
        assert await arrive_by_gate(conn, "arrive", "豫A99999", T0) is None
        arrived = await arrive_by_gate(conn, "arrive", gate["plate"], T0 + timedelta(minutes=40), "sess-1")
        assert arrived is not None
        assert (arrived["status"], arrived["evidence"], arrived["session_id"]) == (
            "arrived",
            "gate",
            "sess-1",
        )
        bay = await create_hold(conn, request("arrive", 2), T0)
        await conn.execute(
            "UPDATE spots SET occupied = true, last_reading_ts = $2 WHERE spot_id = $1",
            bay["spot_id"],
            T0 + timedelta(minutes=35),
        )
        found = await sensor_arrivals(conn, T0 + timedelta(minutes=36))
        assert [(r["reservation_id"], r["evidence"]) for r in found] == [(bay["reservation_id"], "sensor")]
        status = await conn.fetchval("SELECT status FROM spots WHERE spot_id = $1", bay["spot_id"])
        assert status == "occupied"
        session = await conn.fetchrow(
            "SELECT kind, state, plate, started_at FROM sessions WHERE session_id::text = $1",
            found[0]["session_id"],
        )
        assert session is not None  # the arrival's stay is a bay session of the held plate, billed as usual
        assert tuple(session) == ("bay", "open", bay["plate"], T0 + timedelta(minutes=35))


async def test_a_held_spot_taken_by_another_plate_moves_the_hold(pool: asyncpg.Pool) -> None:
    """Another plate in the held bay: the driver gets another spot; with none left the hold ends free."""
    await make_lot(pool, "taken", 2, free=2)
    async with pool.acquire() as conn:
        held = await create_hold(conn, request("taken", 1), T0)
        first = held["spot_id"]
        await conn.execute("UPDATE spots SET occupied = true WHERE spot_id = $1", first)
        moved = await report_plate_in_spot(
            conn, held["reservation_id"], "豫B00001", T0 + timedelta(minutes=5)
        )
        assert moved is not None
        assert moved["status"] == "held"
        assert moved["moved_from"] == [first]
        assert moved["spot_id"] != first
        assert await counts(pool, "taken") == (0, 1, 1)
        intruder = await conn.fetchval(
            "SELECT plate FROM sessions WHERE spot_id = $1 AND state = 'open'", first
        )
        assert intruder == "豫B00001"
        await conn.execute("UPDATE spots SET occupied = true WHERE spot_id = $1", moved["spot_id"])
        ended = await report_plate_in_spot(
            conn, held["reservation_id"], "豫B00002", T0 + timedelta(minutes=6)
        )
        assert ended is not None
        assert (ended["status"], ended["late_cancellation"]) == ("cancelled", False)
        assert await counts(pool, "taken") == (0, 2, 0)


SPOT_STATES = st.lists(
    st.tuples(
        st.sampled_from(["free", "occupied", "reserved", "closed", "unknown"]),
        st.sampled_from([None, "za", "zb"]),
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(states=SPOT_STATES, wanted=st.integers(0, 9), zone=st.sampled_from([None, "za", "zb"]))
def test_the_sql_picks_the_spot_the_pure_rule_picks(
    database_url: str, states: list[tuple[str, str | None]], wanted: int, zone: str | None
) -> None:
    """FIRST_FREE_SPOT (the store's choice) equals parking_core.reservations.choose_spot for any spot
    states, zones and request (a spot, a zone, or neither)."""
    asyncio.run(_pick(database_url, states, wanted, zone))


async def _pick(url: str, states: list[tuple[str, str | None]], wanted: int, zone: str | None) -> None:
    conn = await asyncpg.connect(url)
    try:
        with contextlib.suppress(_RollbackError):
            await _pick_in(conn, states, wanted, zone)
    finally:
        await conn.close()


async def _pick_in(
    conn: asyncpg.Connection, states: list[tuple[str, str | None]], wanted: int, zone: str | None
) -> None:
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO districts (district_id, name) VALUES ('hz', 'h') ON CONFLICT DO NOTHING"
        )
        await conn.execute(
            "INSERT INTO lots (lot_id, district_id, name, kind, lat, lon, capacity) VALUES"
            " ('pick', 'hz', 'pick', 'off_street', 34.7, 113.6, 10) ON CONFLICT DO NOTHING"
        )
        await conn.execute("DELETE FROM spots WHERE lot_id = 'pick'")
        for z in ("za", "zb"):
            await conn.execute(
                "INSERT INTO zones (zone_id, lot_id) VALUES ($1, 'pick') ON CONFLICT DO NOTHING", z
            )
        spots: list[tuple[Spot, ZoneId | None]] = []
        for i, (status, spot_zone) in enumerate(states):
            spot_id = f"pick-{9 - i}"  # ids out of insertion order: the order must come from the rule
            await conn.execute(
                "INSERT INTO spots (spot_id, lot_id, zone_id, status) VALUES ($1, 'pick', $2, $3)",
                spot_id,
                spot_zone,
                status,
            )
            spots.append(
                (
                    Spot(SpotId(spot_id), LotId("pick"), SpotStatus(status)),
                    ZoneId(spot_zone) if spot_zone else None,
                )
            )
        ask = f"pick-{wanted}" if wanted < 5 else None
        got = await conn.fetchval(FIRST_FREE_SPOT, "pick", ask, zone)
        try:
            expected: str | None = choose_spot(
                spots, LotId("pick"), SpotId(ask) if ask else None, ZoneId(zone) if zone else None
            ).spot_id
        except NoRoomError:
            expected = None
        assert got == expected
        raise _RollbackError  # leave nothing behind for the next example


class _RollbackError(Exception):
    """Ends an example's transaction by rolling it back."""
