"""Tariff documents: validation errors naming fields, versions, descriptions, CDS/APDS export."""

from __future__ import annotations

import copy
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing import (
    NoTariffInForceError,
    TariffValidationError,
    VehicleClass,
    describe_tariff,
    load_example_tariffs,
    parse_tariff,
    price_stay,
    select_tariff_version,
    tariff_to_json,
    to_apds_rate_table,
    to_cds_policies,
)
from billing.examples import example_tariff_documents

TZ = ZoneInfo("Asia/Shanghai")
GOOD = example_tariff_documents()["zz-zone1-on-street"]


def problems(doc: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(TariffValidationError) as caught:
        parse_tariff(doc)
    found: dict[str, str] = {}
    for problem in caught.value.problems:
        found[problem.path] = " | ".join(filter(None, [found.get(problem.path), problem.message]))
    return found


def edited(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(GOOD)
    doc.update(changes)
    return doc


def test_every_example_tariff_loads_and_round_trips() -> None:
    """The shipped example tariffs parse, and tariff_to_json/parse_tariff round-trip them."""
    tariffs = load_example_tariffs()
    assert set(tariffs) == {
        "zz-zone1-on-street",
        "zz-zone1-underground",
        "zz-zone1-above-ground",
        "zz-zone2-on-street",
        "zz-zone3-on-street",
    }
    for tariff in tariffs.values():
        assert parse_tariff(tariff_to_json(tariff)) == tariff


def test_example_prices_follow_zone_and_lot_kind() -> None:
    """Zone 1 > 2 > 3 on-street, and on-street > above-ground > underground by day."""
    t = load_example_tariffs()
    entry = datetime(2025, 3, 3, 9, tzinfo=TZ)
    exit_at = datetime(2025, 3, 3, 14, tzinfo=TZ)

    def cost(name: str) -> int:
        return price_stay(entry, exit_at, VehicleClass.SMALL_CAR, t[name]).amount_fen

    assert cost("zz-zone1-on-street") > cost("zz-zone2-on-street") > cost("zz-zone3-on-street")
    assert cost("zz-zone1-on-street") > cost("zz-zone1-above-ground") > cost("zz-zone1-underground")


def test_unknown_fields_are_named() -> None:
    """An unknown field at any depth is reported with its path."""
    doc = edited(colour="red")
    doc["bands"][0]["tiers"][0]["surprise"] = 1
    found = problems(doc)
    assert found["colour"] == "unknown field"
    assert found["bands[0].tiers[0].surprise"] == "unknown field"


def test_wrong_types_and_negative_prices_are_named() -> None:
    """A string price, a float price and a negative price each name their field."""
    doc = edited(version="1")
    doc["bands"][0]["tiers"][0]["unit_price_fen"] = -1
    doc["bands"][0]["tiers"][1]["unit_price_fen"] = 2.5
    found = problems(doc)
    assert "must be an integer" in found["version"]
    assert "between 0 and" in found["bands[0].tiers[0].unit_price_fen"]
    assert "got a number" in found["bands[0].tiers[1].unit_price_fen"]


def test_overlapping_bands_are_refused() -> None:
    """Bands that overlap on a day type name the later band and the time."""
    doc = edited()
    doc["bands"][1]["start"] = "20:00"
    found = problems(doc)
    assert "overlaps bands[0]" in found["bands[1]"]
    assert "20:00-21:00" in found["bands[1]"]


def test_gaps_in_the_day_are_refused() -> None:
    """Bands that leave part of a day type uncovered are refused with the gap."""
    doc = edited()
    doc["bands"][1]["start"] = "22:00"
    assert "21:00-22:00 uncovered on weekday days" in problems(doc)["bands"]


def test_a_day_type_without_bands_is_refused() -> None:
    """Restricting the only day band to weekdays leaves weekends uncovered."""
    doc = edited()
    doc["bands"][0]["day_types"] = ["weekday"]
    assert "07:00-21:00 uncovered on weekend days" in problems(doc)["bands"]


def test_tiers_out_of_order_or_with_gaps_are_refused() -> None:
    """Tiers must start at 0, follow each other, end open, and sit on the unit grid."""
    doc = edited()
    tiers = doc["bands"][0]["tiers"]
    tiers[1]["start_min"] = 90
    tiers[2]["end_min"] = 300
    found = problems(doc)
    assert "must be 60 (tiers[0] ends there)" in found["bands[0].tiers[1].start_min"]
    assert "open-ended" in found["bands[0].tiers[2].end_min"]


def test_tier_bounds_must_be_multiples_of_the_unit() -> None:
    """A tier ending at 45 minutes with 60-minute units is refused."""
    doc = edited()
    doc["bands"][0]["tiers"][0]["end_min"] = 45
    doc["bands"][0]["tiers"][1]["start_min"] = 45
    found = problems(doc)
    assert "multiple of unit_min (60)" in found["bands[0].tiers[0].end_min"]


def test_bad_time_zone_dates_and_times_are_named() -> None:
    """Unknown zones, impossible dates, reversed validity and bad clock times are refused."""
    doc = edited(time_zone="Mars/Olympus", valid_from="2025-02-30", holidays=["soon"])
    doc["bands"][0]["start"] = "25:00"
    found = problems(doc)
    assert "IANA" in found["time_zone"]
    assert "YYYY-MM-DD" in found["valid_from"]
    assert "YYYY-MM-DD" in found["holidays[0]"]
    assert "HH:MM" in found["bands[0].start"]
    assert "after valid_from" in problems(edited(valid_to="2024-12-31"))["valid_to"]


def test_fields_that_do_not_fit_the_charge_are_refused() -> None:
    """A free band with tiers, and a flat band without its fee, are refused."""
    doc = edited()
    doc["bands"][1]["tiers"] = []
    found = problems(doc)
    assert "not allowed when charge is 'free'" in found["bands[1].tiers"]
    flat = edited()
    flat["bands"][1] = {**flat["bands"][1], "charge": "flat"}
    assert problems(flat)["bands[1].flat_fee_fen"] == "is required"


def test_vehicle_classes_are_validated() -> None:
    """Unknown classes, out-of-range factors and rules that are both are refused."""
    doc = edited(
        vehicle_classes={
            "bus": {"factor_percent": 100},
            "large_car": {"factor_percent": 5000},
            "new_energy": {"factor_percent": 50, "rules": {}},
        },
    )
    found = problems(doc)
    assert found["vehicle_classes.bus"] == "unknown field"
    assert "between 0 and 1000" in found["vehicle_classes.large_car.factor_percent"]
    assert "exactly one" in found["vehicle_classes.new_energy"]


def test_the_error_lists_every_problem_with_its_path() -> None:
    """The error carries each problem as data; the API's error edge renders it (invalid_tariff)."""
    with pytest.raises(TariffValidationError) as caught:
        parse_tariff(edited(currency="USD"))
    assert [p.to_json() for p in caught.value.problems] == [
        {"path": "currency", "message": "must be 'CNY' (amounts are in fen), got 'USD'"}
    ]


def test_a_document_that_is_not_an_object_is_refused() -> None:
    """A list instead of an object is one problem at the document itself."""
    assert problems([]) == {"": "must be an object, got a list"}  # type: ignore[arg-type]


def test_the_version_in_force_at_entry_is_selected() -> None:
    """A price change applies from its date; older sessions keep the old version."""
    old = parse_tariff(edited(valid_to="2025-07-01"))
    new_doc = edited(version=2, valid_from="2025-07-01")
    new_doc["bands"][0]["tiers"][0]["unit_price_fen"] = 500
    new = parse_tariff(new_doc)
    versions = [new, old]
    before = datetime(2025, 6, 30, 23, 59, tzinfo=TZ)
    after = datetime(2025, 7, 1, 0, 0, tzinfo=TZ)
    assert select_tariff_version(versions, before) is old
    assert select_tariff_version(versions, after) is new
    with pytest.raises(NoTariffInForceError):
        select_tariff_version(versions, datetime(2024, 12, 31, 23, tzinfo=TZ))


def test_day_types_come_from_holidays_workdays_and_the_week() -> None:
    """Holidays win, make-up workdays are weekdays, Saturday and Sunday are the weekend."""
    tariff = load_example_tariffs()["zz-zone2-on-street"]
    assert tariff.day_type(date(2025, 10, 1)).value == "holiday"
    assert tariff.day_type(date(2025, 9, 28)).value == "weekday"
    assert tariff.day_type(date(2025, 3, 8)).value == "weekend"
    assert tariff.day_type(date(2025, 3, 7)).value == "weekday"


def test_describe_tariff_reads_like_a_price_board() -> None:
    """The Chinese and English summaries state bands, tiers, night and free minutes."""
    text = describe_tariff(load_example_tariffs()["zz-zone1-on-street"])
    assert "白天 07:00–21:00：首小时4元，第2–3小时每小时2元，第4小时起每小时4元" in text["zh"]
    assert "夜间 21:00–07:00：免费" in text["zh"]
    assert "15分钟内免费" in text["zh"]
    assert "first hour ¥4, 2nd–3rd hour ¥2 per hour, from the 4th hour ¥4 per hour" in text["en"]


def test_cds_export_has_rates_per_tier_and_says_what_does_not_map() -> None:
    """Tiers become CDS rates with start/end durations; free minutes are listed as unmapped."""
    policies = to_cds_policies(load_example_tariffs()["zz-zone1-on-street"])
    base_day = policies[0]
    rates = base_day["rules"][0]["rate"]
    assert [(r["rate"], r["start_duration"], r.get("end_duration")) for r in rates] == [
        (400, 0, 1),
        (200, 1, 3),
        (400, 3, None),
    ]
    assert all(r["rate_unit"] == "hour" for r in rates)
    assert any("free_minutes" in n for n in base_day["x_city_parking"]["unmapped"])
    large = [p for p in policies if p["rules"][0]["user_classes"] == ["large_car"]]
    assert large[0]["rules"][0]["rate"][0]["rate"] == 800
    assert large[0]["priority"] < base_day["priority"]


def test_apds_export_uses_exact_decimal_strings() -> None:
    """APDS rate lines carry value as an exact decimal string and the amount in fen."""
    table = to_apds_rate_table(load_example_tariffs()["zz-zone1-underground"])
    day, night = table["rateLineCollections"]
    assert day["rateLines"][1]["value"] == "1.00"
    assert day["rateLines"][1]["durationStart"] == "PT60M"
    assert night["rateLines"][0]["rateLineType"] == "flatRate"
    assert night["rateLines"][0]["x_value_fen"] == 1000
    assert any("daily max fee" in n for n in table["x_unmapped"])
