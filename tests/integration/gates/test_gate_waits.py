"""What a gate decision waits for: never a sensor batch's lot lock; new holds wait for it instead."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg
import pytest

from device_gateway.gate_pricing import StayPricer
from device_gateway.gate_store import StoredCommand, decide_read
from device_gateway.lot_counts import LOCK_LOTS
from parking_core.adapters.holds_store import HoldRequest, create_hold
from parking_core.adapters.lot_room_lock import lock_room
from parking_core.gates import Action, Lane, PlateRead, Reason
from parking_core.ids import LotId
from parking_core.reservations import ArrivalWindow
from tests.integration.gates.gate_helpers import provision_gate_lots
from tests.strategies_gates import T0, gate_device

pytestmark = [pytest.mark.db]
DEADLINE_S = 60.0  # a decision that never ends is a failure, not a hang


def read(lot: LotId, lane: Lane, seq: int, minutes: int, plate: str = "豫A60001") -> PlateRead:
    ts = T0 + timedelta(minutes=minutes)
    return PlateRead(gate_device(lot, lane), lot, seq, ts, lane, plate, confidence=0.99)


async def waits_on(db: asyncpg.Connection, pid: int) -> tuple[str, str] | None:
    """Return (wait_event_type, wait_event) while backend *pid* waits for a lock, else None."""
    row = await db.fetchrow("SELECT wait_event_type, wait_event FROM pg_stat_activity WHERE pid = $1", pid)
    if row is None or row["wait_event_type"] != "Lock":
        return None
    return row["wait_event_type"], row["wait_event"]


async def decided_without_waiting(
    db: asyncpg.Connection, gate: asyncpg.Connection, message: PlateRead
) -> StoredCommand:
    """Decide *message* on *gate*; fail as soon as its backend is seen waiting for a lock."""
    pid = gate.get_server_pid()
    deciding = asyncio.ensure_future(decide_read(gate, message, "blue", message.ts, StayPricer()))
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    try:
        while not deciding.done():
            waiting = await waits_on(db, pid)
            assert waiting is None, f"the {message.lane.value} decision waits for a lock: {waiting}"
            assert asyncio.get_running_loop().time() < deadline, "the decision never ended"
            await asyncio.sleep(0.005)
        return deciding.result()
    finally:
        deciding.cancel()


async def test_gates_decide_while_a_sensor_batch_holds_the_lot(
    database_url: str, db: asyncpg.Connection
) -> None:
    """A lot counted by its sensors, with gates: its row is locked as a sensor batch (and the
    liveness sweep) lock it until their commit, and an entry, then an exit, are decided meanwhile."""
    lot = LotId("busy-sl")
    await provision_gate_lots(db, [lot], 5)
    await db.execute("UPDATE lots SET counted_by = 'sensors' WHERE lot_id = $1", lot)
    batch = await asyncpg.connect(database_url)
    gate = await asyncpg.connect(database_url)
    try:
        async with batch.transaction():
            await batch.fetch(LOCK_LOTS, [lot])  # what a batch takes first and holds to its commit
            entered = await decided_without_waiting(db, gate, read(lot, Lane.ENTRY, 1, 0))
            left = await decided_without_waiting(db, gate, read(lot, Lane.EXIT, 1, 130))
        assert (entered.command.action, entered.command.reason) == (Action.OPEN, Reason.ENTRY)
        assert (left.command.action, left.command.reason) == (Action.HOLD, Reason.PAYMENT_DUE)
        assert left.session_id == entered.session_id
    finally:
        await batch.close()
        await gate.close()


async def test_a_new_hold_waits_for_an_entry_being_decided(database_url: str, db: asyncpg.Connection) -> None:
    """An entry decision holds its lot's room lock to its commit; a hold asked meanwhile waits for it,
    so the two never take the same last space (docs/gates.md)."""
    lot = LotId("room-gl")
    await provision_gate_lots(db, [lot], 5)
    deciding = await asyncpg.connect(database_url)
    holding = await asyncpg.connect(database_url)
    window = ArrivalWindow(T0 + timedelta(minutes=10), T0 + timedelta(minutes=40))
    try:
        async with deciding.transaction():
            await lock_room(deciding, lot)  # what decide_read takes first
            hold = asyncio.ensure_future(
                create_hold(holding, HoldRequest("rw-1", lot, "豫A60002", window), T0)
            )
            deadline = asyncio.get_running_loop().time() + DEADLINE_S
            while await waits_on(db, holding.get_server_pid()) != ("Lock", "advisory"):
                assert not hold.done(), "the hold was taken while an entry was being decided"
                assert asyncio.get_running_loop().time() < deadline, "the hold never waited"
                await asyncio.sleep(0.005)
        held = await asyncio.wait_for(hold, DEADLINE_S)
        assert held["status"] == "held"
    finally:
        await deciding.close()
        await holding.close()
