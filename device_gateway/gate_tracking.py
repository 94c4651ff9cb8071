"""After a command: passages confirm it, acks record it, silence re-sends or flags it (SQL)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from device_gateway.gate_store import record_events
from device_gateway.store import Conn
from parking_core.gates import GateEvent, GateEventKind, Lane, Passage
from parking_core.ids import DeviceId, LotId

# The gate's own messages prove it alive (parking_core.liveness.LIFE_SIGNS): online, last heard from
# now, silent after its window (written at most every 5 s, or a tenth of its window, while online: not
# once per read, as for a sensor, store.TOUCH_DEVICES). A gate coming to life gets a liveness
# deadline (sql/0030), which the sweep turns offline when it passes; back from offline it is a
# comms_restored event, as for a sensor (store.RESTORE_DEVICES).
GATE_DEVICE = """
WITH seen AS (
    UPDATE devices d SET status = 'online', last_seen_at = greatest(d.last_seen_at, $2::timestamptz),
                         silent_after = greatest(d.last_seen_at, $2::timestamptz)
                                        + make_interval(secs => d.stale_after_s)
    FROM devices was
    WHERE d.device_id = $1 AND d.kind = 'gate' AND was.device_id = d.device_id
      AND (d.status <> 'online' OR d.last_seen_at IS NULL
           OR d.last_seen_at < $2::timestamptz - make_interval(secs => least(5, d.stale_after_s / 10.0)))
    RETURNING d.device_id, d.silent_after, was.status AS was
), restored AS (
    INSERT INTO device_presence_changes (ts, device_id, event, detail)
    SELECT $2, device_id, 'comms_restored', 'message received' FROM seen WHERE was = 'offline'
), armed AS (
    INSERT INTO device_deadlines (device_id, check_at)
    SELECT device_id, silent_after FROM seen WHERE was <> 'online'
    ON CONFLICT (device_id) DO UPDATE SET check_at = least(device_deadlines.check_at, excluded.check_at)
)
SELECT kind, lot_id, lane FROM devices WHERE device_id = $1
"""
INSERT_PASSAGE = """
INSERT INTO gate_passages (ts, device_id, seq, lot_id, received_at, lane, plate)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT ON CONSTRAINT one_passage_per_device_seq_ts DO NOTHING
RETURNING seq
"""
# The oldest open command of the gate still waiting for its vehicle within the lot's window
# (a passage naming a plate prefers that plate's command).
AWAITING_COMMAND = """
SELECT c.command_id, c.session_id FROM gate_commands c
LEFT JOIN lot_gate_policies p ON p.lot_id = c.lot_id
WHERE c.device_id = $1 AND c.action = 'open' AND c.passage_at IS NULL AND c.expired_at IS NULL
  AND coalesce(c.read_ts, c.ts) <= $2
  AND coalesce(c.read_ts, c.ts) + make_interval(secs => coalesce(p.pending_window_s, 120)) >= $2
