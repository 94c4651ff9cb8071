"""Worked pricing examples: the Zhengzhou tariffs, midnight, several days, caps, classes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing import (
    ExitBeforeEntryError,
    LineKind,
    NaiveDatetimeError,
    Tariff,
    TimedCharge,
    VehicleClass,
    load_example_tariffs,
    parse_tariff,
    price_stay,
    quote_to_json,
)
from billing.pricing import tier_units
from billing.tariff import Rounding, Tier

TZ = ZoneInfo("Asia/Shanghai")
CAR = VehicleClass.SMALL_CAR
EXAMPLES = load_example_tariffs()
ZONE1 = EXAMPLES["zz-zone1-on-street"]
UNDERGROUND = EXAMPLES["zz-zone1-underground"]


def at(day: int, hour: int, minute: int = 0, month: int = 3) -> datetime:
    """2025-03-03 is a Monday."""
    return datetime(2025, month, day, hour, minute, tzinfo=TZ)


def fen(tariff: Tariff, entry: datetime, exit_at: datetime, **kw: Any) -> int:
    return price_stay(entry, exit_at, kw.pop("cls", CAR), tariff, **kw).amount_fen


ALL_DAY = {  # one band, 1 元 an hour round the clock
    "band_id": "all",
    "name": {"zh": "全天", "en": "all day"},
    "start": "00:00",
    "end": "24:00",
    "charge": "tiered",
    "tiers": [{"start_min": 0, "end_min": None, "unit_min": 60, "unit_price_fen": 100}],
}


def custom(**fields: Any) -> Tariff:
    doc: dict[str, Any] = {
        "tariff_id": "t",
        "version": 1,
        "name": {"zh": "测试", "en": "test"},
        "valid_from": "2025-01-01",
        "bands": [ALL_DAY],
    }
    doc.update(fields)
    return parse_tariff(doc)


@pytest.mark.parametrize(
    ("entry", "exit_at", "expected"),
    [
        (at(3, 10), at(3, 10, 10), 0),
        (at(3, 10), at(3, 11), 400),
        (at(3, 10), at(3, 12, 30), 800),
        (at(3, 10), at(3, 14, 10), 1600),
        (at(3, 20), at(3, 23), 400),
    ],
)
def test_zone1_on_street_examples(entry: datetime, exit_at: datetime, expected: int) -> None:
    """The issue's zone-1 on-street examples price exactly."""
    assert fen(ZONE1, entry, exit_at) == expected


def test_zone1_underground_day_then_night_flat_fee() -> None:
    """19:00-23:00 underground: 2 h of day (400 + 100) plus the night flat fee 1000."""
    quote = price_stay(at(3, 19), at(3, 23), CAR, UNDERGROUND)
    assert quote.amount_fen == 1500
    assert [(ln.kind, ln.band_id, ln.units, ln.amount_fen) for ln in quote.lines] == [
        (LineKind.TIER, "day", 1, 400),
        (LineKind.TIER, "day", 1, 100),
        (LineKind.FLAT, "night", 1, 1000),
    ]


def test_the_lines_explain_4h10m_as_five_started_hours() -> None:
    """10:00-14:10: 1 x 400, 2 x 200, 2 x 400 (the 5th hour is a part hour rounded up)."""
    quote = price_stay(at(3, 10), at(3, 14, 10), CAR, ZONE1)
    tiers = [(ln.tier_index, ln.units, ln.unit_price_fen) for ln in quote.lines]
    assert tiers == [(0, 1, 400), (1, 2, 200), (2, 2, 400)]


def test_exactly_the_free_minutes_is_free_and_one_second_more_pays_from_entry() -> None:
    """15:00 is free; 15:01 pays the whole first hour (free minutes not deducted)."""
    assert fen(ZONE1, at(3, 10), at(3, 10, 15)) == 0
    assert fen(ZONE1, at(3, 10), at(3, 10, 15) + timedelta(seconds=1)) == 400


def test_a_stay_starting_inside_the_free_minutes_at_night_is_free() -> None:
    """A stay entering at 20:50 and leaving at 21:30 pays only its 10 day minutes."""
    assert fen(ZONE1, at(3, 20, 50), at(3, 21, 30)) == 400
    assert fen(ZONE1, at(3, 20, 50), at(3, 21, 0)) == 0


def test_deducted_free_minutes_shift_the_priced_start() -> None:
    """With deduction, 10:00-11:15 is priced as 10:15-11:15: one hour."""
    tariff = custom(free_minutes=15, free_minutes_deducted=True)
    quote = price_stay(at(3, 10), at(3, 11, 15), CAR, tariff)
    assert quote.amount_fen == 100
    assert quote.lines[0].kind is LineKind.FREE_MINUTES


