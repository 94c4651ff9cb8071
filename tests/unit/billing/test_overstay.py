"""The overstay surcharge as a quote: one line, exact to the fen, the shape an invoice is raised from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from billing.invoices import DuePolicy, PricedStay, issue_invoice
from billing.overstay import Overstay, overstay_quote
from billing.quotes import LineKind
from parking_core.sharing import EndTerms, overstay_fee

END = datetime(2025, 3, 4, 0, tzinfo=UTC)  # 08:00 in Shanghai
TERMS = EndTerms(timedelta(minutes=30), timedelta(minutes=60), 500)


def test_seventy_minutes_late_is_two_started_hours() -> None:
    """¥10.00 in one `overstay_surcharge` line from the window's end; the invoice is due after the exit."""
    stay = Overstay(END - timedelta(hours=12), END, END + timedelta(minutes=70), TERMS)
    quote = overstay_quote(stay, "zz-zone1-underground", 3)
    assert (quote.amount_fen, quote.tariff_id, quote.tariff_version) == (1000, "zz-zone1-underground", 3)
    (line,) = quote.lines
    assert (line.kind, line.amount_fen, line.units, line.unit_min, line.unit_price_fen) == (
        LineKind.OVERSTAY_SURCHARGE,
        1000,
        2,
        60,
        500,
    )
    assert (line.start, line.end) == (END, END + timedelta(minutes=70))
    issued = issue_invoice(PricedStay("overstay-s1", "lot", "豫B20001", quote), END, DuePolicy(), UTC)
    assert issued is not None
    invoice, entry = issued
    assert (invoice.amount_fen, entry.amount_fen) == (1000, 1000)
    assert invoice.due_at == END + timedelta(minutes=70) + DuePolicy().pay_within
    assert invoice.lines[0]["kind"] == "overstay_surcharge"


def test_a_free_overstay_raises_no_invoice() -> None:
    """An owner who charges nothing: 0 fen, no invoice."""
    stay = Overstay(END - timedelta(hours=1), END, END + timedelta(minutes=5), EndTerms())
    quote = overstay_quote(stay, "t", 1)
    assert quote.amount_fen == 0
    assert issue_invoice(PricedStay("overstay-s2", "lot", "豫B1", quote), END, DuePolicy(), UTC) is None


@given(
    late_s=st.integers(1, 10 * 86_400),
    unit_min=st.integers(1, 1440),
    fee=st.integers(0, 100_000_000),
)
def test_the_quote_is_the_rule_to_the_fen(late_s: int, unit_min: int, fee: int) -> None:
    """Any lateness, unit and fee: the quote's amount, its line and the pure rule agree exactly."""
    terms = EndTerms(timedelta(0), timedelta(minutes=unit_min), fee)
    left = END + timedelta(seconds=late_s)
    quote = overstay_quote(Overstay(END - timedelta(hours=2), END, left, terms), "t", 1)
    expected = overstay_fee(END, left, terms.overstay_unit, fee)
    assert quote.amount_fen == sum(line.amount_fen for line in quote.lines) == expected
    assert sum(c.amount_fen for c in quote.charges) == expected
    assert (
        (quote.lines[0].units or 0) * 60 * unit_min
        >= late_s
        > ((quote.lines[0].units or 1) - 1) * 60 * unit_min
    )
