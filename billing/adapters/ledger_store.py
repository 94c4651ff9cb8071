"""The ledger in PostgreSQL: invoices raised once per session, entries appended under a row lock."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from billing.arrears import LotMoneyPolicy
from billing.invoices import DuePolicy, Invoice, PricedStay, issue_invoice
from billing.ledger import Balance, EntryKind, InvoiceStatus, LedgerEntry

Conn = asyncpg.Connection | PoolConnectionProxy  # a plain connection or one from the pool


def lot_policy_select(lot: str) -> str:
    """Return the SELECT of a lot's money policy row, *lot* being the SQL of its id (e.g. ``$1``)."""
    return f"""
SELECT l.time_zone, p.pay_later, p.arrears_limit_fen, p.deny_entry_when_blacklisted, p.pay_within_s
FROM lots l LEFT JOIN lot_money_policies p USING (lot_id) WHERE l.lot_id = {lot}
"""


LOT_POLICY = lot_policy_select("$1")
# No conflict target: the invoice id is a function of the session id, so a concurrent raise of the
# same session conflicts on the primary key as often as on `session_id`, and an arbiter naming only
# `session_id` lets the other one through as a 23505 (unique_violation) on `invoices_pkey`.
INSERT_INVOICE = """
INSERT INTO invoices (invoice_id, session_id, lot_id, plate, entry_at, exit_at, amount_fen, lines,
                      tariff_id, tariff_version, issued_at, due_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12)
ON CONFLICT DO NOTHING
RETURNING invoice_id
"""
INSERT_BALANCE = """
INSERT INTO invoice_balances (invoice_id, plate, lot_id, due_at, invoiced_fen) VALUES ($1, $2, $3, $4, $5)
"""
LOCK_BALANCE = """
SELECT invoice_id, plate, lot_id, due_at, invoiced_fen, adjusted_fen, captured_fen, refunded_fen,
       written_off_fen
FROM invoice_balances WHERE invoice_id = $1 FOR UPDATE
"""
INSERT_ENTRY = """
INSERT INTO ledger_entries (invoice_id, lot_id, kind, amount_fen, at, reference, actor)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
UPDATE_BALANCE = """
UPDATE invoice_balances SET invoiced_fen = $2, adjusted_fen = $3, captured_fen = $4,
       refunded_fen = $5, written_off_fen = $6
WHERE invoice_id = $1
"""
INVOICE_OF_SESSION = "SELECT invoice_id FROM invoices WHERE session_id = $1"
SESSION_OF_INVOICE = "SELECT session_id FROM invoices WHERE invoice_id = $1"
# The session follows its invoice (docs/money.md): only from the states named, so a replay moves nothing.
FOLLOW = "UPDATE sessions SET state = $2 WHERE session_id = $1 AND state = ANY($3::text[])"


@dataclass(frozen=True, slots=True)
class LockedInvoice:
    """An invoice's balance, read under `FOR UPDATE` in the caller's transaction."""

    invoice_id: str
    plate: str
    lot_id: str
    due_at: datetime
    balance: Balance


LotPolicies = tuple[LotMoneyPolicy, DuePolicy, ZoneInfo]


async def lot_policy(conn: Conn, lot_id: str) -> LotPolicies | None:
    """Return a lot's money policy, due policy and time zone (defaults where it set none)."""
    return policies_from(await conn.fetchrow(LOT_POLICY, lot_id))


def policies_from(row: asyncpg.Record | None) -> LotPolicies | None:
    """Return the policies of a row of :func:`lot_policy_select` (None: no such lot)."""
    if row is None or row["time_zone"] is None:
        return None
    default = LotMoneyPolicy()
    money = LotMoneyPolicy(
        default.pay_later if row["pay_later"] is None else row["pay_later"],
        default.arrears_limit_fen if row["arrears_limit_fen"] is None else row["arrears_limit_fen"],
        bool(row["deny_entry_when_blacklisted"]),
    )
    due = DuePolicy() if row["pay_within_s"] is None else DuePolicy(timedelta(seconds=row["pay_within_s"]))
    return money, due, ZoneInfo(row["time_zone"])


async def lock_invoice(conn: Conn, invoice_id: str) -> LockedInvoice | None:
    """Lock and return an invoice's balance (inside a transaction), or None if there is none."""
    row = await conn.fetchrow(LOCK_BALANCE, invoice_id)
    if row is None:
        return None
    balance = Balance(
        row["invoiced_fen"],
        row["adjusted_fen"],
        row["captured_fen"],
        row["refunded_fen"],
        row["written_off_fen"],
    )
    return LockedInvoice(row["invoice_id"], row["plate"], row["lot_id"], row["due_at"], balance)


async def append(conn: Conn, locked: LockedInvoice, entries: tuple[LedgerEntry, ...], actor: str) -> Balance:
    """Append *entries* to a locked invoice's ledger and return its new balance.

    The pure rules (`Balance.with_entry`) refuse an illegal entry before anything is written; the
    database refuses an UPDATE or DELETE of an entry, a second `invoiced` entry and a second refund.
    """
    balance = locked.balance
    for entry in entries:
        balance = balance.with_entry(entry)
    await conn.executemany(
        INSERT_ENTRY,
        [
            (e.invoice_id, locked.lot_id, e.kind.value, e.amount_fen, e.at, e.reference, actor)
            for e in entries
        ],
    )
    await conn.execute(
        UPDATE_BALANCE,
        locked.invoice_id,
        balance.invoiced_fen,
        balance.adjusted_fen,
        balance.captured_fen,
        balance.refunded_fen,
        balance.written_off_fen,
    )
    return balance


