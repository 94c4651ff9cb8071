# Copyright 2026 city-parking contributors (Apache-2.0)
"""Reconciliation: a provider's daily statement against the ledger, and daily totals per lot."""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from billing.errors import BillingError
from billing.ledger import Balance, EntryKind

STATEMENT_COLUMNS = (
    "trade_time",
    "type",
    "transaction_id",
    "out_trade_no",
    "refund_id",
    "out_refund_no",
    "amount_fen",
)


class StatementError(BillingError, ValueError):
    """Raised when a statement file cannot be read; names the line and the field."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"statement line {line}: {problem}")
        self.line = line
        self.problem = problem


class MovementKind(StrEnum):
    """A movement of money at the provider: a payment in, or a refund out."""

    PAYMENT = "payment"
    REFUND = "refund"


@dataclass(frozen=True, slots=True)
class Movement:
    """One payment or refund, keyed by the provider transaction id or our refund id."""

    kind: MovementKind
    reference: str  # payment: the provider's transaction_id; refund: our out_refund_no
    amount_fen: int
    at: datetime | None = None


def parse_statement(text: str) -> list[Movement]:
    """Return the movements of a statement file (CSV with the `STATEMENT_COLUMNS` header)."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(rows[0]) != STATEMENT_COLUMNS:
        raise StatementError(1, f"the header must be {','.join(STATEMENT_COLUMNS)}")
    found = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(STATEMENT_COLUMNS):
            raise StatementError(number, f"{len(row)} fields, expected {len(STATEMENT_COLUMNS)}")
        fields = dict(zip(STATEMENT_COLUMNS, row, strict=True))
        try:
            kind = MovementKind(fields["type"])
            at = datetime.fromisoformat(fields["trade_time"])
        except ValueError as exc:
            raise StatementError(number, str(exc)) from exc
        amount = fields["amount_fen"]
        if not amount.isascii() or not amount.isdigit() or int(amount) <= 0:
            raise StatementError(number, "amount_fen must be a positive integer")
        reference = fields["transaction_id"] if kind is MovementKind.PAYMENT else fields["out_refund_no"]
        if not reference:
            raise StatementError(number, "the movement names no transaction_id / out_refund_no")
        found.append(Movement(kind, reference, int(amount), at))
    return found


class MismatchReason(StrEnum):
    """Why a movement does not reconcile."""

    NOT_IN_LEDGER = "not_in_ledger"  # the provider moved money our ledger does not know
    NOT_IN_STATEMENT = "not_in_statement"  # our ledger records money the provider does not list
    AMOUNT_DIFFERS = "amount_differs"
    DUPLICATE_IN_STATEMENT = "duplicate_in_statement"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One movement that does not reconcile, with its reason and both sides' amounts."""

    reason: MismatchReason
    kind: MovementKind
    reference: str
    ledger_fen: int | None
    statement_fen: int | None


def reconcile(statement: Iterable[Movement], ledger: Iterable[Movement]) -> list[Mismatch]:
    """Return every mismatch between a provider's statement and our ledger's movements, sorted."""
    theirs = list(statement)
    counts = Counter((m.kind, m.reference) for m in theirs)
    stated = {(m.kind, m.reference): m.amount_fen for m in theirs}
    ours = {(m.kind, m.reference): m.amount_fen for m in ledger}
    found = [
        Mismatch(MismatchReason.DUPLICATE_IN_STATEMENT, kind, ref, ours.get((kind, ref)), stated[kind, ref])
        for (kind, ref), count in counts.items()
        if count > 1
    ]
    for key in stated.keys() | ours.keys():
        kind, ref = key
        if key not in ours:
            found.append(Mismatch(MismatchReason.NOT_IN_LEDGER, kind, ref, None, stated[key]))
        elif key not in stated:
            found.append(Mismatch(MismatchReason.NOT_IN_STATEMENT, kind, ref, ours[key], None))
        elif ours[key] != stated[key]:
            found.append(Mismatch(MismatchReason.AMOUNT_DIFFERS, kind, ref, ours[key], stated[key]))
    return sorted(found, key=lambda m: (m.reference, m.kind, m.reason))


@dataclass(frozen=True, slots=True)
class DayTotals:
    """One lot's (or operator's) money on one day, and what stays outstanding at its end."""

    invoiced_fen: int
    adjusted_fen: int
    captured_fen: int
    refunded_fen: int
    written_off_fen: int
    outstanding_fen: int


def sum_totals(totals: Iterable[DayTotals]) -> DayTotals:
    """Return the totals of several lots together (an operator's scope, the city)."""
    found = DayTotals(0, 0, 0, 0, 0, 0)
    for t in totals:
        found = DayTotals(
            found.invoiced_fen + t.invoiced_fen,
            found.adjusted_fen + t.adjusted_fen,
            found.captured_fen + t.captured_fen,
            found.refunded_fen + t.refunded_fen,
            found.written_off_fen + t.written_off_fen,
            found.outstanding_fen + t.outstanding_fen,
        )
    return found


def day_totals(on_day: Mapping[EntryKind, int], before_day: Mapping[EntryKind, int]) -> DayTotals:
    """Return a day's totals from the sums of entries by kind on that day and before it."""

    def balance(sums: Mapping[EntryKind, int]) -> Balance:
        return Balance(
            invoiced_fen=sums.get(EntryKind.INVOICED, 0),
            adjusted_fen=sums.get(EntryKind.ADJUSTED, 0),
            captured_fen=sums.get(EntryKind.CAPTURED, 0),
            refunded_fen=sums.get(EntryKind.REFUNDED, 0),
            written_off_fen=sums.get(EntryKind.WRITTEN_OFF, 0),
        )

    day, before = balance(on_day), balance(before_day)
    return DayTotals(
        day.invoiced_fen,
        day.adjusted_fen,
        day.captured_fen,
        day.refunded_fen,
        day.written_off_fen,
        before.due_fen + day.due_fen,
    )