def test_a_stay_crossing_midnight_pays_each_day_band_from_its_own_first_hour() -> None:
    """20:00 Mon - 09:00 Tue: 1 h Monday day (400), free night, 2 h Tuesday day (400 + 200)."""
    assert fen(ZONE1, at(3, 20), at(4, 9)) == 1000


def test_a_night_band_is_one_occurrence_across_midnight() -> None:
    """Underground 22:00-06:00 pays the night flat fee once, not once per calendar day."""
    assert fen(UNDERGROUND, at(3, 22), at(4, 6)) == 1000


def test_a_stay_over_several_days_is_capped_per_calendar_day() -> None:
    """Underground Mon 07:00 - Wed 21:00: three full days, each at most 3000 under the cap."""
    quote = price_stay(at(3, 7), at(5, 21), CAR, UNDERGROUND)
    # a day band alone is 400 + 200 + 11 x 200 = 2800; nights add 1000 each day they start
    assert quote.amount_fen == 2800 + 3000 + 3000
    assert [ln.kind for ln in quote.lines].count(LineKind.DAILY_CAP) == 2


def test_re_entry_on_the_same_calendar_day_shares_the_daily_cap() -> None:
    """Earlier charges of the plate on the same day use up the calendar-day cap."""
    first = price_stay(at(3, 7), at(3, 18), CAR, UNDERGROUND)
    assert first.amount_fen == 400 + 200 + 8 * 200
    second = price_stay(at(3, 19), at(3, 23), CAR, UNDERGROUND, first.charges)
    assert second.amount_fen == 3000 - first.amount_fen
    next_day = price_stay(at(4, 19), at(4, 23), CAR, UNDERGROUND, first.charges)
    assert next_day.amount_fen == 1500


def test_re_entry_within_24_hours_shares_a_rolling_cap() -> None:
    """Zone 3 caps any 24 hours at 2000: a re-entry the next morning is limited by yesterday."""
    zone3 = EXAMPLES["zz-zone3-on-street"]
    first = price_stay(at(3, 9), at(3, 21), CAR, zone3)
    assert first.amount_fen == 2000  # 2 x 100 + 4 x 50 + 18 x 100 = 2200, capped at 2000
    assert first.lines[-1].kind is LineKind.DAILY_CAP
    second = price_stay(at(4, 8), at(4, 9), CAR, zone3, first.charges)
    assert second.amount_fen == 0  # the window (08:00 yesterday, now] still holds 2000
    longer = price_stay(at(4, 8), at(4, 10), CAR, zone3, first.charges)
    assert longer.amount_fen == 100  # yesterday's 09:00 and 09:30 charges left the window


def test_earlier_charges_may_be_one_amount_per_stay() -> None:
    """A caller storing only (entry time, amount) per stay gets the same calendar-day cap."""
    earlier = [TimedCharge(at(3, 7), 2500)]
    assert fen(UNDERGROUND, at(3, 19), at(3, 23), earlier_charges=earlier) == 500


def test_session_cap_limits_one_stay() -> None:
    """A session max fee caps the total of one stay."""
    tariff = custom(session_max_fee_fen=1000)
    quote = price_stay(at(3, 0), at(5, 0), CAR, tariff)
    assert quote.amount_fen == 1000
    assert quote.lines[-1].kind is LineKind.SESSION_CAP


def test_a_band_cap_limits_each_occurrence() -> None:
    """max_fee_fen on a band caps each occurrence separately."""
    capped = custom(bands=[ALL_DAY | {"max_fee_fen": 500}])
    assert fen(capped, at(3, 12), at(4, 12)) == 500 + 500


def test_weekend_and_holiday_bands_apply_by_local_date() -> None:
    """Zone 2 charges a cheaper day band on weekends and holidays, weekday rules on workdays."""
    zone2 = EXAMPLES["zz-zone2-on-street"]
    weekday = fen(zone2, at(3, 9), at(3, 14))  # Monday: 300 + 2 x 150 + 2 x 300
    saturday = fen(zone2, at(8, 9), at(8, 14))  # 300 + 4 x 150
    holiday = fen(zone2, datetime(2025, 10, 2, 9, tzinfo=TZ), datetime(2025, 10, 2, 14, tzinfo=TZ))
    workday = fen(zone2, datetime(2025, 9, 28, 9, tzinfo=TZ), datetime(2025, 9, 28, 14, tzinfo=TZ))
    assert (weekday, saturday, holiday, workday) == (1200, 900, 900, 1200)


