# Copyright 2026 city-parking contributors (Apache-2.0)
"""Export a tariff as CDS Curbs Policies/Rules/Rates and as an APDS RateTable."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from billing.tariff import CapWindow, Charge, DayType, Rounding, format_minute

if TYPE_CHECKING:
    from billing.tariff import Band, PricingRules, Tariff, Tier, VehicleClass

ID_NAMESPACE = uuid.UUID("6f1c2b9e-5d1a-4c1e-9a57-1f3e0b2c7d41")  # fixed: ids stay stable
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]
WEEKEND = ["sat", "sun"]
HOLIDAYS = "holidays"  # CDS designated_period for public holidays
BASE_PRIORITY = 2  # CDS: the lowest priority number wins, so vehicle-class policies come first
CLASS_PRIORITY = 1
HOUR = 60


def _stable_id(*parts: object) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(str(p) for p in parts)))


def _epoch_ms(tariff: Tariff, day: Any) -> int:
    return int(datetime.combine(day, time(), tariff.zoneinfo).timestamp()) * 1000


def _time_spans(tariff: Tariff, band: Band) -> list[dict[str, Any]]:
    base: dict[str, Any] = {
        "start_date": _epoch_ms(tariff, tariff.valid_from),
        "time_of_day_start": format_minute(band.start_min),
        "time_of_day_end": format_minute(band.end_min),
    }
    if tariff.valid_to is not None:
        base["end_date"] = _epoch_ms(tariff, tariff.valid_to)
    if band.day_types == tuple(DayType):
        return [base]
    spans = []
    for day_type in band.day_types:
        if day_type is DayType.HOLIDAY:
            spans.append({**base, "designated_period": HOLIDAYS})
        else:
            days = WEEKDAYS if day_type is DayType.WEEKDAY else WEEKEND
            spans.append(
                {
                    **base,
                    "days_of_week": days,
                    "designated_period": HOLIDAYS,
                    "designated_period_except": True,
                },
            )
    return spans


def _tier_rate(tier: Tier, notes: list[str], band: Band) -> dict[str, Any]:
    unit, price = tier.unit_min, tier.unit_price_fen
    hourly = unit % HOUR == 0 and tier.start_min % HOUR == 0 and (price * HOUR) % unit == 0
    scale = HOUR if hourly and (tier.end_min is None or tier.end_min % HOUR == 0) else 1
    if price % unit and scale == 1:
        notes.append(
            f"{band.band_id}: {price} fen per {unit} min is not whole fen per minute; "
            "rate rounded down, use increment_duration x rate with care",
        )
    rate: dict[str, Any] = {
        "rate": price * scale // unit,
        "rate_unit": "hour" if scale == HOUR else "minute",
        "increment_duration": unit // scale,
        "start_duration": tier.start_min // scale,
    }
    if tier.end_min is not None:
        rate["end_duration"] = tier.end_min // scale
    if band.max_fee_fen is not None:
        rate["maximum_fee"] = band.max_fee_fen
    return rate


def _rates(band: Band, notes: list[str]) -> list[dict[str, Any]]:
    if band.charge is Charge.FREE:
        return []
    if band.charge is Charge.FLAT:
        notes.append(
            f"{band.band_id}: the flat fee per entry is written as one rolling day, which is "
            "exact because a band occurrence never exceeds 24 hours",
        )
        return [{"rate": band.flat_fee_fen, "rate_unit": "day", "rate_unit_period": "rolling"}]
    if band.rounding is not Rounding.UP:
        notes.append(
            f"{band.band_id}: rounding {band.rounding.value!r} of part units has no CDS "
            "equivalent (increment_duration always rounds up)",
        )
    return [_tier_rate(t, notes, band) for t in band.tiers]


def _common_notes(tariff: Tariff, rules: PricingRules, standard: str) -> list[str]:
    notes = []
    if rules.free_minutes:
        how = "deducted" if rules.free_minutes_deducted else "not deducted from longer stays"
        notes.append(f"free_minutes={rules.free_minutes} ({how}) has no {standard} field")
    if rules.daily_max_fee_fen is not None:
        window = "calendar day" if rules.daily_window is CapWindow.CALENDAR_DAY else "24 h"
        notes.append(f"daily max fee {rules.daily_max_fee_fen} fen per {window} has no {standard} field")
    if rules.session_max_fee_fen is not None:
        notes.append(f"session max fee {rules.session_max_fee_fen} fen has no {standard} field")
    if tariff.holidays:
        notes.append(f"the holiday dates themselves are not exported to {standard}")
    if tariff.workdays:
        notes.append(f"make-up working days (workdays, 调休) have no {standard} equivalent")
    return notes


def _rule_notes(tariff: Tariff, rules: PricingRules) -> list[str]:
    return [
        (
            "CDS counts start_duration from arrival; this tariff counts tiers from the start of "
            "each band occurrence (a stay crossing into a band starts that band's first tier)"
        ),
        "time_of_day_end earlier than time_of_day_start means the span runs past midnight",
        *_common_notes(tariff, rules, "CDS"),
    ]


def _policies(
    tariff: Tariff, rules: PricingRules, vehicle_class: VehicleClass | None
) -> list[dict[str, Any]]:
    user_classes = [] if vehicle_class is None else [vehicle_class.value]
    policies = []
    for band in rules.bands:
        notes = _rule_notes(tariff, rules)
        rates = _rates(band, notes)
        policies.append(
            {
                "curb_policy_id": _stable_id(
                    tariff.tariff_id, tariff.version, vehicle_class or "all", band.band_id
                ),
                "published_date": _epoch_ms(tariff, tariff.valid_from),
                "priority": BASE_PRIORITY if vehicle_class is None else CLASS_PRIORITY,
                "time_spans": _time_spans(tariff, band),
                "rules": [{"activity": "parking", "user_classes": user_classes, "rate": rates}],
                "x_city_parking": {
                    "tariff_id": tariff.tariff_id,
                    "version": tariff.version,
                    "band_id": band.band_id,
                    "vehicle_class": None if vehicle_class is None else vehicle_class.value,
                    "unmapped": notes,
                },
            },
        )
    return policies


def to_cds_policies(tariff: Tariff) -> list[dict[str, Any]]:
    """Return CDS Curbs Policy objects for *tariff*: one per band, per priced vehicle class.

    Vehicle-class policies carry that class in `user_classes` and win by priority; factors are
    applied exactly to the exported rates. What CDS cannot say is listed, per policy, in
    `x_city_parking.unmapped`, never silently dropped.
    """
    policies = _policies(tariff, tariff.rules, None)
    for rule in tariff.vehicle_rules:
        policies += _policies(tariff, tariff.rules_for(rule.vehicle_class), rule.vehicle_class)
    return policies


def _money(amount_fen: int) -> str:
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def _rate_line(sequence: int, tier: Tier, rounding: Rounding) -> dict[str, Any]:
    line: dict[str, Any] = {
        "sequence": sequence,
        "rateLineType": "incrementingRate",
        "durationStart": f"PT{tier.start_min}M",
        "incrementPeriod": f"PT{tier.unit_min}M",
        "value": _money(tier.unit_price_fen),
        "x_value_fen": tier.unit_price_fen,
        "x_rounding": rounding.value,
    }
    if tier.end_min is not None:
        line["durationEnd"] = f"PT{tier.end_min}M"
    return line


def _collection(sequence: int, band: Band) -> dict[str, Any]:
    if band.charge is Charge.FLAT:
        lines = [
            {
                "sequence": 0,
                "rateLineType": "flatRate",
                "value": _money(band.flat_fee_fen),
                "x_value_fen": band.flat_fee_fen,
            },
        ]
    else:
        lines = [_rate_line(i, t, band.rounding) for i, t in enumerate(band.tiers)]
    collection: dict[str, Any] = {
        "collectionSequence": sequence,
        "applicableCurrency": "CNY",
        "rateLines": lines,
        "x_band": {
            "band_id": band.band_id,
            "start": format_minute(band.start_min),
            "end": format_minute(band.end_min),
            "day_types": [d.value for d in band.day_types],
            "charge": band.charge.value,
        },
    }
    if band.max_fee_fen is not None:
        collection["maxValueCollection"] = _money(band.max_fee_fen)
    return collection


def to_apds_rate_table(tariff: Tariff) -> dict[str, Any]:
    """Return an APDS RateTable for the base (small car) rules of *tariff*.

    One RateLineCollection per band (in `x_band`: its time of day and day types, which APDS
    keeps outside the table); money `value`s are exact decimal strings in yuan, with
    `x_value_fen`. Concepts APDS cannot carry are listed in `x_unmapped`.
    """
    rules = tariff.rules
    table: dict[str, Any] = {
        "id": _stable_id(tariff.tariff_id, tariff.version, "apds"),
        "version": tariff.version,
        "rateTableName": [
            {"language": "zh", "string": tariff.name_zh},
            {"language": "en", "string": tariff.name_en},
        ],
        "rateType": "hourly",
        "validityStart": datetime.combine(tariff.valid_from, time(), tariff.zoneinfo).isoformat(),
        "rateLineCollections": [_collection(i, b) for i, b in enumerate(rules.bands)],
        "x_unmapped": [
            "durationStart/durationEnd count from the start of each band occurrence",
            *_common_notes(tariff, rules, "APDS"),
            *(f"vehicle class {r.vehicle_class.value} is not exported" for r in tariff.vehicle_rules),
        ],
    }
    if tariff.valid_to is not None:
        table["validityEnd"] = datetime.combine(tariff.valid_to, time(), tariff.zoneinfo).isoformat()
    return table
