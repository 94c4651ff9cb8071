"""SQL of the operator's gate and session routes: manual release, look-ups, payments, plates."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from guidance_api import problem_types as pt
from guidance_api.problems import ProblemError
from parking_core.gates import GATE_COMMANDS_CHANNEL, Reason, display_text

GATE = "SELECT lot_id, lane FROM devices WHERE device_id = $1 AND kind = 'gate'"
INSIDE_OF_PLATE = """
SELECT session_id, state FROM sessions
WHERE lot_id = $1 AND plate = $2 AND state IN ('pending', 'open') FOR UPDATE
"""
NEW_SESSION = """
INSERT INTO sessions (session_id, lot_id, kind, state, plate, started_at)
VALUES ($1, $2, 'gate', 'pending', $3, $4)
"""
MOVE = "UPDATE sessions SET state = $2 WHERE session_id = $1"
CLOSE = """
UPDATE sessions SET state = 'closed', ended_at = greatest($2, started_at), closed_by = 'manual'
WHERE session_id = $1
"""
EVIDENCE = """
INSERT INTO session_evidence (session_id, ts, kind, device_id, detail) VALUES ($1, $2, $3, $4, $5::jsonb)
"""
# Sent by the gateway's sweep (sends < max, last_sent_at long ago): the API holds no MQTT client.
MANUAL_COMMAND = """
INSERT INTO gate_commands (command_id, device_id, lot_id, lane, ts, action, reason, plate, amount_fen,
                           display, session_id, sends, last_sent_at)
VALUES ($1, $2, $3, $4, $5, 'open', 'manual', $6, 0, $7, $8, 0, '-infinity')
"""
NOTIFY_GATEWAY = "SELECT pg_notify($1, $2)"
MANUAL_EVENT = """
INSERT INTO gate_events (ts, kind, device_id, lot_id, plate, session_id, command_id, detail)
VALUES ($1, 'manual_release', $2, $3, $4, $5, $6, $7::jsonb)
"""


@dataclass(frozen=True, slots=True)
class Release:
    """A manual release as the operator asked for it."""

    device_id: str
    reason: str
    plate: str | None
    who: str  # the token id (or "admin")
    at: datetime


Conn = asyncpg.Connection | PoolConnectionProxy


async def gate_lot(conn: Conn, device_id: str) -> tuple[str, str]:
    """Return the (lot_id, lane) of a gate, or raise unknown_gate."""
    row = await conn.fetchrow(GATE, device_id)
    if row is None:
        raise ProblemError(pt.UNKNOWN_GATE, f"no gate {device_id!r}")
    return row["lot_id"], row["lane"]


async def release_gate(conn: Conn, lot_id: str, gate_lane: str, r: Release) -> dict[str, object]:
    """Queue an open command, move the plate's session by the documented policy, audit it all."""
    async with conn.transaction():
        inside = None if r.plate is None else await conn.fetchrow(INSIDE_OF_PLATE, lot_id, r.plate)
        lane = gate_lane if gate_lane != "both" else ("exit" if inside is not None else "entry")
        session_id: uuid.UUID | None = None
        detail = json.dumps({"reason": r.reason, "by": r.who}, ensure_ascii=False)
        if r.plate is not None and lane == "entry" and inside is None:
            session_id = uuid.uuid4()
            await conn.execute(NEW_SESSION, session_id, lot_id, r.plate, r.at)
        elif inside is not None and lane == "exit":
            session_id = inside["session_id"]
            if inside["state"] == "pending":
                await conn.execute(MOVE, session_id, "open")
            await conn.execute(CLOSE, session_id, r.at)
        elif inside is not None:
            session_id = inside["session_id"]
        if session_id is not None:
            await conn.execute(EVIDENCE, session_id, r.at, "manual_release", r.device_id, detail)
        command_id = uuid.uuid4()
        display = display_text(r.plate, Reason.MANUAL)
        await conn.execute(
            MANUAL_COMMAND, command_id, r.device_id, lot_id, lane, r.at, r.plate, display, session_id
        )
        await conn.execute(MANUAL_EVENT, r.at, r.device_id, lot_id, r.plate, session_id, command_id, detail)
        await conn.execute(NOTIFY_GATEWAY, GATE_COMMANDS_CHANNEL, r.device_id)  # delivered at commit
    return {
        "command_id": str(command_id),
        "device_id": r.device_id,
        "lot_id": lot_id,
        "lane": lane,
        "plate": r.plate,
        "session_id": None if session_id is None else str(session_id),
        "reason": r.reason,
    }


SESSIONS = """
SELECT s.session_id, s.lot_id, s.kind, s.state, s.plate, s.plate_color, s.spot_id, s.started_at,
       s.ended_at, s.amount_fen, s.paid_fen, s.no_entry, s.tariff_id, s.tariff_version, s.closed_by
FROM sessions s JOIN lots l ON l.lot_id = s.lot_id
WHERE {scope}
  AND ($4::text IS NULL OR s.lot_id = $4) AND ($5::text IS NULL OR s.plate = $5)
  AND ($6::text IS NULL OR s.state = $6)
  AND ($7::timestamptz IS NULL OR s.ended_at IS NULL OR s.ended_at >= $7)
  AND ($8::timestamptz IS NULL OR s.started_at < $8)
  AND ($9::timestamptz IS NULL OR (s.started_at, s.session_id) < ($9, $10::uuid))
ORDER BY s.started_at DESC, s.session_id DESC
LIMIT $11
"""
EVIDENCE_OF = """
SELECT session_id, ts, kind, device_id, detail FROM session_evidence
WHERE session_id = ANY($1::uuid[]) ORDER BY session_id, ts, evidence_id
"""
AUDIT_LOOKUP = """
INSERT INTO plate_lookups (ts, token_id, label, plate, lot_id, route) VALUES ($1, $2, $3, $4, $5, $6)
"""
SESSION_LOT = """
SELECT s.lot_id, s.state, l.district_id FROM sessions s JOIN lots l USING (lot_id) WHERE s.session_id = $1
"""
PAY = """
WITH p AS (
    INSERT INTO session_payments (session_id, amount_fen, paid_at, source, reference)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT ON CONSTRAINT one_payment_per_reference DO NOTHING
    RETURNING payment_id
)
UPDATE sessions SET paid_fen = paid_fen + $2 WHERE session_id = $1 AND EXISTS (SELECT 1 FROM p)
RETURNING paid_fen
"""
PAID_SO_FAR = "SELECT paid_fen FROM sessions WHERE session_id = $1"
SPOT_SESSION = """
SELECT s.session_id, sp.lot_id, l.district_id
FROM spots sp JOIN lots l ON l.lot_id = sp.lot_id
LEFT JOIN sessions s ON s.spot_id = sp.spot_id AND s.state IN ('pending', 'open')
WHERE sp.spot_id = $1
"""
ATTACH = "UPDATE sessions SET plate = $2, plate_color = coalesce($3, plate_color) WHERE session_id = $1"
