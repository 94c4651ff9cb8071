# Copyright 2026 city-parking contributors (Apache-2.0)
"""Invoices: exactly one per priced session, its lines from the tariff engine, its due date by policy."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any

from billing.errors import LedgerRuleError
from billing.ledger import EntryKind, LedgerEntry
from billing.quotes import Quote, line_to_json
from billing.tariff import require_aware

DEFAULT_PAY_WITHIN = timedelta(days=3)  # the common Chinese 补缴 window for a bill after exit


@dataclass(frozen=True, slots=True)
class DuePolicy:
    """When an invoice falls due: *pay_within* after the exit that raised it."""

    pay_within: timedelta = DEFAULT_PAY_WITHIN

    def due_at(self, exit_at: datetime) -> datetime:
        """Return the due date of an invoice for a stay that ended at *exit_at*."""
        return exit_at + self.pay_within


@dataclass(frozen=True, slots=True)
class PricedStay:
    """What an invoice is raised for: one priced session of one plate at one lot."""

    session_id: str
    lot_id: str
    plate: str
    quote: Quote


@dataclass(frozen=True, slots=True)
class Invoice:
    """A bill for one session; its status is derived from the ledger, never stored here."""

    invoice_id: str
    session_id: str
    lot_id: str
    plate: str
    entry_at: datetime
    exit_at: datetime
    amount_fen: int
    lines: tuple[dict[str, Any], ...]
    tariff_id: str
    tariff_version: int
    issued_at: datetime
    due_at: datetime


def invoice_id_for(session_id: str) -> str:
    """Return the invoice id of *session_id*: the same session always names the same invoice."""
    return "inv_" + hashlib.sha256(session_id.encode()).hexdigest()[:24]


def issue_invoice(
    stay: PricedStay, issued_at: datetime, policy: DuePolicy, tz: tzinfo
) -> tuple[Invoice, LedgerEntry] | None:
    """Return the invoice of *stay* and its `invoiced` ledger entry, or None for a free stay.

    Idempotent by construction: the id comes from the session, so raising it twice yields the
    same invoice, and the store keeps one per session.
    """
    require_aware("issued_at", issued_at)
    quote = stay.quote
    if quote.amount_fen < 0:
        raise LedgerRuleError(invoice_id_for(stay.session_id), "a negative price cannot be invoiced")
    if quote.amount_fen == 0:
        return None
    invoice = Invoice(
        invoice_id=invoice_id_for(stay.session_id),
        session_id=stay.session_id,
        lot_id=stay.lot_id,
        plate=stay.plate,
        entry_at=quote.entry,
        exit_at=quote.exit,
        amount_fen=quote.amount_fen,
        lines=tuple(line_to_json(line, tz) for line in quote.lines),
        tariff_id=quote.tariff_id,
        tariff_version=quote.tariff_version,
        issued_at=issued_at,
        due_at=policy.due_at(quote.exit),
    )
    entry = LedgerEntry(invoice.invoice_id, EntryKind.INVOICED, quote.amount_fen, issued_at, stay.session_id)
    return invoice, entry