async def raise_invoice(
    conn: Conn, stay: PricedStay, now: datetime, policies: LotPolicies | None = None
) -> str | None:
    """Raise the invoice of a priced session once; return its id (None for a free stay).

    Idempotent by session: raising it again, concurrently or after a crash, returns the same id
    and appends nothing. Runs in the caller's transaction (the gate path's: three statements), or
    in one of its own. *policies* are the lot's, when the caller has read them already.
    """
    policies = policies or await lot_policy(conn, stay.lot_id)
    if policies is None:
        raise LookupError(f"unknown lot {stay.lot_id!r}")
    _, due, tz = policies
    issued = issue_invoice(stay, now, due, tz)
    if issued is None:
        return None
    if conn.is_in_transaction():
        return await _insert_invoice(conn, *issued)
    async with conn.transaction():
        return await _insert_invoice(conn, *issued)


async def _insert_invoice(conn: Conn, invoice: Invoice, entry: LedgerEntry) -> str:
    inserted = await conn.fetchval(INSERT_INVOICE, *_invoice_row(invoice))
    if inserted is None:
        return str(await conn.fetchval(INVOICE_OF_SESSION, invoice.session_id))
    balance = Balance().with_entry(entry)  # the pure rule, on a balance nobody else can see yet
    await conn.execute(
        INSERT_BALANCE,
        invoice.invoice_id,
        invoice.plate,
        invoice.lot_id,
        invoice.due_at,
        balance.invoiced_fen,
    )
    await conn.execute(INSERT_ENTRY, *_entry_row(entry, invoice.lot_id, "system"))
    return invoice.invoice_id


def _entry_row(entry: LedgerEntry, lot_id: str, actor: str) -> tuple[object, ...]:
    return (entry.invoice_id, lot_id, entry.kind.value, entry.amount_fen, entry.at, entry.reference, actor)


def _invoice_row(invoice: Invoice) -> tuple[object, ...]:
    return (
        invoice.invoice_id,
        invoice.session_id,
        invoice.lot_id,
        invoice.plate,
        invoice.entry_at,
        invoice.exit_at,
        invoice.amount_fen,
        json.dumps(list(invoice.lines), ensure_ascii=False),
        invoice.tariff_id,
        invoice.tariff_version,
        invoice.issued_at,
        invoice.due_at,
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the money audit log: who did what, to which plate, account or invoice."""

    actor: str
    action: str
    plate: str | None = None
    account_id: str | None = None
    invoice_id: str | None = None
    detail: dict[str, object] = field(default_factory=dict)


async def audit(conn: Conn, now: datetime, entry: AuditEntry) -> None:
    """Write one row of the money audit log."""
    await conn.execute(
        "INSERT INTO money_audit (at, actor, action, plate, account_id, invoice_id, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)",
        now,
        entry.actor,
        entry.action,
        entry.plate,
        entry.account_id,
        entry.invoice_id,
        json.dumps(entry.detail, ensure_ascii=False),
    )


@dataclass(frozen=True, slots=True)
class WriteOff:
    """A decision to stop collecting: how much (None: all that is due), why, and by whom."""

    invoice_id: str
    amount_fen: int | None
    reason: str
    actor: str
    kind: EntryKind = EntryKind.WRITTEN_OFF  # or ADJUSTED: a signed correction of what is owed


def adjustment(invoice_id: str, amount_fen: int, reason: str, actor: str) -> WriteOff:
    """Return the decision to change what is owed by *amount_fen* (negative: owes less)."""
    return WriteOff(invoice_id, amount_fen, reason, actor, EntryKind.ADJUSTED)


async def write_off(conn: Conn, decision: WriteOff, now: datetime) -> Balance | None:
    """Write off part or all of an invoice (or adjust it), with its reason and an audit row.

    Returns None when there is no such invoice; the ledger's rules refuse more than is due.
    """
    async with conn.transaction():
        locked = await lock_invoice(conn, decision.invoice_id)
        if locked is None:
            return None
        amount = locked.balance.due_fen if decision.amount_fen is None else decision.amount_fen
        entry = LedgerEntry(decision.invoice_id, decision.kind, amount, now, decision.reason)
        balance = await append(conn, locked, (entry,), decision.actor)
        await session_follows(conn, decision.invoice_id, balance, locked.due_at, now)
        detail: dict[str, object] = {"amount_fen": amount, "reason": decision.reason}
        action = "write_off" if decision.kind is EntryKind.WRITTEN_OFF else "adjust"
        await audit(
            conn,
            now,
            AuditEntry(decision.actor, action, locked.plate, None, decision.invoice_id, detail),
        )
    return balance


async def session_follows(
    conn: Conn, invoice_id: str, balance: Balance, due_at: datetime, now: datetime
) -> None:
    """Move the gate session of an invoice to the state its balance says (invoiced sessions only).

    Paid in full → `paid`; written off → `written_off` (through `in_arrears`, the only way there);
    due past the due date → `in_arrears`. Invoices raised for stays that are not sessions (ids
    that are not UUIDs) have no session to move.
    """
    try:
        session_id = uuid.UUID(str(await conn.fetchval(SESSION_OF_INVOICE, invoice_id)))
    except ValueError:
        return
    status = balance.status(due_at, now)
    if status is InvoiceStatus.PAID:
        await conn.execute(FOLLOW, session_id, "paid", ["invoiced", "in_arrears"])
    elif status is InvoiceStatus.WRITTEN_OFF:
        await conn.execute(FOLLOW, session_id, "in_arrears", ["invoiced"])
        await conn.execute(FOLLOW, session_id, "written_off", ["in_arrears"])
    elif status is InvoiceStatus.IN_ARREARS:
        await conn.execute(FOLLOW, session_id, "in_arrears", ["invoiced"])
