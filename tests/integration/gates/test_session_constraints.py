"""The sessions table refuses what the pure rules refuse: illegal moves, a second vehicle inside."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from parking_core.sessions import TRANSITIONS, SessionState
from tests.integration.gates.gate_helpers import provision_gate_lots

pytestmark = [pytest.mark.db]
T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
LOT = "constraints-lot"
MOVE = "UPDATE sessions SET state = $2 WHERE session_id = $1"


async def connect(url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(url)
    await provision_gate_lots(conn, [LOT], 10)
    return conn


async def new_session(conn: asyncpg.Connection, state: str, plate: str = "豫A12345") -> uuid.UUID:
    session_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO sessions (session_id, lot_id, kind, state, plate, started_at, amount_fen)"
        " VALUES ($1, $2, 'gate', $3, $4, $5, 0)",
        session_id,
        LOT,
        state,
        plate,
        T0,
    )
    return session_id


async def test_the_table_of_moves_is_the_pure_one(database_url: str) -> None:
    """session_transitions holds exactly parking_core.sessions.TRANSITIONS."""
    conn = await connect(database_url)
    try:
        rows = await conn.fetch("SELECT from_state, to_state FROM session_transitions")
        pure = {(a.value, b.value) for a, targets in TRANSITIONS.items() for b in targets}
        assert {(r["from_state"], r["to_state"]) for r in rows} == pure
    finally:
        await conn.close()


async def test_every_illegal_move_is_refused_by_the_database(database_url: str) -> None:
    """Each (from, to) pair the pure machine refuses fails with check_violation (23514)."""
    conn = await connect(database_url)
    try:
        for current in SessionState:
            for target in SessionState:
                if target is current:
                    continue
                sid = await new_session(conn, current.value, "豫T12345")
                if target in TRANSITIONS[current]:
                    await conn.execute(MOVE, sid, target.value)
                else:
                    with pytest.raises(asyncpg.CheckViolationError) as caught:
                        await conn.execute(MOVE, sid, target.value)
                    assert caught.value.constraint_name == "legal_session_transition"
                await conn.execute("DELETE FROM sessions WHERE session_id = $1", sid)
    finally:
        await conn.close()


async def test_one_vehicle_inside_per_plate_per_lot(database_url: str) -> None:
    """A second pending/open session of a plate at a lot violates one_inside_session_per_plate."""
    conn = await connect(database_url)
    try:
        await new_session(conn, "open", "豫U11111")
        with pytest.raises(asyncpg.UniqueViolationError) as caught:
            await new_session(conn, "pending", "豫U11111")
        assert caught.value.constraint_name == "one_inside_session_per_plate"
        await new_session(conn, "paid", "豫U11111")  # closed stays of the plate are many
    finally:
        await conn.close()
