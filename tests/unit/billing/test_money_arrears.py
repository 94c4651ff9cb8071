"""Arrears rules: reminders by step, escalation to the deny list, pay-later eligibility, invoices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from billing import load_example_tariffs, price_stay
from billing.arrears import (
    ArrearsPolicy,
    LotMoneyPolicy,
    OpenInvoice,
    PayLater,
    PlateStanding,
    ReminderKind,
    arrears_fen,
    blacklist_reason,
    entry_refused,
    pay_later_verdict,
    reminder_due,
)
from billing.invoices import DuePolicy, PricedStay, invoice_id_for, issue_invoice
from billing.ledger import EntryKind
from billing.tariff import VehicleClass

DUE = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def invoice(due_fen: int = 1200, due_at: datetime = DUE) -> OpenInvoice:
    return OpenInvoice("inv_1", "豫A12345", "lot-1", due_at, due_fen)


def test_arrears_count_only_what_is_due_past_the_due_date() -> None:
    invoices = [invoice(1200), invoice(800, DUE + DAY), invoice(0, DUE - DAY)]
    assert arrears_fen(invoices, DUE - timedelta(seconds=1)) == 0
    assert arrears_fen(invoices, DUE) == 1200
    assert arrears_fen(invoices, DUE + DAY) == 2000


def test_reminders_follow_the_steps_and_skip_to_the_latest_after_an_outage() -> None:
    policy = ArrearsPolicy()
    assert reminder_due(invoice(), policy, DUE - 2 * DAY, None) is None
    soon = reminder_due(invoice(), policy, DUE - DAY, None)
    assert soon is not None
    assert (soon.step, soon.kind) == (0, ReminderKind.DUE_SOON)
    assert reminder_due(invoice(), policy, DUE, 0) is None
    late = reminder_due(invoice(), policy, DUE + 8 * DAY, 0)
    assert late is not None
    assert (late.step, late.kind) == (2, ReminderKind.FINAL_NOTICE)
    assert reminder_due(invoice(), policy, DUE + 9 * DAY, 2) is None
    assert reminder_due(invoice(0), policy, DUE + 9 * DAY, None) is None


def test_a_plate_goes_on_the_deny_list_when_long_overdue_or_owing_much() -> None:
    policy = ArrearsPolicy()
    assert blacklist_reason([invoice()], policy, DUE + 14 * DAY) is None
    assert blacklist_reason([invoice()], policy, DUE + 15 * DAY) is not None
    assert blacklist_reason([invoice(20_000)], policy, DUE) is not None
    assert blacklist_reason([invoice(20_000)], policy, DUE - DAY) is None


@pytest.mark.parametrize(
    ("standing", "lot", "verdict"),
    [
        (PlateStanding(True, True, False, 0), LotMoneyPolicy(), PayLater.ELIGIBLE),
        (PlateStanding(True, True, False, 4999), LotMoneyPolicy(), PayLater.ELIGIBLE),
        (PlateStanding(True, True, False, 5000), LotMoneyPolicy(), PayLater.ARREARS),
        (PlateStanding(True, True, True, 0), LotMoneyPolicy(), PayLater.BLACKLISTED),
        (PlateStanding(True, False, False, 0), LotMoneyPolicy(), PayLater.NO_CONSENT),
        (PlateStanding(False, False, False, 0), LotMoneyPolicy(), PayLater.NO_ACCOUNT),
        (PlateStanding(True, True, False, 0), LotMoneyPolicy(pay_later=False), PayLater.LOT_DISABLED),
    ],
)
def test_pay_later_needs_consent_no_deny_listing_and_arrears_below_the_lot_limit(
    standing: PlateStanding, lot: LotMoneyPolicy, verdict: PayLater
) -> None:
    assert pay_later_verdict(standing, lot) is verdict


def test_only_a_lot_that_says_so_refuses_entry_to_a_deny_listed_plate() -> None:
    listed = PlateStanding(True, True, True, 9000)
    assert not entry_refused(listed, LotMoneyPolicy())
    assert entry_refused(listed, LotMoneyPolicy(deny_entry_when_blacklisted=True))
    assert not entry_refused(
        PlateStanding(True, True, False, 9000), LotMoneyPolicy(deny_entry_when_blacklisted=True)
    )


def test_an_invoice_has_the_engine_lines_a_due_date_by_policy_and_an_id_from_its_session() -> None:
    tariff = next(iter(load_example_tariffs().values()))
    entry = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    quote = price_stay(entry, entry + timedelta(hours=3, minutes=5), VehicleClass.SMALL_CAR, tariff)
    assert quote.amount_fen > 0
    stay = PricedStay("ses-1", "lot-1", "豫A12345", quote)
    issued = issue_invoice(stay, quote.exit, DuePolicy(timedelta(days=2)), ZoneInfo("Asia/Shanghai"))
    assert issued is not None
    invoice_doc, ledger_entry = issued
    again = issue_invoice(stay, quote.exit, DuePolicy(), UTC)
    assert again is not None
    assert invoice_doc.invoice_id == invoice_id_for("ses-1") == again[0].invoice_id
    assert invoice_doc.due_at == quote.exit + timedelta(days=2)
    assert sum(line["amount_fen"] for line in invoice_doc.lines) == quote.amount_fen == invoice_doc.amount_fen
    assert (ledger_entry.kind, ledger_entry.amount_fen) == (EntryKind.INVOICED, quote.amount_fen)


def test_a_free_stay_raises_no_invoice() -> None:
    tariff = next(iter(load_example_tariffs().values()))
    entry = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    quote = price_stay(entry, entry, VehicleClass.SMALL_CAR, tariff)
    assert issue_invoice(PricedStay("s", "l", "p", quote), entry, DuePolicy(), UTC) is None