def test_vehicle_class_factors_scale_every_amount() -> None:
    """Large cars pay 200 %, new-energy 50 %; the motorcycle has its own flat rules."""
    assert fen(ZONE1, at(3, 10), at(3, 12, 30), cls=VehicleClass.LARGE_CAR) == 1600
    assert fen(ZONE1, at(3, 10), at(3, 12, 30), cls=VehicleClass.NEW_ENERGY) == 400
    assert fen(ZONE1, at(3, 10), at(3, 12, 30), cls=VehicleClass.MOTORCYCLE) == 100


def test_factor_rounding_is_half_up_to_the_fen() -> None:
    """A 50 % factor on a 150-fen unit price gives 75; on 125 gives 63 (62.5 rounds up)."""
    tariff = custom(vehicle_classes={"new_energy": {"factor_percent": 50}})
    doc_125 = {"unit_price_fen": 125, "start_min": 0, "end_min": None, "unit_min": 60}
    band = {
        "band_id": "all",
        "name": {"zh": "全天", "en": "all day"},
        "start": "00:00",
        "end": "24:00",
        "charge": "tiered",
        "tiers": [doc_125],
    }
    odd = custom(bands=[band], vehicle_classes={"new_energy": {"factor_percent": 50}})
    assert fen(tariff, at(3, 10), at(3, 11), cls=VehicleClass.NEW_ENERGY) == 50
    assert fen(odd, at(3, 10), at(3, 11), cls=VehicleClass.NEW_ENERGY) == 63


@pytest.mark.parametrize(
    ("rounding", "minutes", "units"),
    [
        (Rounding.UP, 61, 2),
        (Rounding.DOWN, 119, 1),
        (Rounding.HALF_UP, 89, 1),
        (Rounding.HALF_UP, 90, 2),
        (Rounding.UP, 60, 1),
        (Rounding.UP, 0, 0),
    ],
)
def test_part_units_round_as_the_band_says(rounding: Rounding, minutes: int, units: int) -> None:
    """up / down / half_up decide whether a part unit at the end of a segment counts."""
    tier = Tier(start_min=0, end_min=None, unit_price_fen=100, unit_min=60)
    assert tier_units(timedelta(minutes=minutes), tier, rounding) == units


def test_entry_and_exit_in_other_offsets_are_evaluated_in_the_tariff_zone() -> None:
    """The same instants written in UTC price the same as in Shanghai time."""
    entry, exit_at = at(3, 10), at(3, 14, 10)
    assert fen(ZONE1, entry.astimezone(UTC), exit_at.astimezone(UTC)) == 1600


def test_exit_before_entry_is_refused() -> None:
    """An exit earlier than its entry raises ExitBeforeEntryError carrying both times."""
    with pytest.raises(ExitBeforeEntryError) as caught:
        price_stay(at(3, 11), at(3, 10), CAR, ZONE1)
    assert caught.value.entry == at(3, 11)
    assert isinstance(caught.value, ValueError)


def test_naive_datetimes_are_refused() -> None:
    """Entry and exit must be aware datetimes."""
    with pytest.raises(NaiveDatetimeError) as caught:
        price_stay(datetime(2025, 3, 3, 10), at(3, 11), CAR, ZONE1)
    assert caught.value.field == "entry"


def test_a_zero_length_stay_is_free() -> None:
    """Entry equal to exit costs nothing, even without free minutes."""
    assert fen(custom(), at(3, 10), at(3, 10)) == 0


def test_quote_json_shows_local_times_and_lines() -> None:
    """quote_to_json gives the HTTP shape: amount, lines with local times, charges."""
    doc = quote_to_json(price_stay(at(3, 19), at(3, 23), CAR, UNDERGROUND), TZ)
    assert doc["amount_fen"] == 1500
    assert doc["lines"][2] == {
        "kind": "flat",
        "amount_fen": 1000,
        "band_id": "night",
        "start": "2025-03-03T21:00:00+08:00",
        "end": "2025-03-03T23:00:00+08:00",
        "units": 1,
        "unit_price_fen": 1000,
        "detail": "night: flat fee per entry",
    }


def test_pricing_work_is_bounded_by_the_stay_length() -> None:
    """A stay longer than MAX_PRICED_STAY_DAYS is refused before any work, naming the limit."""
    from billing import MAX_PRICED_STAY_DAYS, StayTooLongError, load_example_tariffs

    tariff = next(iter(load_example_tariffs().values()))
    entry = datetime.combine(tariff.valid_from, datetime.min.time(), UTC) + timedelta(days=1)
    price_stay(entry, entry + timedelta(days=MAX_PRICED_STAY_DAYS), VehicleClass.SMALL_CAR, tariff)
    with pytest.raises(StayTooLongError) as refused:
        price_stay(entry, entry + timedelta(days=20 * 365), VehicleClass.SMALL_CAR, tariff)
    assert refused.value.limit_days == MAX_PRICED_STAY_DAYS
