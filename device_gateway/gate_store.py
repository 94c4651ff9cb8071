"""The gate path's store: one small transaction per plate read, idempotent by (device_id, seq, ts)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import asyncpg

from billing.invoices import PricedStay as InvoicedStay
from device_gateway.gate_money import (
    exit_options,
    invoice_session,
    money_standing,
    standing_at_lot,
    standing_from_row,
)
from device_gateway.gate_pricing import PricedStay, Stay, StayPricer
from device_gateway.gate_steps import UNWATCHED, Steps
from device_gateway.store import Conn
from parking_core.adapters.holds_store import arrive_by_gate
from parking_core.adapters.lot_room_lock import lock_room
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

# Gate decisions of one lot are serialised by its room lock (parking_core/adapters/lot_room_lock.py), a
# transaction-scoped advisory lock that new holds take too; sensor batches and the liveness sweep lock
# lots rows and never that one, so a gate never waits for a sensor batch, nor it for a gate.
#
# After the lock, one statement reads what a decision needs ($1 device, $2 seq, $3 read ts, $4 lot,
# $5 plate): the read's command if it was decided before (a redelivered read, here or by another
# gateway), the lot (null when it is gone) and its gate policy. Each round trip is a wait in the
# gateway's event loop and in the database, so a read costs as few as it can (docs/gates.md, "Latency").
DECISION_COLUMNS = """
c.command_id, c.ts, c.action, c.reason, c.plate, c.amount_fen, c.display, c.session_id, c.match_score,
l.lot_id, l.capacity, l.tariff_id, p.min_confidence, p.no_entry_record, p.no_entry_fee_fen,
p.pending_window_s, p.min_match_score, p.arrears_limit_fen AS gate_arrears_limit_fen,
EXISTS (SELECT 1 FROM lot_plate_denials d WHERE d.lot_id = $4 AND d.plate = $5) AS denied
"""
DECISION_FROM = """
FROM (SELECT 1) one
LEFT JOIN gate_commands c ON c.device_id = $1 AND c.read_seq = $2 AND c.read_ts = $3
LEFT JOIN lots l ON l.lot_id = $4
LEFT JOIN lot_gate_policies p ON p.lot_id = $4
"""
READ_AT_EXIT = f"SELECT {DECISION_COLUMNS} {DECISION_FROM}"
# An entry reads the rest of its context in the same statement: the sessions inside, this plate's own
# inside session, the holds (parking_core.reservations: other plates' come off the room, this plate's
# opens the gate with `reserved`), the sharing (a shared lot outside its windows admits members; in a
# window, what of its public quota is taken: the inside sessions of plates that are no members and
# the holds of other such plates, parking_core.gate_decisions) and the plate's money standing with
# the lot's money policy (gate_money.py).
MONEY_COLUMNS, MONEY_JOIN = standing_at_lot("$5", "$4")
READ_AT_ENTRY = f"""
SELECT {DECISION_COLUMNS},
       (SELECT count(*) FROM sessions s WHERE s.lot_id = $4 AND s.state IN ('pending', 'open')) AS inside,
       own.session_id AS own_session_id, own.state AS own_state, own.started_at AS own_started_at,
       h.others, h.mine, l.shared_spaces,
       EXISTS (SELECT 1 FROM lot_sharing m WHERE m.lot_id = $4 AND $5 = ANY(m.members)) AS member,
       shared.public_taken,
       {MONEY_COLUMNS}
{DECISION_FROM}
{MONEY_JOIN}
LEFT JOIN LATERAL (SELECT session_id, state, started_at FROM sessions
                   WHERE lot_id = $4 AND plate = $5 AND state IN ('pending', 'open')) own ON true
CROSS JOIN LATERAL (SELECT count(*) FILTER (WHERE r.plate <> $5)::integer AS others,
                           coalesce(bool_or(r.plate = $5), false) AS mine
                    FROM reservations r WHERE r.lot_id = $4 AND r.status = 'held') h
