"""The gate path's SQL against the pure ledger model: same commands, same sessions, on PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings

from billing import TimedCharge, VehicleClass, load_example_tariffs, price_stay
from device_gateway.gate_pricing import StayPricer
from device_gateway.gate_store import decide_read
from device_gateway.gate_tracking import expire_awaiting, record_passage
from parking_core.gate_ledger import GateLedger
from parking_core.gates import Lane, Passage, PlateRead
from tests.integration.gates.gate_helpers import TARIFF_ID, provision_gate_lots
from tests.strategies_gates import CAPACITY, LOTS, T0, GateMessage, gate_device, interleaved, lot_of

pytestmark = [pytest.mark.db]
TARIFF = load_example_tariffs()[TARIFF_ID]
WIPE = """
TRUNCATE sessions, session_evidence, gate_commands, gate_reads, gate_passages, gate_events CASCADE;
UPDATE lots SET free_count = capacity, occupied_count = 0 WHERE counted_by = 'gates'
"""  # TRUNCATE fires no row trigger: the gate lots' counts are reset by hand


def engine_price(
    entry: datetime, exit_at: datetime, _plate: str, earlier: list[tuple[datetime, int]]
) -> tuple[int, list[tuple[datetime, int]]]:
    """The model prices with the same engine and tariff: this test is about the ledger, not prices."""
    quote = price_stay(
        entry, exit_at, VehicleClass.SMALL_CAR, TARIFF, [TimedCharge(a, f) for a, f in earlier]
    )
    return quote.amount_fen, [(c.at, c.amount_fen) for c in quote.charges]


async def feed_sql(
    conn: asyncpg.Connection, stream: list[GateMessage]
) -> dict[tuple[str, int], tuple[object, ...]]:
    pricer = StayPricer()
    answers: dict[tuple[str, int], tuple[object, ...]] = {}
    for message in stream:
        if isinstance(message, PlateRead):
            stored = await decide_read(conn, message, "blue", message.ts, pricer)
            c = stored.command
            got = (c.action, c.reason, c.amount_fen, stored.command_id)
            key = (message.device_id, message.seq)
            assert answers.setdefault(key, got) == got, "a redelivered read got another command"
        else:
            await record_passage(conn, message, message.ts)
    await expire_awaiting(conn, T0 + timedelta(days=2))
    return answers


async def check(url: str, streams: tuple[list[GateMessage], list[GateMessage]]) -> None:
    once, delivered = streams
    model = GateLedger(dict.fromkeys(LOTS, CAPACITY), engine_price)
    expected = {}
    for message in once:
        if isinstance(message, PlateRead):
            d = model.read(message).command
            expected[(message.device_id, message.seq)] = (d.action, d.reason, d.amount_fen)
        else:
            model.passage(message)
    model.expire(T0 + timedelta(days=2), lot_of)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(WIPE)
        answers = await feed_sql(conn, delivered)
        assert {k: v[:3] for k, v in answers.items()} == expected
        rows = await conn.fetch("SELECT lot_id, plate, state, started_at, ended_at, amount_fen FROM sessions")
        got = sorted(tuple(r) for r in rows)
        want = sorted(
            (s.lot_id, s.plate, s.state.value, s.started_at, s.ended_at, s.amount_fen)
            for s in model.sessions.values()
        )
        assert got == want
        counts = await conn.fetch(
            "SELECT lot_id, free_count, occupied_count FROM lots WHERE counted_by = 'gates'"
        )
        for row in counts:
            inside = len(model.inside(row["lot_id"]))
            assert (row["free_count"], row["occupied_count"]) == (CAPACITY - inside, inside)
    finally:
        await conn.close()


async def test_setup(database_url: str) -> None:
    """Provision the two gated lots once for the module."""
    conn = await asyncpg.connect(database_url)
    try:
        await provision_gate_lots(conn, list(LOTS), CAPACITY)
    finally:
        await conn.close()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(streams=interleaved())
def test_sql_gate_path_agrees_with_the_model(
    database_url: str, streams: tuple[list[GateMessage], list[GateMessage]]
) -> None:
    """Redelivered reads get the same command id; sessions, amounts and lot counts equal the model's."""
    asyncio.run(check(database_url, streams))


