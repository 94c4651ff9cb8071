# Copyright 2026 city-parking contributors (Apache-2.0)
"""The money ledger: append-only entries per invoice, and the balance and status derived from them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from billing.errors import LedgerRuleError
from billing.tariff import require_aware


class EntryKind(StrEnum):
    """What one ledger entry records; every amount is positive fen except `adjusted`."""

    INVOICED = "invoiced"  # the invoice was raised: the driver owes its amount
    CAPTURED = "captured"  # a provider captured money for the invoice
    REFUNDED = "refunded"  # money went back to the driver (a duplicate or excess capture)
    WRITTEN_OFF = "written_off"  # the city gave up collecting part of what is owed
    ADJUSTED = "adjusted"  # a signed correction of what is owed (a re-pricing, a goodwill credit)


class InvoiceStatus(StrEnum):
    """An invoice's status, derived from its ledger entries and the time; never stored."""

    UNPAID = "unpaid"  # something is owed and the due date has not passed
    IN_ARREARS = "in_arrears"  # something is owed past the due date
    PAID = "paid"  # nothing is owed and the money was paid
    WRITTEN_OFF = "written_off"  # nothing is owed because the rest was written off


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One movement of money on one invoice; entries are never changed or deleted."""

    invoice_id: str
    kind: EntryKind
    amount_fen: int
    at: datetime
    reference: str = ""  # the provider transaction or refund id, or the reason written by a person

    def __post_init__(self) -> None:
        require_aware("at", self.at)
        if self.kind is not EntryKind.ADJUSTED and self.amount_fen <= 0:
            raise LedgerRuleError(self.invoice_id, f"a {self.kind.value} entry must be positive fen")
        if self.kind is EntryKind.ADJUSTED and self.amount_fen == 0:
            raise LedgerRuleError(self.invoice_id, "an adjustment of 0 fen records nothing")


@dataclass(frozen=True, slots=True)
class Balance:
    """The sums of one invoice's entries by kind, and what follows from them."""

    invoiced_fen: int = 0
    adjusted_fen: int = 0
    captured_fen: int = 0
    refunded_fen: int = 0
    written_off_fen: int = 0

    @property
    def owed_fen(self) -> int:
        """What the driver was asked for: the invoice plus its adjustments."""
        return self.invoiced_fen + self.adjusted_fen

    @property
    def applied_fen(self) -> int:
        """What was paid and kept: captured minus refunded."""
        return self.captured_fen - self.refunded_fen

    @property
    def due_fen(self) -> int:
        """What is still to be paid: owed minus applied minus written off."""
        return self.owed_fen - self.applied_fen - self.written_off_fen

    def status(self, due_at: datetime, now: datetime) -> InvoiceStatus:
        """Return the status of an invoice with this balance, due at *due_at*, seen at *now*."""
        if self.due_fen > 0:
            return InvoiceStatus.IN_ARREARS if now >= due_at else InvoiceStatus.UNPAID
        return InvoiceStatus.WRITTEN_OFF if self.written_off_fen else InvoiceStatus.PAID

    def with_entry(self, entry: LedgerEntry) -> Balance:
        """Return the balance after *entry*, refusing by name an entry the rules forbid."""
        amount = entry.amount_fen
        match entry.kind:
            case EntryKind.INVOICED:
                if self.invoiced_fen:
                    raise LedgerRuleError(entry.invoice_id, "the invoice was already raised")
                return replace(self, invoiced_fen=amount)
            case EntryKind.CAPTURED:
                return replace(self, captured_fen=self.captured_fen + amount)
            case EntryKind.REFUNDED:
                if amount > self.applied_fen:
                    raise LedgerRuleError(entry.invoice_id, "a refund larger than what was kept")
                return replace(self, refunded_fen=self.refunded_fen + amount)
            case EntryKind.WRITTEN_OFF:
                if amount > self.due_fen:
                    raise LedgerRuleError(entry.invoice_id, "a write-off larger than what is due")
                return replace(self, written_off_fen=self.written_off_fen + amount)
            case EntryKind.ADJUSTED:
                if self.due_fen + amount < 0:
                    raise LedgerRuleError(entry.invoice_id, "an adjustment below zero due (refund instead)")
                return replace(self, adjusted_fen=self.adjusted_fen + amount)


def balance_of(entries: Iterable[LedgerEntry]) -> Balance:
    """Return the balance of one invoice's entries, applied in order (refusing illegal ones)."""
    found = Balance()
    for entry in entries:
        found = found.with_entry(entry)
    return found


def split_capture(balance: Balance, amount_fen: int) -> tuple[int, int]:
    """Return (applied, refunded) for a capture of *amount_fen*: what is due is kept, the rest refunded.

    A capture for an invoice that is already paid is refunded whole; a capture larger than what
    is due (the invoice was adjusted down, or paid twice through two payments) is refunded in part.
    """
    if amount_fen <= 0:
        raise LedgerRuleError("", "a capture must be positive fen")
    applied = min(amount_fen, max(0, balance.due_fen))
    return applied, amount_fen - applied
