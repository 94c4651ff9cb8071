"""Hypothesis properties of the pricing engine and the tariff document round trip."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from billing import (
    CapWindow,
    Quote,
    Tariff,
    TimedCharge,
    VehicleClass,
    parse_tariff,
    price_stay,
    tariff_to_json,
)
from billing.segments import occurrences
from tests.strategies_billing import durations, entries, tariff_documents, tariffs, vehicle_classes

DAY = timedelta(hours=24)


def _check_caps(quote: Quote, tariff: Tariff, earlier: list[TimedCharge]) -> None:
    rules = tariff.rules_for(quote.vehicle_class)
    if rules.session_max_fee_fen is not None:
        assert quote.amount_fen <= rules.session_max_fee_fen
    by_segment: dict[tuple[str | None, object], int] = defaultdict(int)
    for line in quote.lines:
        by_segment[line.band_id, line.start] += line.amount_fen
    for band in rules.bands:
        if band.max_fee_fen is not None:
            for (band_id, _), total in by_segment.items():
                if band_id == band.band_id:
                    assert total <= band.max_fee_fen
    _check_daily_cap(quote, tariff, earlier)


def _check_daily_cap(quote: Quote, tariff: Tariff, earlier: list[TimedCharge]) -> None:
    rules = tariff.rules_for(quote.vehicle_class)
    cap = rules.daily_max_fee_fen
    if cap is None:
        return
    every = [*earlier, *quote.charges]
    if rules.daily_window is CapWindow.CALENDAR_DAY:
        per_day: dict[object, int] = defaultdict(int)
        for charge in every:
            per_day[charge.at.astimezone(tariff.zoneinfo).date()] += charge.amount_fen
        assert all(total <= cap for total in per_day.values())
    else:
        for charge in quote.charges:
            window = sum(c.amount_fen for c in every if charge.at - DAY < c.at <= charge.at)
            assert window <= cap


@given(tariffs(), entries(), durations(), durations(timedelta(hours=30)), vehicle_classes())
def test_a_longer_stay_never_costs_less(
    tariff: Tariff, entry: datetime, stay: timedelta, extra: timedelta, vehicle_class: VehicleClass
) -> None:
    """Staying longer (same entry, later exit) never lowers the price."""
    short = price_stay(entry, entry + stay, vehicle_class, tariff)
    longer = price_stay(entry, entry + stay + extra, vehicle_class, tariff)
    assert longer.amount_fen >= short.amount_fen


@given(tariffs(caps=False), entries(), durations(), durations(timedelta(hours=30)), vehicle_classes())
def test_an_earlier_entry_never_costs_less_without_daily_caps(
    tariff: Tariff, exit_at: datetime, stay: timedelta, extra: timedelta, car: VehicleClass
) -> None:
    """Without a daily cap, entering earlier (same exit) never lowers the price."""
    short = price_stay(exit_at - stay, exit_at, car, tariff)
    longer = price_stay(exit_at - stay - extra, exit_at, car, tariff)
    assert longer.amount_fen >= short.amount_fen


@given(tariffs(), entries(), st.data(), vehicle_classes())
def test_stays_within_the_free_period_are_free(
    tariff: Tariff, entry: datetime, data: st.DataObject, vehicle_class: VehicleClass
) -> None:
    """A stay no longer than the free minutes costs nothing."""
    free = tariff.rules_for(vehicle_class).free_minutes
    stay = data.draw(st.integers(0, free * 60).map(lambda s: timedelta(seconds=s)))
    assert price_stay(entry, entry + stay, vehicle_class, tariff).amount_fen == 0


@given(tariffs(), entries(), durations(), vehicle_classes(), st.data())
def test_no_quote_exceeds_its_caps(
    tariff: Tariff, entry: datetime, stay: timedelta, vehicle_class: VehicleClass, data: st.DataObject
) -> None:
    """Band, daily (calendar and rolling, with earlier charges) and session caps all hold."""
    earlier = data.draw(
        st.lists(
            st.builds(
                TimedCharge,
                st.integers(-30 * 3600, 0).map(lambda s: entry + timedelta(seconds=s)),
                st.integers(0, 1500),
            ),
            max_size=3,
        ),
    )
    cap = tariff.rules_for(vehicle_class).daily_max_fee_fen
    if cap is not None:  # what earlier quotes charged respected the cap themselves
        earlier = [c for c in earlier if c.amount_fen <= cap][:1]
    quote = price_stay(entry, entry + stay, vehicle_class, tariff, earlier)
    _check_caps(quote, tariff, earlier)


@given(tariffs(), entries(), durations(), vehicle_classes())
def test_amounts_are_non_negative_integers_and_lines_add_up(
    tariff: Tariff, entry: datetime, stay: timedelta, vehicle_class: VehicleClass
) -> None:
    """Every quote is a non-negative int of fen and its lines add up to it."""
    quote = price_stay(entry, entry + stay, vehicle_class, tariff)
    assert isinstance(quote.amount_fen, int)
    assert quote.amount_fen >= 0
    assert sum(line.amount_fen for line in quote.lines) == quote.amount_fen
    assert sum(c.amount_fen for c in quote.charges) == quote.amount_fen
    assert all(c.amount_fen > 0 for c in quote.charges)


@given(tariffs(free_minutes=False), entries(), durations(), st.data(), vehicle_classes())
def test_splitting_at_a_band_boundary_keeps_the_total(
    tariff: Tariff, entry: datetime, stay: timedelta, data: st.DataObject, vehicle_class: VehicleClass
) -> None:
    """Pricing entry..B and B..exit, the second part seeing the first part's charges, adds up.

    B is any band occurrence boundary inside the stay; this holds for tariffs with no free
    minutes and no session cap (both are per stay by definition).
    """
    rules = tariff.rules_for(vehicle_class)
    exit_at = entry + stay
    inside = [o.start for o in occurrences(tariff, rules, entry, exit_at) if entry < o.start]
    if not inside or rules.session_max_fee_fen is not None:
        return
    boundary = data.draw(st.sampled_from(inside))
    whole = price_stay(entry, exit_at, vehicle_class, tariff)
    first = price_stay(entry, boundary, vehicle_class, tariff)
    second = price_stay(boundary, exit_at, vehicle_class, tariff, first.charges)
    assert first.amount_fen + second.amount_fen == whole.amount_fen


@given(tariff_documents())
def test_a_tariff_document_round_trips(doc: dict[str, Any]) -> None:
    """parse_tariff(tariff_to_json(t)) == t, and the JSON is stable after one round."""
    tariff = parse_tariff(doc)
    again = parse_tariff(tariff_to_json(tariff))
    assert again == tariff
    assert tariff_to_json(again) == tariff_to_json(tariff)
