"""The gate path's store: one small transaction per plate read, idempotent by (device_id, seq, ts)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import asyncpg

from billing.invoices import PricedStay as InvoicedStay
from device_gateway.gate_money import exit_options, invoice_session, money_standing
from device_gateway.gate_pricing import PricedStay, Stay, StayPricer
from device_gateway.gate_steps import UNWATCHED, Steps
from device_gateway.store import Conn
from parking_core.adapters.holds_store import arrive_by_gate
from parking_core.errors import SessionAlreadyOpenError
from parking_core.gate_decisions import (
    Decision,
    EntryContext,
    InsideSession,
    SessionEffect,
    StayCharge,
    decide_entry,
    decide_exit,
    decide_unmatched_exit,
    match_exit,
)
from parking_core.gates import Action, Command, GateEvent, GatePolicy, Lane, NoEntryPolicy, PlateRead, Reason
from parking_core.plate_matching import MatchResult, PlateMatch
from parking_core.sessions import SessionState

# Gate decisions of one lot are serialised by a transaction-scoped advisory lock in this namespace
# (the sensor writer locks lots rows; gates never wait for a sensor batch, nor it for them).
GATE_LOCK_NAMESPACE = 1_617_200_010
LOCK_LOT = "SELECT pg_advisory_xact_lock($1::integer, hashtext($2))"

FIND_COMMAND = """
SELECT command_id, ts, action, reason, plate, amount_fen, display, session_id, match_score
FROM gate_commands WHERE device_id = $1 AND read_seq = $2 AND read_ts = $3
"""
LOT_POLICY = """
SELECT l.capacity, l.tariff_id, p.min_confidence, p.no_entry_record, p.no_entry_fee_fen,
       p.pending_window_s, p.min_match_score, p.arrears_limit_fen,
       EXISTS (SELECT 1 FROM lot_plate_denials d WHERE d.lot_id = l.lot_id AND d.plate = $2) AS denied
FROM lots l LEFT JOIN lot_gate_policies p ON p.lot_id = l.lot_id WHERE l.lot_id = $1
"""
# Holds at the lot (parking_core.reservations): those of other plates come off the room, this plate's
# opens the gate with `reserved`; a shared lot outside its windows admits its members only. The row
# lock on the lot serialises entries with new holds (holds_store takes the same lock).
HOLDS_AT_ENTRY = """
SELECT count(*) FILTER (WHERE r.plate <> $2)::integer AS others,
       coalesce(bool_or(r.plate = $2), false) AS mine,
       (SELECT shared_spaces FROM lots WHERE lot_id = $1 FOR UPDATE) AS shared_spaces,
       EXISTS (SELECT 1 FROM lot_sharing s WHERE s.lot_id = $1 AND $2 = ANY(s.members)) AS member
FROM reservations r WHERE r.lot_id = $1 AND r.status = 'held'
"""
INSIDE_COUNT = "SELECT count(*) FROM sessions WHERE lot_id = $1 AND state IN ('pending', 'open')"
# A shared lot in a window: what of its public quota is taken (parking_core.gate_decisions), i.e. the
# inside sessions of plates that are no members and the holds of other such plates. Read only for a
# plate of the public at a shared lot, after HOLDS_AT_ENTRY took the lot's row lock.
PUBLIC_TAKEN = """
SELECT (SELECT count(*) FROM sessions s WHERE s.lot_id = $1 AND s.state IN ('pending', 'open')
          AND NOT coalesce(s.plate = ANY(m.members), false))
     + (SELECT count(*) FROM reservations r WHERE r.lot_id = $1 AND r.status = 'held' AND r.plate <> $2
          AND NOT r.plate = ANY(m.members))
FROM lot_sharing m WHERE m.lot_id = $1
"""
INSIDE_OF_PLATE = """
SELECT session_id, plate, state, started_at, paid_fen, no_entry, amount_fen, plate_color
FROM sessions WHERE lot_id = $1 AND plate = $2 AND state IN ('pending', 'open')
"""
INSIDE_PLATES = """
SELECT session_id, plate, state, started_at FROM sessions
WHERE lot_id = $1 AND state IN ('pending', 'open') AND plate IS NOT NULL
"""
INSERT_SESSION = """
INSERT INTO sessions (session_id, lot_id, kind, state, plate, plate_color, started_at, no_entry,
                      amount_fen)