ORDER BY (c.plate IS NOT DISTINCT FROM $3) DESC, coalesce(c.read_ts, c.ts), c.read_seq, c.command_id
LIMIT 1 FOR UPDATE OF c
"""
CONFIRM = "UPDATE gate_commands SET passage_at = $2 WHERE command_id = $1"
LINK_PASSAGE = "UPDATE gate_passages SET command_id = $4 WHERE device_id = $1 AND seq = $2 AND ts = $3"
OPEN_PENDING = """
UPDATE sessions SET state = 'open' WHERE session_id = $1 AND state = 'pending' RETURNING session_id
"""
EVIDENCE = """
INSERT INTO session_evidence (session_id, ts, kind, device_id, detail)
VALUES ($1, $2, $3, $4, $5::jsonb)
"""
# The window runs from the command's ts: when the gateway received the read (its clock, as *now*),
# never the read's own ts, so a camera uploading late (or a gate whose clock is off) still gets
# its whole window. Passages are matched above on the gate's clock (its read_ts and passage ts).
EXPIRE = """
WITH gone AS (
    UPDATE gate_commands c SET expired_at = $1
    FROM lots l LEFT JOIN lot_gate_policies p ON p.lot_id = l.lot_id
    WHERE l.lot_id = c.lot_id AND c.action = 'open' AND c.passage_at IS NULL AND c.expired_at IS NULL
      AND c.ts + make_interval(secs => coalesce(p.pending_window_s, 120)) < $1
    RETURNING c.command_id, c.device_id, c.lot_id, coalesce(c.read_ts, c.ts) AS at, c.plate, c.session_id
), cancelled AS (
    UPDATE sessions s SET state = 'cancelled'
    FROM gone g WHERE s.session_id = g.session_id AND s.state = 'pending'
    RETURNING s.session_id
)
SELECT g.*, (g.session_id IN (SELECT session_id FROM cancelled)) AS cancelled FROM gone g
"""
RECORD_ACK = """
WITH ack AS (
    INSERT INTO gate_acks (ts, device_id, command_id, ok, received_at) VALUES ($1, $2, $3, $4, $5)
)
UPDATE gate_commands SET acked_at = coalesce(acked_at, $5), ack_ok = $4
WHERE command_id = $3 AND device_id = $2
RETURNING command_id
"""
DUE_FOR_RESEND = """
UPDATE gate_commands SET sends = sends + 1, last_sent_at = $1
WHERE acked_at IS NULL AND flagged_at IS NULL AND last_sent_at < $2 AND sends < $3
RETURNING command_id, device_id, ts, action, reason, plate, amount_fen, display, session_id, match_score
"""
FLAG_UNACKED = """
UPDATE gate_commands SET flagged_at = $1
WHERE acked_at IS NULL AND flagged_at IS NULL AND last_sent_at < $2 AND sends >= $3
RETURNING command_id, device_id, lot_id, ts, plate, session_id, sends
"""


@dataclass(frozen=True, slots=True)
class GateDevice:
    """A provisioned gate: its lot and the lane(s) it serves."""

    device_id: DeviceId
    lot_id: LotId
    lane: str  # entry, exit or both


async def find_gate(conn: Conn, device_id: str, seen_at: datetime) -> GateDevice | None:
    """Return the gate *device_id* (noting when it was heard from), or None if unknown or not a gate."""
    row = await conn.fetchrow(GATE_DEVICE, device_id, seen_at)
    if row is None or row["kind"] != "gate":
        return None
    return GateDevice(DeviceId(device_id), LotId(row["lot_id"]), row["lane"])


async def record_passage(conn: Conn, passage: Passage, received_at: datetime) -> list[GateEvent]:
    """Confirm the command the passage belongs to, or record tailgating; repeats change nothing."""
    async with conn.transaction():
        p = passage
        fresh = await conn.fetchval(
            INSERT_PASSAGE, p.ts, p.device_id, p.seq, p.lot_id, received_at, p.lane.value, p.plate
        )
        if fresh is None:
            return []
        row = await conn.fetchrow(AWAITING_COMMAND, p.device_id, p.ts, p.plate)
        if row is None:
            events = [GateEvent(GateEventKind.TAILGATING, p.device_id, p.lot_id, p.ts, p.plate)]
            await record_events(conn, events, None)
            return events
        await conn.execute(CONFIRM, row["command_id"], p.ts)
        await conn.execute(LINK_PASSAGE, p.device_id, p.seq, p.ts, row["command_id"])
        session_id = row["session_id"]
        if session_id is not None:
            if p.lane is Lane.ENTRY:
                await conn.fetchval(OPEN_PENDING, session_id)
            await conn.execute(EVIDENCE, session_id, p.ts, "passage", p.device_id, f'{{"seq": {p.seq}}}')
        return []


async def expire_awaiting(conn: Conn, now: datetime) -> list[GateEvent]:
    """Flag open commands whose passage never came; cancel their pending entries."""
    async with conn.transaction():
        rows = await conn.fetch(EXPIRE, now)
        events = []
        for r in rows:
            session = str(r["session_id"]) if r["session_id"] else None
            detail = {"cancelled": str(bool(r["cancelled"])).lower()}
            kind = GateEventKind.MISSING_PASSAGE
            event = GateEvent(kind, r["device_id"], r["lot_id"], r["at"], r["plate"], session, detail)
            events.append(event)
            await record_events(conn, [event], r["command_id"])
            if r["cancelled"]:
                await conn.execute(EVIDENCE, r["session_id"], now, "cancelled", r["device_id"], "{}")
        return events


@dataclass(frozen=True, slots=True)
class Ack:
    """A gate acknowledged a command (``gates/{device_id}/ack``)."""

    device_id: str
    command_id: uuid.UUID
    ok: bool
    ts: datetime


async def record_ack(conn: Conn, ack: Ack, received_at: datetime) -> bool:
    """Record a gate's ack; return False if it names no command of that gate."""
    try:
        found = await conn.fetchval(RECORD_ACK, ack.ts, ack.device_id, ack.command_id, ack.ok, received_at)
    except asyncpg.DataError:  # class 22: not a command id we could have issued
        return False
    return found is not None


async def resend_or_flag(
    conn: Conn, now: datetime, quiet_before: datetime, max_sends: int
) -> tuple[list[asyncpg.Record], list[GateEvent]]:
    """Return commands to publish again, and flag those sent max_sends times without an ack."""
    async with conn.transaction():
        again = await conn.fetch(DUE_FOR_RESEND, now, quiet_before, max_sends)
        flagged = await conn.fetch(FLAG_UNACKED, now, quiet_before, max_sends)
        events = []
        for r in flagged:
            session = str(r["session_id"]) if r["session_id"] else None
            detail = {"sends": str(r["sends"])}
            kind = GateEventKind.UNACKED_COMMAND
            event = GateEvent(kind, r["device_id"], r["lot_id"], now, r["plate"], session, detail)
            events.append(event)
            await record_events(conn, [event], r["command_id"])
        return list(again), events
