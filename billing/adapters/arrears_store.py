"""Arrears in PostgreSQL: a plate's standing, reminders into the outbox, the deny list and its lifting."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asyncpg import Record

from billing.adapters.ledger_store import AuditEntry, Conn, WriteOff, audit, write_off
from billing.arrears import (
    ArrearsPolicy,
    OpenInvoice,
    PlateStanding,
    Reminder,
    arrears_fen,
    blacklist_reason,
    reminder_due,
)
from billing.ledger import Balance

PLATE_OF_INVOICE = "SELECT plate FROM invoices WHERE invoice_id = $1"
PAGE = 1000  # open invoices handled per round trip by the arrears run


def standing_columns(plate: str) -> str:
    """Return the select list of a plate's standing, *plate* being the SQL of the plate (e.g. ``$1``).

    Its open invoices come as (invoice_id, lot_id, due_at, due_fen) records: what is overdue at a
    given instant is the pure rule's (``billing.arrears.arrears_fen``), not the query's.
    """
    return f"""
  EXISTS (SELECT 1 FROM plate_bindings WHERE plate = {plate} AND unbound_at IS NULL) AS bound,
  COALESCE((SELECT a.pay_later_consent FROM plate_bindings b JOIN driver_accounts a USING (account_id)
            WHERE b.plate = {plate} AND b.unbound_at IS NULL), false) AS consented,
  EXISTS (SELECT 1 FROM money_deny_list WHERE plate = {plate} AND lifted_at IS NULL) AS blacklisted,
  ARRAY(SELECT (invoice_id, lot_id, due_at, due_fen) FROM invoice_balances
        WHERE plate = {plate} AND due_fen > 0) AS open_invoices
"""


STANDING = f"SELECT {standing_columns('$1')}"
OPEN_OF_PLATE = """
SELECT invoice_id, plate, lot_id, due_at, due_fen FROM invoice_balances WHERE plate = $1 AND due_fen > 0
"""
OPEN_PAGE = """
SELECT b.invoice_id, b.plate, b.lot_id, b.due_at, b.due_fen,
       (SELECT max(step) FROM arrears_reminders r WHERE r.invoice_id = b.invoice_id) AS last_step