VALUES ($1, $2, 'gate', $3, $4, $5, $6, $7, $8)
"""
MOVE_SESSION = "UPDATE sessions SET state = $2 WHERE session_id = $1"
CLOSE_SESSION = """
UPDATE sessions SET state = 'closed', ended_at = greatest($2, started_at), closed_by = $3
WHERE session_id = $1
"""
PRICE_SESSION = """
UPDATE sessions SET state = 'priced', amount_fen = $2, tariff_id = $3, tariff_version = $4,
                    vehicle_class = $5, charges = $6::jsonb
WHERE session_id = $1
"""
INSERT_EVIDENCE = """
INSERT INTO session_evidence (session_id, ts, kind, device_id, detail) VALUES ($1, $2, $3, $4, $5::jsonb)
"""
INSERT_COMMAND = """
INSERT INTO gate_commands (command_id, device_id, lot_id, lane, read_seq, read_ts, ts, action, reason,
                           plate, amount_fen, display, session_id, match_score, sends, last_sent_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $7)
"""
INSERT_READ = """
INSERT INTO gate_reads (ts, device_id, seq, lot_id, received_at, lane, plate, plate_color, confidence,
                        command_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT ON CONSTRAINT one_read_per_device_seq_ts DO NOTHING
"""
INSERT_EVENT = """
INSERT INTO gate_events (ts, kind, device_id, lot_id, plate, session_id, command_id, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)
"""


@dataclass(frozen=True, slots=True)
class StoredCommand:
    """A command as committed: what to publish on ``gates/{device_id}/command``."""

    command_id: uuid.UUID
    device_id: str
    ts: datetime
    command: Command
    session_id: uuid.UUID | None = None
    duplicate: bool = False  # a redelivered read: the command it got the first time

    def payload(self) -> bytes:
        """Return the JSON of the command message (CONTRACT.md)."""
        body: dict[str, object] = {
            "command_id": str(self.command_id),
            "ts": self.ts.isoformat(),
            "action": self.command.action.value,
            "reason": self.command.reason.value,
            "amount_fen": self.command.amount_fen,
            "display": self.command.display,
        }
        if self.command.plate is not None:
            body["plate"] = self.command.plate
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def stored_command(row: asyncpg.Record, device_id: str) -> StoredCommand:
    """Return a command as stored (a redelivered read's, or one to send again)."""
    command = Command(
        Action(row["action"]), Reason(row["reason"]), row["plate"], row["amount_fen"], row["display"]
    )
    return StoredCommand(row["command_id"], device_id, row["ts"], command, row["session_id"], duplicate=True)


def policy_from(row: asyncpg.Record, plate: str) -> GatePolicy:
    """Return a lot's gate policy from its row (defaults where the lot has none)."""
    if row["min_confidence"] is None:
        policy = GatePolicy()
    else:
        policy = GatePolicy(
            min_confidence=row["min_confidence"],
            no_entry_record=NoEntryPolicy(row["no_entry_record"]),
            no_entry_fee_fen=row["no_entry_fee_fen"],
            pending_window=timedelta(seconds=row["pending_window_s"]),
            min_match_score=row["min_match_score"],
            arrears_limit_fen=row["arrears_limit_fen"],
        )
    if row["denied"]:
        return replace(policy, deny_list=frozenset({plate}))
    return policy


async def decide_read(  # noqa: PLR0913 -- the read, and who watches its steps (gate_steps.py)
    conn: Conn,
    read: PlateRead,
    plate_color: str | None,
    now: datetime,
    pricer: StayPricer,
    *,
    steps: Steps = UNWATCHED,
) -> StoredCommand:
    """Decide a plate read in one transaction; a read already decided gets its stored command."""
    async with conn.transaction():
        key = (read.device_id, read.seq, read.ts)
        found = await conn.fetchrow(FIND_COMMAND, *key)
        if found is not None:
            return stored_command(found, read.device_id)
        steps.lap("find_command")
        await conn.execute(LOCK_LOT, GATE_LOCK_NAMESPACE, read.lot_id)
        steps.lap("gate_lock")
        found = await conn.fetchrow(FIND_COMMAND, *key)  # another gateway decided it meanwhile
        if found is not None:
            return stored_command(found, read.device_id)
        lot = await conn.fetchrow(LOT_POLICY, read.lot_id, read.plate)
        if lot is None:
            raise LookupError(f"lot {read.lot_id!r} of gate {read.device_id!r} is gone")
        policy = policy_from(lot, read.plate)
        steps.lap("policy")
        if read.lane is Lane.ENTRY:
            decision = await _entry(conn, read, plate_color, policy, lot["capacity"], steps=steps)
        else:
            decision = await _exit(conn, read, _Lot(policy, lot["tariff_id"], plate_color), pricer, steps)
        stored = await _record(conn, read, plate_color, decision, now)
        steps.lap("record")
    steps.lap("commit")
    return stored


async def _entry(  # noqa: PLR0913 -- the read, what the lot says, who watches the steps
    conn: Conn,
    read: PlateRead,
    plate_color: str | None,
    policy: GatePolicy,
    capacity: int,
    *,
    steps: Steps = UNWATCHED,
) -> Decision:
    inside = await conn.fetchval(INSIDE_COUNT, read.lot_id)
    row = await conn.fetchrow(INSIDE_OF_PLATE, read.lot_id, read.plate)
    own = None
    if row is not None:
        own = InsideSession(
            str(row["session_id"]), row["plate"], row["state"] == "pending", row["started_at"]
        )
    steps.lap("inside")
    money = await money_standing(conn, read.plate, read.lot_id, read.ts)
    if money.entry_refused:  # on the city's money deny list, at a lot that refuses such plates entry
        policy = replace(policy, deny_list=policy.deny_list | {read.plate})
    steps.lap("money")
    holds = await conn.fetchrow(HOLDS_AT_ENTRY, read.lot_id, read.plate)  # locks the lot's row
    assert holds is not None, "an aggregate returns one row"
    quota, taken = None, 0
    if (holds["shared_spaces"] or 0) > 0 and not holds["member"] and not holds["mine"]:
        quota, taken = holds["shared_spaces"], await conn.fetchval(PUBLIC_TAKEN, read.lot_id, read.plate) or 0
    steps.lap("holds")
    context = EntryContext(
        capacity,
        inside,
        own,
        held_spots=holds["others"],
        reserved_for_plate=holds["mine"],
        arrears_fen=money.standing.arrears_fen,
        closed_to_public=holds["shared_spaces"] == 0 and not holds["member"],
        public_quota=quota,
        public_taken=taken,
    )
    decision = decide_entry(read, policy, context)
    steps.lap("decide")
    detail = {"seq": read.seq, "confidence": read.confidence, "reason": decision.command.reason.value}
    if decision.effect is SessionEffect.REUSE and own is not None:
        await _evidence(conn, own.session_id, read, "entry_read", detail)
        return decision
    if decision.effect is not SessionEffect.OPEN_PENDING:
        return decision
    if own is not None:  # its exit was missed: the old stay ends unpriced, for operators
        await conn.execute(CLOSE_SESSION, uuid.UUID(own.session_id), read.ts, "superseded")
        await _evidence(conn, own.session_id, read, "superseded", {"seq": read.seq})
    session_id = uuid.uuid4()
    try:
        await conn.execute(
            INSERT_SESSION, session_id, read.lot_id, "pending", read.plate, plate_color, read.ts, False, None
        )
    except asyncpg.UniqueViolationError as exc:  # 23505: one_inside_session_per_plate
        raise SessionAlreadyOpenError(read.lot_id, read.plate, None) from exc
    await _evidence(conn, str(session_id), read, "entry_read", detail)
    if decision.command.reason is Reason.RESERVED:  # the held plate arrived: its hold ends, linked
        await arrive_by_gate(conn, read.lot_id, read.plate, read.ts, str(session_id))
    steps.lap("session")
    return Decision(decision.command, decision.effect, str(session_id), None, decision.events)


@dataclass(frozen=True, slots=True)
class _Lot:
    """What an exit decision needs of the lot."""

    policy: GatePolicy
    tariff_id: str | None
    plate_color: str | None  # the read's colour, for sessions that lack one


async def _find_inside(
    conn: Conn, read: PlateRead, policy: GatePolicy
) -> tuple[asyncpg.Record, float] | MatchResult:
    """Return the matched inside session and its score, or why none matched."""
    row = await conn.fetchrow(INSIDE_OF_PLATE, read.lot_id, read.plate)
    if row is not None:
        return row, 1.0
    rows = await conn.fetch(INSIDE_PLATES, read.lot_id)  # tolerant matching: rare, so not indexed
    inside = [
        InsideSession(str(r["session_id"]), r["plate"], r["state"] == "pending", r["started_at"])
        for r in rows
    ]
    match = match_exit(read, inside, policy)
    if not isinstance(match, PlateMatch):
        return match
    row = await conn.fetchrow(INSIDE_OF_PLATE, read.lot_id, match.plate)
    assert row is not None, "the matched session is locked by the lot's advisory lock"
    return row, match.score


async def _exit(
    conn: Conn, read: PlateRead, lot: _Lot, pricer: StayPricer, steps: Steps = UNWATCHED
) -> Decision:
    found = await _find_inside(conn, read, lot.policy)
    steps.lap("match")
    if not isinstance(found, tuple):
        return await _unmatched(conn, read, lot, decide_unmatched_exit(read, found, lot.policy))
    row, score = found
    priced: PricedStay | None = None
    if row["no_entry"]:
        amount = row["amount_fen"] or 0
    else:
        color = row["plate_color"] or lot.plate_color
        stay = Stay(read.lot_id, lot.tariff_id, row["plate"], color, row["started_at"], read.ts)
        priced = await pricer.price(conn, stay)
        amount = priced.amount_fen
    steps.lap("price")
    charge = StayCharge(str(row["session_id"]), row["plate"], row["started_at"], amount, row["paid_fen"])
    money = await money_standing(conn, row["plate"], read.lot_id, read.ts)
    steps.lap("money")
    quote = priced.quote if priced is not None else None
    decision = decide_exit(read, charge, score, exit_options(money, quote is not None))
    steps.lap("decide")
    detail = {"seq": read.seq, "score": score, "reason": decision.command.reason.value, "amount_fen": amount}
    await _evidence(conn, charge.session_id, read, "exit_read", detail | {"read_plate": read.plate})
    if decision.effect is SessionEffect.CLOSE:
        if row["state"] == SessionState.PENDING.value:  # the entry passage was missed, yet here it is
            await conn.execute(MOVE_SESSION, row["session_id"], SessionState.OPEN.value)
        await _close_priced(conn, row["session_id"], read.ts, priced or PricedStay(amount), charge.due_fen)
        if decision.command.reason is Reason.PAY_LATER and quote is not None:  # the invoice follows it
            bill = InvoicedStay(charge.session_id, read.lot_id, charge.plate, quote)
            await invoice_session(conn, bill, charge.paid_fen, read.ts, money.policies)
    steps.lap("session")
    return decision


async def _unmatched(conn: Conn, read: PlateRead, lot: _Lot, decision: Decision) -> Decision:
    if decision.effect is not SessionEffect.NO_ENTRY_SESSION:
        return decision
    session_id = uuid.uuid4()
    fee = lot.policy.no_entry_fee_fen
    await conn.execute(
        INSERT_SESSION, session_id, read.lot_id, "open", read.plate, lot.plate_color, read.ts, True, fee
    )
    await _evidence(conn, str(session_id), read, "exit_read", {"seq": read.seq, "no_entry_fee_fen": fee})
    return Decision(decision.command, decision.effect, str(session_id), decision.match_score, decision.events)


async def _close_priced(
    conn: Conn, session_id: uuid.UUID, at: datetime, priced: PricedStay, due_fen: int
) -> None:
    await conn.execute(CLOSE_SESSION, session_id, at, "exit")
    tariff = (priced.tariff_id, priced.tariff_version, priced.vehicle_class)
    await conn.execute(PRICE_SESSION, session_id, priced.amount_fen, *tariff, priced.charges_json())
    if due_fen == 0:
        await conn.execute(MOVE_SESSION, session_id, SessionState.PAID.value)


async def _evidence(
    conn: Conn, session_id: str, read: PlateRead, kind: str, detail: Mapping[str, object]
) -> None:
    text = json.dumps(detail, ensure_ascii=False)
    await conn.execute(INSERT_EVIDENCE, uuid.UUID(session_id), read.ts, kind, read.device_id, text)


async def record_events(conn: Conn, events: Iterable[GateEvent], command_id: uuid.UUID | None) -> None:
    """Write gate events for operators."""
    for e in events:
        session = uuid.UUID(e.session_id) if e.session_id else None
        detail = json.dumps(e.detail, ensure_ascii=False)
        await conn.execute(
            INSERT_EVENT, e.ts, e.kind.value, e.device_id, e.lot_id, e.plate, session, command_id, detail
        )


async def _record(
    conn: Conn, read: PlateRead, plate_color: str | None, decision: Decision, now: datetime
) -> StoredCommand:
    command_id = uuid.uuid4()
    session_id = uuid.UUID(decision.session_id) if decision.session_id else None
    c = decision.command
    await conn.execute(
        INSERT_COMMAND, command_id, read.device_id, read.lot_id, read.lane.value, read.seq, read.ts, now,
        c.action.value, c.reason.value, c.plate, c.amount_fen, c.display, session_id, decision.match_score,
    )  # fmt: skip
    await conn.execute(
        INSERT_READ, read.ts, read.device_id, read.seq, read.lot_id, now, read.lane.value, read.plate,
        plate_color, read.confidence, command_id,
    )  # fmt: skip
    await record_events(conn, decision.events, command_id)
    return StoredCommand(command_id, read.device_id, now, c, session_id)