async def test_a_redelivered_read_gets_the_same_command_id(database_url: str) -> None:
    """The same (device_id, seq, ts) twice: one decision, one command id, one session."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(WIPE)
        read = PlateRead(gate_device(LOTS[0], Lane.ENTRY), LOTS[0], 1, T0, Lane.ENTRY, "豫A12345")
        first = await decide_read(conn, read, "blue", T0, StayPricer())
        again = await decide_read(conn, read, "blue", T0 + timedelta(seconds=1), StayPricer())
        assert (again.command_id, again.duplicate, first.duplicate) == (first.command_id, True, False)
        assert await conn.fetchval("SELECT count(*) FROM sessions") == 1
        assert again.payload() == first.payload()
    finally:
        await conn.close()


async def test_passage_without_read_is_tailgating(database_url: str) -> None:
    """A passage with no open command before it is recorded as a tailgating event."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(WIPE)
        device = gate_device(LOTS[0], Lane.ENTRY)
        events = await record_passage(conn, Passage(device, LOTS[0], 5, T0, Lane.ENTRY), T0)
        assert [e.kind.value for e in events] == ["tailgating"]
        assert await record_passage(conn, Passage(device, LOTS[0], 5, T0, Lane.ENTRY), T0) == []
        assert await conn.fetchval("SELECT count(*) FROM gate_events WHERE kind = 'tailgating'") == 1
    finally:
        await conn.close()


async def test_a_gate_lot_has_an_occupancy_history(database_url: str) -> None:
    """Each change of a gate-counted lot's counts writes a lot_occupancy sample equal to the counts."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(WIPE)
        await conn.execute("DELETE FROM lot_occupancy WHERE lot_id = $1", LOTS[0])
        entry = PlateRead(gate_device(LOTS[0], Lane.ENTRY), LOTS[0], 40, T0, Lane.ENTRY, "豫A54321")
        await decide_read(conn, entry, "blue", T0, StayPricer())
        later = T0 + timedelta(minutes=10)  # within the free minutes: the exit opens
        leaving = PlateRead(gate_device(LOTS[0], Lane.EXIT), LOTS[0], 41, later, Lane.EXIT, "豫A54321")
        await decide_read(conn, leaving, "blue", later, StayPricer())
        samples = await conn.fetch(
            "SELECT free, occupied FROM lot_occupancy WHERE lot_id = $1 ORDER BY ts", LOTS[0]
        )
        assert [(s["free"], s["occupied"]) for s in samples] == [(CAPACITY - 1, 1), (CAPACITY, 0)]
    finally:
        await conn.close()


async def test_a_late_upload_keeps_its_pending_window_in_sql_and_in_the_model(database_url: str) -> None:
    """Reads received 3 h after their ts: the sweep counts the window from the receipt, so the entry
    is still pending a minute later, its passage (on the gate's clock) opens it; the other expires."""
    lot, late = LOTS[0], timedelta(hours=3)
    device = gate_device(lot, Lane.ENTRY)
    reads = [
        PlateRead(device, lot, n, T0 + timedelta(minutes=n), Lane.ENTRY, p)
        for n, p in ((50, "豫A70001"), (51, "豫A70002"))
    ]
    passage = Passage(device, lot, 52, T0 + timedelta(minutes=50, seconds=4), Lane.ENTRY, "豫A70001")
    received = T0 + late
    model = GateLedger(dict.fromkeys(LOTS, CAPACITY), engine_price)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(WIPE)
        for read in reads:
            model.read(read, received)
            await decide_read(conn, read, "blue", received, StayPricer())
        sweeps = (received + timedelta(minutes=1), received + timedelta(minutes=5))
        assert model.expire(sweeps[0], lot_of) == []
        assert await expire_awaiting(conn, sweeps[0]) == []
        model.passage(passage)
        assert await record_passage(conn, passage, received + timedelta(minutes=1)) == []
        gone = model.expire(sweeps[1], lot_of)
        assert [e.plate for e in await expire_awaiting(conn, sweeps[1])] == [e.plate for e in gone]
        rows = await conn.fetch("SELECT plate, state FROM sessions ORDER BY plate")
        want = {"豫A70001": "open", "豫A70002": "cancelled"}
        assert {r["plate"]: r["state"] for r in rows} == want
        assert {s.plate: s.state.value for s in model.sessions.values()} == want
    finally:
        await conn.close()
