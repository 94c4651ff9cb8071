"""The ledger's rules: balances and statuses derive from append-only entries; illegal ones are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from billing.errors import LedgerRuleError
from billing.ledger import Balance, EntryKind, InvoiceStatus, LedgerEntry, balance_of, split_capture

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
DUE = T0 + timedelta(days=3)


def entry(kind: EntryKind, amount: int, ref: str = "") -> LedgerEntry:
    return LedgerEntry("inv_1", kind, amount, T0, ref)


def test_an_invoice_raised_and_unpaid_is_unpaid_then_in_arrears_at_its_due_date() -> None:
    balance = balance_of([entry(EntryKind.INVOICED, 1200)])
    assert balance.due_fen == 1200
    assert balance.status(DUE, DUE - timedelta(seconds=1)) is InvoiceStatus.UNPAID
    assert balance.status(DUE, DUE) is InvoiceStatus.IN_ARREARS


def test_a_capture_pays_and_a_duplicate_capture_refunded_leaves_it_paid_once() -> None:
    balance = balance_of(
        [
            entry(EntryKind.INVOICED, 1200),
            entry(EntryKind.CAPTURED, 1200, "tx1"),
            entry(EntryKind.CAPTURED, 1200, "tx2"),
            entry(EntryKind.REFUNDED, 1200, "rf_tx2"),
        ]
    )
    assert (balance.applied_fen, balance.due_fen) == (1200, 0)
    assert balance.status(DUE, DUE + timedelta(days=9)) is InvoiceStatus.PAID


def test_a_write_off_closes_what_is_due_and_says_so() -> None:
    balance = balance_of(
        [entry(EntryKind.INVOICED, 1200), entry(EntryKind.CAPTURED, 200), entry(EntryKind.WRITTEN_OFF, 1000)]
    )
    assert balance.due_fen == 0
    assert balance.status(DUE, DUE) is InvoiceStatus.WRITTEN_OFF


def test_adjustments_are_signed_and_change_what_is_owed() -> None:
    balance = balance_of([entry(EntryKind.INVOICED, 1200), entry(EntryKind.ADJUSTED, -200)])
    assert (balance.owed_fen, balance.due_fen) == (1000, 1000)


@pytest.mark.parametrize(
    ("entries", "rule"),
    [
        ([(EntryKind.INVOICED, 100), (EntryKind.INVOICED, 100)], "already raised"),
        ([(EntryKind.INVOICED, 100), (EntryKind.REFUNDED, 1)], "refund larger"),
        ([(EntryKind.INVOICED, 100), (EntryKind.WRITTEN_OFF, 101)], "write-off larger"),
        ([(EntryKind.INVOICED, 100), (EntryKind.ADJUSTED, -101)], "below zero"),
        ([(EntryKind.INVOICED, 100), (EntryKind.CAPTURED, 100), (EntryKind.ADJUSTED, -1)], "below zero"),
    ],
)
def test_illegal_entries_are_refused_by_name(entries: list[tuple[EntryKind, int]], rule: str) -> None:
    with pytest.raises(LedgerRuleError, match=rule):
        balance_of(entry(kind, amount) for kind, amount in entries)


@pytest.mark.parametrize("kind", [EntryKind.INVOICED, EntryKind.CAPTURED, EntryKind.REFUNDED])
def test_amounts_other_than_adjustments_must_be_positive(kind: EntryKind) -> None:
    with pytest.raises(LedgerRuleError, match="positive"):
        entry(kind, 0)


def test_a_capture_applies_what_is_due_and_refunds_the_rest() -> None:
    due = Balance(invoiced_fen=1200, captured_fen=1000)
    assert split_capture(due, 1200) == (200, 1000)
    assert split_capture(Balance(invoiced_fen=1200, captured_fen=1200), 1200) == (0, 1200)
    assert split_capture(Balance(invoiced_fen=1200), 1200) == (1200, 0)


def test_a_payment_order_is_for_what_is_due_and_at_most_five_stay_open() -> None:
    from billing.payments import (
        MAX_OPEN_ORDERS,
        InvoiceSettledError,
        Payable,
        TooManyOrdersError,
        order_payment,
    )

    due = Balance(invoiced_fen=1200, captured_fen=200)
    order = order_payment(Payable("inv_1", due, MAX_OPEN_ORDERS - 1), "alipay", "pay_1", T0)
    assert (order.amount_fen, order.expires_at - order.created_at) == (1000, timedelta(minutes=30))
    with pytest.raises(TooManyOrdersError):
        order_payment(Payable("inv_1", due, MAX_OPEN_ORDERS), "alipay", "pay_2", T0)
    with pytest.raises(InvoiceSettledError):
        order_payment(Payable("inv_1", Balance(invoiced_fen=1200, captured_fen=1200)), "alipay", "pay_3", T0)
