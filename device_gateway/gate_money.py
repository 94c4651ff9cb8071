"""The money rules at the gate: pay-later at exit, deny-listed entry, the invoice that follows a car."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from asyncpg import Record

from billing.adapters.arrears_store import standing_columns, standing_from
from billing.adapters.ledger_store import (
    LotPolicies,
    append,
    lock_invoice,
    lot_policy_select,
    policies_from,
    raise_invoice,
)
from billing.arrears import LotMoneyPolicy, PayLater, PlateStanding, entry_refused, pay_later_verdict
from billing.invoices import PricedStay as InvoicedStay
from billing.ledger import EntryKind, LedgerEntry
from device_gateway.store import Conn
from parking_core.gate_decisions import ExitOptions
from parking_core.gates import Reason
from parking_core.sessions import SessionState

# Refusals of pay-later that the gate names; the others hold with `payment_due` (pay here).
HELD_FOR = {PayLater.ARREARS: Reason.ARREARS, PayLater.BLACKLISTED: Reason.BLACKLISTED}
MOVE_SESSION = "UPDATE sessions SET state = $2 WHERE session_id = $1"


def standing_at_lot(plate: str, lot: str) -> tuple[str, str]:
    """Return the select list and the join that read a plate's standing and a lot's money policies.

    *plate* and *lot* are SQL (e.g. ``$1``); :func:`standing_from_row` reads the row.
    """
    join = f"LEFT JOIN LATERAL ({lot_policy_select(lot)}) money ON true"
    return standing_columns(plate) + ", money.*", join


_COLUMNS, _JOIN = standing_at_lot("$1", "$2")
STANDING_AT_LOT = f"SELECT {_COLUMNS} FROM (SELECT 1) one {_JOIN}"


@dataclass(frozen=True, slots=True)
class MoneyStanding:
    """A plate's money standing at a lot, read in the gate's transaction."""

    standing: PlateStanding
    lot: LotMoneyPolicy
    policies: LotPolicies | None = None  # the lot's money, due-date and time-zone policy, as read

    @property
    def verdict(self) -> PayLater:
        """Return whether the plate may leave first and pay later here."""
        return pay_later_verdict(self.standing, self.lot)

    @property
    def entry_refused(self) -> bool:
        """Tell whether the lot refuses entry to this (deny-listed) plate."""
        return entry_refused(self.standing, self.lot)


async def money_standing(conn: Conn, plate: str, lot_id: str, now: datetime) -> MoneyStanding:
    """Return *plate*'s standing city-wide and the lot's money policy (one statement)."""
    row = await conn.fetchrow(STANDING_AT_LOT, plate, lot_id)
    assert row is not None, "one row: the lot's columns are null when there is no such lot"
    return standing_from_row(row, plate, now)


def standing_from_row(row: Record, plate: str, now: datetime) -> MoneyStanding:
    """Return the money standing in a row read with :func:`standing_at_lot`'s SQL."""
    policies = policies_from(row)
    lot = policies[0] if policies is not None else LotMoneyPolicy()
    return MoneyStanding(standing_from(row, plate, now), lot, policies)


def exit_options(money: MoneyStanding, priced: bool) -> ExitOptions:
    """Return the ways out a plate has: pay later when eligible (and the stay was priced by tariff)."""
    verdict = money.verdict
    if verdict is PayLater.ELIGIBLE and priced:
        return ExitOptions(pay_later=True)
    return ExitOptions(held_for=HELD_FOR.get(verdict))


async def invoice_session(
    conn: Conn, stay: InvoicedStay, paid_fen: int, now: datetime, policies: LotPolicies | None = None
) -> str | None:
    """Raise the invoice of a session that left to pay later, and move the session to `invoiced`.

    What was already paid at a pay station (*paid_fen*) is a `captured` entry of the invoice.
    """
    invoice_id = await raise_invoice(conn, stay, now, policies)
    if invoice_id is None:
        return None
    if paid_fen:
        locked = await lock_invoice(conn, invoice_id)
        assert locked is not None  # raised just above, in this transaction
        entry = LedgerEntry(invoice_id, EntryKind.CAPTURED, paid_fen, now, f"pay_station:{stay.session_id}")
        await append(conn, locked, (entry,), "gate")
    await conn.execute(MOVE_SESSION, uuid.UUID(stay.session_id), SessionState.INVOICED.value)
    return invoice_id
