"""Reservation and no-show fees: parsed, validated, published and charged exactly to the fen."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from billing import TariffValidationError, describe_tariff, parse_tariff, tariff_to_json
from billing.examples import example_tariff_documents
from billing.quotes import LineKind
from billing.reservation_fees import FeeKind, FeeLine, fee_quote, reservation_fees
from parking_core.reservations import HoldStatus

GOOD = example_tariff_documents()["zz-zone1-underground"]


def with_fees(**fees: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    doc.update(fees)
    return doc


def test_fees_default_to_zero_and_round_trip() -> None:
    """A tariff without fees charges none; fees survive tariff_to_json/parse_tariff unchanged."""
    plain = parse_tariff(GOOD)
    assert (plain.reservation_fee_fen, plain.no_show_fee_fen) == (0, 0)
    assert reservation_fees(plain, HoldStatus.NO_SHOW) == []
    tariff = parse_tariff(with_fees(reservation_fee_fen=200, no_show_fee_fen=1001))
    assert parse_tariff(tariff_to_json(tariff)) == tariff
    assert tariff_to_json(tariff)["no_show_fee_fen"] == 1001


def test_bad_fees_are_refused_by_field() -> None:
    """Floats, booleans, negative and absurd amounts are refused, naming the field."""
    for bad in (2.5, True, -1, 100_000_001, "200"):
        with pytest.raises(TariffValidationError) as caught:
            parse_tariff(with_fees(no_show_fee_fen=bad))
        assert [p.path for p in caught.value.problems] == ["no_show_fee_fen"]


def test_what_each_outcome_costs() -> None:
    """Arrival and late cancellation: the reservation fee; early cancellation: nothing; no-show: both."""
    tariff = parse_tariff(with_fees(reservation_fee_fen=199, no_show_fee_fen=1001))
    reservation, no_show = FeeLine(FeeKind.RESERVATION, 199), FeeLine(FeeKind.NO_SHOW, 1001)
    assert reservation_fees(tariff, HoldStatus.ARRIVED) == [reservation]
    assert reservation_fees(tariff, HoldStatus.CANCELLED) == []
    assert reservation_fees(tariff, HoldStatus.CANCELLED, late_cancellation=True) == [reservation]
    assert reservation_fees(tariff, HoldStatus.NO_SHOW) == [reservation, no_show]
    assert reservation_fees(tariff, HoldStatus.HELD) == []
    assert sum(line.amount_fen for line in reservation_fees(tariff, HoldStatus.NO_SHOW)) == 1200


def test_fees_are_described() -> None:
    """Price boards say what reserving and not showing up cost, in yuan."""
    text = describe_tariff(parse_tariff(with_fees(reservation_fee_fen=200, no_show_fee_fen=1005)))
    assert "预约费2元" in text["zh"]
    assert "¥10.05 more" in text["en"]


def test_fees_become_a_quote_an_invoice_is_raised_from() -> None:
    """The quote's amount is the sum of the fee lines, due at the hold's end; no fees, no charge."""
    tariff = parse_tariff(with_fees(reservation_fee_fen=199, no_show_fee_fen=1001))
    made = datetime(2026, 11, 23, 8, tzinfo=UTC)
    ended = made + timedelta(hours=1)
    quote = fee_quote(tariff, reservation_fees(tariff, HoldStatus.NO_SHOW), made, ended)
    assert quote.amount_fen == 1200
    assert [line.kind for line in quote.lines] == [LineKind.RESERVATION_FEE, LineKind.NO_SHOW_FEE]
    assert [(c.at, c.amount_fen) for c in quote.charges] == [(ended, 1200)]
    assert (quote.entry, quote.exit, quote.tariff_id) == (made, ended, tariff.tariff_id)
    assert fee_quote(tariff, [], made, ended).charges == ()
