"""Reconciliation: statements against the ledger, every mismatch named; daily totals."""

from __future__ import annotations

import pytest

from billing.ledger import EntryKind
from billing.reconcile import (
    MismatchReason,
    Movement,
    MovementKind,
    StatementError,
    day_totals,
    parse_statement,
    reconcile,
)

HEADER = "trade_time,type,transaction_id,out_trade_no,refund_id,out_refund_no,amount_fen\n"
PAY, REFUND = MovementKind.PAYMENT, MovementKind.REFUND


def test_a_statement_parses_payments_by_transaction_and_refunds_by_our_refund_id() -> None:
    text = HEADER + (
        "2026-11-23T10:15:00+08:00,payment,42001,pay_1,,,1200\n"
        "2026-11-23T10:16:00+08:00,refund,42002,pay_2,50301,rf_9,1200\n"
    )
    assert [(m.kind, m.reference, m.amount_fen) for m in parse_statement(text)] == [
        (PAY, "42001", 1200),
        (REFUND, "rf_9", 1200),
    ]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("wrong,header\n", 1),
        (HEADER + "2026-11-23T10:15:00+08:00,payment,42001,pay_1,,,12.5\n", 2),
        (HEADER + "2026-11-23T10:15:00+08:00,charge,42001,pay_1,,,1200\n", 2),
        (HEADER + "yesterday,payment,42001,pay_1,,,1200\n", 2),
        (HEADER + "2026-11-23T10:15:00+08:00,payment,,pay_1,,,1200\n", 2),
        (HEADER + "2026-11-23T10:15:00+08:00,payment,42001\n", 2),
    ],
)
def test_a_bad_statement_is_refused_naming_its_line(text: str, line: int) -> None:
    with pytest.raises(StatementError) as refused:
        parse_statement(text)
    assert refused.value.line == line


def test_every_kind_of_mismatch_is_listed_with_its_reason() -> None:
    statement = [
        Movement(PAY, "a", 100),
        Movement(PAY, "b", 200),
        Movement(PAY, "b", 200),
        Movement(PAY, "c", 300),
        Movement(REFUND, "rf_d", 50),
    ]
    ledger = [
        Movement(PAY, "a", 100),
        Movement(PAY, "b", 200),
        Movement(PAY, "c", 310),
        Movement(PAY, "e", 5),
    ]
    found = {(m.reference, m.reason) for m in reconcile(statement, ledger)}
    assert found == {
        ("b", MismatchReason.DUPLICATE_IN_STATEMENT),
        ("c", MismatchReason.AMOUNT_DIFFERS),
        ("rf_d", MismatchReason.NOT_IN_LEDGER),
        ("e", MismatchReason.NOT_IN_STATEMENT),
    }
    assert reconcile(ledger[:2], ledger[:2]) == []


def test_day_totals_carry_what_stays_outstanding() -> None:
    before = {EntryKind.INVOICED: 5000, EntryKind.CAPTURED: 3000}
    day = {
        EntryKind.INVOICED: 1200,
        EntryKind.CAPTURED: 2400,
        EntryKind.REFUNDED: 1200,
        EntryKind.WRITTEN_OFF: 100,
    }
    totals = day_totals(day, before)
    assert (totals.invoiced_fen, totals.captured_fen, totals.refunded_fen) == (1200, 2400, 1200)
    assert totals.outstanding_fen == 5000 - 3000 + 1200 - 1200 - 100