LEFT JOIN LATERAL (
    SELECT (SELECT count(*) FROM sessions s WHERE s.lot_id = $4 AND s.state IN ('pending', 'open')
              AND NOT coalesce(s.plate = ANY(m.members), false))
         + (SELECT count(*) FROM reservations r WHERE r.lot_id = $4 AND r.status = 'held' AND r.plate <> $5
              AND NOT r.plate = ANY(m.members)) AS public_taken
    FROM lot_sharing m WHERE m.lot_id = $4
) shared ON true
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
# The command and the read, in one statement with the evidence of the read on its session ($19, $20)
# and, for an entry, the pending session it opens ($18). One round trip for every decision.
RECORD = """
WITH opened AS (
    INSERT INTO sessions (session_id, lot_id, kind, state, plate, plate_color, started_at, no_entry)
    SELECT $13, $3, 'gate', 'pending', $15, $16, $6, false WHERE $18::boolean
), evidence AS (
    INSERT INTO session_evidence (session_id, ts, kind, device_id, detail)
    SELECT $13, $6, $19, $2, $20::jsonb WHERE $19::text IS NOT NULL
), command AS (
    INSERT INTO gate_commands (command_id, device_id, lot_id, lane, read_seq, read_ts, ts, action, reason,
                               plate, amount_fen, display, session_id, match_score, sends, last_sent_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $7)
)
INSERT INTO gate_reads (ts, device_id, seq, lot_id, received_at, lane, plate, plate_color, confidence,
                        command_id)
VALUES ($6, $2, $5, $3, $7, $4, $15, $16, $17, $1)
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
            arrears_limit_fen=row["gate_arrears_limit_fen"],
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
        await lock_room(conn, read.lot_id)
        steps.lap("lock")
        entry = read.lane is Lane.ENTRY
        key = (read.device_id, read.seq, read.ts, read.lot_id, read.plate)
        row = await conn.fetchrow(READ_AT_ENTRY if entry else READ_AT_EXIT, *key)
        assert row is not None, "one row: (SELECT 1) left joined to the rest"
        if row["command_id"] is not None:
            return stored_command(row, read.device_id)
        if row["lot_id"] is None:
            raise LookupError(f"lot {read.lot_id!r} of gate {read.device_id!r} is gone")
        policy = policy_from(row, read.plate)
        steps.lap("read")
        if entry:
            stored = await _entry(conn, read, plate_color, row, policy, now=now, steps=steps)
        else:
            decision, also = await _exit(
                conn, read, _Lot(policy, row["tariff_id"], plate_color), pricer, steps
            )
            stored = await _record(conn, read, plate_color, decision, now, also=also)
        steps.lap("record")
    steps.lap("commit")
    return stored


@dataclass(frozen=True, slots=True)
class _Also:
    """What the record statement writes besides the command and the read."""

    open_pending: bool = False  # a pending session with the command's session_id
    evidence_kind: str | None = None  # evidence of the read on the command's session
    evidence: Mapping[str, object] | None = None


async def _entry(  # noqa: PLR0913 -- the read, what the lot says, who watches the steps
    conn: Conn,
    read: PlateRead,
    plate_color: str | None,
    row: asyncpg.Record,
    policy: GatePolicy,
    *,
    now: datetime,
    steps: Steps = UNWATCHED,
) -> StoredCommand:
    own = None
    if row["own_session_id"] is not None:
        own = InsideSession(
            str(row["own_session_id"]), read.plate, row["own_state"] == "pending", row["own_started_at"]
        )
    money = standing_from_row(row, read.plate, read.ts)
    if money.entry_refused:  # on the city's money deny list, at a lot that refuses such plates entry
        policy = replace(policy, deny_list=policy.deny_list | {read.plate})
    quota = None  # a shared lot in a window counts its public quota for plates of the public
    if (row["shared_spaces"] or 0) > 0 and not row["member"] and not row["mine"]:
        quota = row["shared_spaces"]
    context = EntryContext(
        row["capacity"],
        row["inside"],
        own,
        held_spots=row["others"],
        reserved_for_plate=row["mine"],
        arrears_fen=money.standing.arrears_fen,
        closed_to_public=row["shared_spaces"] == 0 and not row["member"],
        public_quota=quota,
        public_taken=row["public_taken"] or 0,
    )
    decision = decide_entry(read, policy, context)
    steps.lap("decide")
    detail = {"seq": read.seq, "confidence": read.confidence, "reason": decision.command.reason.value}
    if decision.effect is SessionEffect.REUSE and own is not None:
        return await _record(conn, read, plate_color, decision, now, also=_Also(False, "entry_read", detail))
    if decision.effect is not SessionEffect.OPEN_PENDING:
        return await _record(conn, read, plate_color, decision, now)
    if own is not None:  # its exit was missed: the old stay ends unpriced, for operators
        await conn.execute(CLOSE_SESSION, uuid.UUID(own.session_id), read.ts, "superseded")
        await _evidence(conn, own.session_id, read, "superseded", {"seq": read.seq})
    session_id = str(uuid.uuid4())
    opening = Decision(decision.command, decision.effect, session_id, None, decision.events)
    try:
        stored = await _record(conn, read, plate_color, opening, now, also=_Also(True, "entry_read", detail))
    except asyncpg.UniqueViolationError as exc:  # 23505: one_inside_session_per_plate
        if exc.constraint_name != "one_inside_session_per_plate":
            raise
        raise SessionAlreadyOpenError(read.lot_id, read.plate, None) from exc
    if decision.command.reason is Reason.RESERVED:  # the held plate arrived: its hold ends, linked
        await arrive_by_gate(conn, read.lot_id, read.plate, read.ts, session_id)
    return stored


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
) -> tuple[Decision, _Also]:
    """Decide an exit and write its session's changes; return the decision and the read's evidence."""
    found = await _find_inside(conn, read, lot.policy)
    steps.lap("match")
    if not isinstance(found, tuple):
        return await _unmatched(conn, read, lot, decide_unmatched_exit(read, found, lot.policy)), _Also()
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
    evidence = _Also(evidence_kind="exit_read", evidence=detail | {"read_plate": read.plate})
    if decision.effect is SessionEffect.CLOSE:
        if row["state"] == SessionState.PENDING.value:  # the entry passage was missed, yet here it is
            await conn.execute(MOVE_SESSION, row["session_id"], SessionState.OPEN.value)
        await _close_priced(conn, row["session_id"], read.ts, priced or PricedStay(amount), charge.due_fen)
        if decision.command.reason is Reason.PAY_LATER and quote is not None:  # the invoice follows it
            bill = InvoicedStay(charge.session_id, read.lot_id, charge.plate, quote)
            await invoice_session(conn, bill, charge.paid_fen, read.ts, money.policies)
    steps.lap("session")
    return decision, evidence


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


async def _record(  # noqa: PLR0913 -- the read, its decision, and what else to write with them
    conn: Conn,
    read: PlateRead,
    plate_color: str | None,
    decision: Decision,
    now: datetime,
    *,
    also: _Also = _Also(),
) -> StoredCommand:
    command_id = uuid.uuid4()
    session_id = uuid.UUID(decision.session_id) if decision.session_id else None
    c = decision.command
    evidence = json.dumps(also.evidence, ensure_ascii=False) if also.evidence is not None else None
    await conn.execute(
        RECORD, command_id, read.device_id, read.lot_id, read.lane.value, read.seq, read.ts, now,
        c.action.value, c.reason.value, c.plate, c.amount_fen, c.display, session_id, decision.match_score,
        read.plate, plate_color, read.confidence, also.open_pending, also.evidence_kind, evidence,
    )  # fmt: skip
    if decision.events:
        await record_events(conn, decision.events, command_id)
    return StoredCommand(command_id, read.device_id, now, c, session_id)
