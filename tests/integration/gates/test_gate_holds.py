"""Holds at a lot counted at its gates: the held plate opens a full lot (`reserved`), others see less
room, the hold ends linked to the session; a shared lot outside its windows admits members only."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pytest

from device_gateway.gate_pricing import StayPricer
from device_gateway.gate_store import decide_read
from parking_core.adapters.holds_store import HoldRequest, create_hold
from parking_core.errors import NoRoomError
from parking_core.gates import Action, Lane, PlateRead, Reason
from parking_core.ids import LotId
from parking_core.reservations import ArrivalWindow
from tests.integration.gates.gate_helpers import provision_gate_lots
from tests.strategies_gates import T0, gate_device

pytestmark = [pytest.mark.db]
LOT = LotId("hold-gl")
WINDOW = ArrivalWindow(T0 + timedelta(minutes=10), T0 + timedelta(minutes=40))


def entry(plate: str, seq: int, minutes: int = 0, lot: LotId = LOT) -> PlateRead:
    return PlateRead(
        gate_device(lot, Lane.ENTRY),
        lot,
        seq,
        T0 + timedelta(minutes=minutes),
        Lane.ENTRY,
        plate,
        confidence=0.99,
    )


async def counts(db: asyncpg.Connection) -> tuple[int, int, int]:
    row = await db.fetchrow(
        "SELECT free_count, occupied_count, reserved_count FROM lots WHERE lot_id = $1", LOT
    )
    assert row is not None
    return row[0], row[1], row[2]


async def test_a_held_space_at_the_gates(db: asyncpg.Connection) -> None:
    """Capacity 2, one hold: one walk-in enters, the next is refused full, the held plate enters."""
    await provision_gate_lots(db, [LOT], 2)
    held = await create_hold(db, HoldRequest("gh-1", LOT, "豫A11111", WINDOW), T0)
    assert held["spot_id"] is None
    assert await counts(db) == (1, 0, 1)
    pricer = StayPricer()
    walk_in = await decide_read(db, entry("豫B00001", 1), "blue", T0, pricer)
    assert (walk_in.command.action, walk_in.command.reason) == (Action.OPEN, Reason.ENTRY)
    assert await counts(db) == (0, 1, 1)
    with pytest.raises(NoRoomError):
        await create_hold(db, HoldRequest("gh-2", LOT, "豫A22222", WINDOW), T0)
    refused = await decide_read(db, entry("豫B00002", 2), "blue", T0, pricer)
    assert (refused.command.action, refused.command.reason) == (Action.HOLD, Reason.FULL)
    mine = await decide_read(db, entry("豫A11111", 3, 12), "blue", T0 + timedelta(minutes=12), pricer)
    assert (mine.command.action, mine.command.reason) == (Action.OPEN, Reason.RESERVED)
    row = await db.fetchrow(
        "SELECT status, evidence, session_id FROM reservations WHERE reservation_id = 'gh-1'"
    )
    assert row is not None
    assert (row["status"], row["evidence"]) == ("arrived", "gate")
    plate = await db.fetchval("SELECT plate FROM sessions WHERE session_id::text = $1", row["session_id"])
    assert plate == "豫A11111"
    assert await counts(db) == (0, 2, 0)


async def test_a_shared_lot_outside_its_windows_admits_members_only(db: asyncpg.Connection) -> None:
    """Quota 0: a member enters, a stranger is held `not_public`."""
    lot = LotId("share-gl")
    await provision_gate_lots(db, [lot], 2)
    await db.execute(
        "INSERT INTO lot_sharing (lot_id, owner_name, owner_share_percent, rules, members, updated_by,"
        " updated_at) VALUES ($1, 'office', 50, '[]', ARRAY['豫A88888'], 'test', $2)",
        lot,
        T0,
    )
    await db.execute("UPDATE lots SET shared_spaces = 0 WHERE lot_id = $1", lot)
    pricer = StayPricer()
    stranger = await decide_read(db, entry("豫C00001", 10, lot=lot), "blue", T0, pricer)
    assert (stranger.command.action, stranger.command.reason) == (Action.HOLD, Reason.NOT_PUBLIC)
    member = await decide_read(db, entry("豫A88888", 11, lot=lot), "blue", T0, pricer)
    assert (member.command.action, member.command.reason) == (Action.OPEN, Reason.ENTRY)


async def test_a_shared_lots_public_quota_is_kept_at_the_gate(db: asyncpg.Connection) -> None:
    """Inside a window with quota 2 (capacity 5): a hold of the public and one stranger use it up, the
    next stranger is held `quota_full`; the member and the plate holding the space still enter."""
    lot = LotId("quota-gl")
    await provision_gate_lots(db, [lot], 5)
    await db.execute(
        "INSERT INTO lot_sharing (lot_id, owner_name, owner_share_percent, rules, members, updated_by,"
        " updated_at) VALUES ($1, 'office', 50, '[]', ARRAY['豫A88888'], 'test', $2)",
        lot,
        T0,
    )
    await db.execute("UPDATE lots SET shared_spaces = 2 WHERE lot_id = $1", lot)
    await create_hold(db, HoldRequest("qh-1", lot, "豫D00001", WINDOW), T0)
    pricer = StayPricer()
    first = await decide_read(db, entry("豫C00001", 20, lot=lot), "blue", T0, pricer)
    assert (first.command.action, first.command.reason) == (Action.OPEN, Reason.ENTRY)
    second = await decide_read(db, entry("豫C00002", 21, lot=lot), "blue", T0, pricer)
    assert (second.command.action, second.command.reason) == (Action.HOLD, Reason.QUOTA_FULL)
    assert second.command.display == "豫C00002 共享车位已满"
    member = await decide_read(db, entry("豫A88888", 22, lot=lot), "blue", T0, pricer)
    assert (member.command.action, member.command.reason) == (Action.OPEN, Reason.ENTRY)
    later = T0 + timedelta(minutes=12)
    holder = await decide_read(db, entry("豫D00001", 23, 12, lot=lot), "blue", later, pricer)
    assert (holder.command.action, holder.command.reason) == (Action.OPEN, Reason.RESERVED)
    again = await decide_read(db, entry("豫C00002", 24, 13, lot=lot), "blue", later, pricer)
    assert again.command.reason is Reason.QUOTA_FULL  # two of the public inside now
    stored = await db.fetchval(
        "SELECT count(*) FROM gate_commands WHERE lot_id = $1 AND reason = 'quota_full'", lot
    )
    assert stored == 2  # refusals recorded for operators
    await db.execute("UPDATE lots SET shared_spaces = 3 WHERE lot_id = $1", lot)  # a larger window
    opened = await decide_read(db, entry("豫C00002", 25, 14, lot=lot), "blue", later, pricer)
    assert opened.command.reason is Reason.ENTRY