FROM invoice_balances b
WHERE b.due_fen > 0 AND b.due_at <= $1 AND (b.due_at, b.invoice_id) > ($2, $3)
ORDER BY b.due_at, b.invoice_id
LIMIT $4
"""
# Invoiced sessions whose invoice is overdue go in_arrears (sessions_invoiced keeps this small).
OVERDUE_SESSIONS = """
UPDATE sessions s SET state = 'in_arrears'
FROM invoices i JOIN invoice_balances b USING (invoice_id)
WHERE s.state = 'invoiced' AND i.session_id = s.session_id::text AND b.due_fen > 0 AND b.due_at <= $1
"""
INSERT_REMINDER = """
INSERT INTO arrears_reminders (invoice_id, plate, step, kind, due_fen, due_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT ON CONSTRAINT one_reminder_per_step DO NOTHING
"""
LIST_PLATE = """
INSERT INTO money_deny_list (plate, reason, listed_at, listed_by) VALUES ($1, $2, $3, $4)
ON CONFLICT (plate) WHERE lifted_at IS NULL DO NOTHING
RETURNING listing_id
"""
LIFT_PLATE = """
UPDATE money_deny_list SET lifted_at = $2, lifted_by = $3 WHERE plate = $1 AND lifted_at IS NULL
RETURNING listing_id
"""
CLAIM_REMINDERS = """
SELECT reminder_id, invoice_id, plate, step, kind, due_fen, due_at FROM arrears_reminders
WHERE delivered_at IS NULL AND attempts < $1 ORDER BY reminder_id LIMIT $2 FOR UPDATE SKIP LOCKED
"""
MARK_DELIVERED = (
    "UPDATE arrears_reminders SET delivered_at = $2, attempts = attempts + 1 WHERE reminder_id = $1"
)
MARK_FAILED = "UPDATE arrears_reminders SET attempts = attempts + 1, last_error = $2 WHERE reminder_id = $1"


def _open(row: Record) -> OpenInvoice:
    return OpenInvoice(row["invoice_id"], row["plate"], row["lot_id"], row["due_at"], row["due_fen"])


async def plate_standing(conn: Conn, plate: str, now: datetime) -> PlateStanding:
    """Return what the exit decision needs to know of *plate*'s money, city-wide (one round trip)."""
    row = await conn.fetchrow(STANDING, plate)
    assert row is not None  # a SELECT without FROM always returns one row
    return standing_from(row, plate, now)


def standing_from(row: Record, plate: str, now: datetime) -> PlateStanding:
    """Return the standing of *plate* at *now* from a row with :func:`standing_columns`."""
    invoices = [OpenInvoice(i, plate, lot, due_at, due) for i, lot, due_at, due in row["open_invoices"]]
    return PlateStanding(row["bound"], row["consented"], row["blacklisted"], arrears_fen(invoices, now))


async def plate_arrears(conn: Conn, plate: str, now: datetime) -> int:
    """Return *plate*'s arrears across every lot at *now*."""
    return arrears_fen([_open(r) for r in await conn.fetch(OPEN_OF_PLATE, plate)], now)


async def lift_if_repaid(conn: Conn, plate: str, now: datetime, actor: str) -> bool:
    """Lift *plate* off the deny list once it owes nothing overdue; the next exit sees it at once."""
    if await plate_arrears(conn, plate, now):
        return False
    lifted = await conn.fetchval(LIFT_PLATE, plate, now, actor)
    if lifted is not None:
        await audit(
            conn, now, AuditEntry(actor, "deny_list.lifted", plate, detail={"reason": "arrears repaid"})
        )
    return lifted is not None


async def write_off_and_lift(conn: Conn, decision: WriteOff, now: datetime) -> Balance | None:
    """Write off part or all of an invoice; a plate that then owes nothing overdue leaves the deny list."""
    async with conn.transaction():
        balance = await write_off(conn, decision, now)
        if balance is not None:
            plate = await conn.fetchval(
                "SELECT plate FROM invoices WHERE invoice_id = $1", decision.invoice_id
            )
            await lift_if_repaid(conn, plate, now, decision.actor)
    return balance


async def list_plate(conn: Conn, plate: str, reason: str, now: datetime, actor: str) -> bool:
    """Put *plate* on the deny list (once); return whether it was added now."""
    listed = await conn.fetchval(LIST_PLATE, plate, reason, now, actor)
    if listed is not None:
        await audit(conn, now, AuditEntry(actor, "deny_list.listed", plate, detail={"reason": reason}))
    return listed is not None


@dataclass(frozen=True, slots=True)
class ArrearsRun:
    """What one arrears run did."""

    reminders: int
    listed: int


async def run_arrears(conn: Conn, now: datetime, policy: ArrearsPolicy) -> ArrearsRun:
    """Write due reminders to the outbox and put plates that qualify on the deny list."""
    horizon = max(now, now - min(policy.reminder_offsets, default=timedelta(0)))  # reminders before due
    cursor: tuple[datetime, str] = (datetime.min.replace(tzinfo=now.tzinfo), "")
    await conn.execute(OVERDUE_SESSIONS, now)
    reminders = listed = 0
    by_plate: dict[str, list[OpenInvoice]] = defaultdict(list)
    while rows := await conn.fetch(OPEN_PAGE, horizon, *cursor, PAGE):
        for row in rows:
            invoice = _open(row)
            by_plate[invoice.plate].append(invoice)
            reminder = reminder_due(invoice, policy, now, row["last_step"])
            if reminder is not None:
                reminders += await _remind(conn, reminder, now)
        cursor = (rows[-1]["due_at"], rows[-1]["invoice_id"])
    for plate, invoices in by_plate.items():
        reason = blacklist_reason(invoices, policy, now)
        if reason is not None:
            listed += await list_plate(conn, plate, reason, now, "arrears-run")
    return ArrearsRun(reminders, listed)


async def _remind(conn: Conn, reminder: Reminder, now: datetime) -> int:
    status = await conn.execute(
        INSERT_REMINDER,
        reminder.invoice_id,
        reminder.plate,
        reminder.step,
        reminder.kind.value,
        reminder.due_fen,
        reminder.due_at,
        now,
    )
    return 1 if status.endswith(" 1") else 0


async def deliver_reminders(
    conn: Conn,
    send: Callable[[dict[str, Any]], Awaitable[None]],
    now: datetime,
    batch: int = 100,
    max_attempts: int = 10,
) -> int:
    """Send undelivered reminders through *send* (one transaction); return how many were delivered."""
    delivered = 0
    async with conn.transaction():
        for row in await conn.fetch(CLAIM_REMINDERS, max_attempts, batch):
            message = dict(row) | {"due_at": row["due_at"].isoformat()}
            try:
                await send(message)
            except Exception as exc:  # any failure of the channel is recorded and retried
                await conn.execute(MARK_FAILED, row["reminder_id"], repr(exc)[:500])
                continue
            await conn.execute(MARK_DELIVERED, row["reminder_id"], now)
            delivered += 1
    return delivered
