# Copyright 2026 city-parking contributors (Apache-2.0)
"""Parse and validate a tariff JSON document into a `Tariff`, naming every problem's field."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing.errors import TariffValidationError
from billing.reader import FieldReader, join_path
from billing.tariff import (
    MINUTES_PER_DAY,
    Band,
    CapWindow,
    Charge,
    DayType,
    LotKind,
    PricingRules,
    Rounding,
    Tariff,
    Tier,
    VehicleClass,
    VehicleRule,
    format_minute,
)
from parking_core.lots import DEFAULT_TIME_ZONE

MAX_FACTOR_PERCENT = 1000  # a class paying more than ten times the base price is surely a typo
RULE_FIELDS = frozenset(
    {
        "free_minutes",
        "free_minutes_deducted",
        "daily_max_fee_fen",
        "daily_window",
        "session_max_fee_fen",
        "bands",
    },
)
TARIFF_FIELDS = RULE_FIELDS | {
    "tariff_id",
    "version",
    "name",
    "time_zone",
    "currency",
    "zone",
    "lot_kind",
    "valid_from",
    "valid_to",
    "holidays",
    "workdays",
    "vehicle_classes",
    "reservation_fee_fen",
    "no_show_fee_fen",
}
BAND_FIELDS = frozenset(
    {"band_id", "name", "start", "end", "day_types", "charge"}
    | {"unit_min", "rounding", "tiers", "flat_fee_fen", "max_fee_fen"},
)
TIER_FIELDS = frozenset({"start_min", "end_min", "unit_price_fen", "unit_min"})
FIELDS_BY_CHARGE = {
    Charge.FREE: frozenset[str](),
    Charge.FLAT: frozenset({"flat_fee_fen", "max_fee_fen"}),
    Charge.TIERED: frozenset({"unit_min", "rounding", "tiers", "max_fee_fen"}),
}


def parse_tariff(doc: Mapping[str, Any]) -> Tariff:
    """Return the tariff described by *doc*, or raise `TariffValidationError` listing problems."""
    reader = FieldReader()
    tariff = _tariff(reader, doc)
    if reader.problems or tariff is None:
        raise TariffValidationError(reader.problems)
    return tariff


def _tariff(r: FieldReader, value: Any) -> Tariff | None:
    doc = r.obj(value, "", TARIFF_FIELDS)
    if doc is None:
        return None
    tariff_id = r.get(doc, "", "tariff_id", r.id_)
    version = r.get(doc, "", "version", lambda v, p: r.int_(v, p, 1, 1_000_000))
    name_zh, name_en = r.names(doc.get("name"), "name") if "name" in doc else ("", "")
    if "name" not in doc:
        r.fail("name", "is required")
    time_zone = r.get(doc, "", "time_zone", _time_zone(r), DEFAULT_TIME_ZONE)
    currency = r.get(doc, "", "currency", _currency(r), "CNY")
    zone = r.get(doc, "", "zone", lambda v, p: None if v is None else r.int_(v, p, 1, 99), None)
    lot_kind = r.get(doc, "", "lot_kind", lambda v, p: _opt_enum(r, LotKind, v, p), None)
    valid_from = r.get(doc, "", "valid_from", r.date_)
    valid_to = r.get(doc, "", "valid_to", lambda v, p: None if v is None else r.date_(v, p), None)
    if valid_from and valid_to and valid_to <= valid_from:
        r.fail("valid_to", f"must be after valid_from ({valid_from.isoformat()})")
    holidays = r.get(doc, "", "holidays", r.dates, ()) or ()
    workdays = r.get(doc, "", "workdays", r.dates, ()) or ()
    for i, day in enumerate(workdays):
        if day in holidays:
            r.fail(f"workdays[{i}]", f"{day.isoformat()} is also listed in holidays")
        elif day.weekday() < 5:
            r.fail(f"workdays[{i}]", f"{day.isoformat()} is not a Saturday or Sunday")
    rules = _rules(r, doc, "")
    reservation_fee = r.get(doc, "", "reservation_fee_fen", r.int_, 0)
    no_show_fee = r.get(doc, "", "no_show_fee_fen", r.int_, 0)
    vehicle_rules = r.get(doc, "", "vehicle_classes", _vehicle_rules(r), ())
    if r.problems or rules is None:
        return None
    assert tariff_id is not None
    assert version is not None
    assert valid_from is not None
    return Tariff(
        tariff_id=tariff_id,
        version=version,
        name_zh=name_zh,
        name_en=name_en,
        valid_from=valid_from,
        valid_to=valid_to,
        rules=rules,
        time_zone=time_zone or DEFAULT_TIME_ZONE,
        currency=currency or "CNY",
        zone=zone,
        lot_kind=lot_kind,
        holidays=holidays,
        workdays=workdays,
        vehicle_rules=vehicle_rules or (),
        reservation_fee_fen=reservation_fee or 0,
        no_show_fee_fen=no_show_fee or 0,
    )


def _time_zone(r: FieldReader) -> Any:
    def check(value: Any, path: str) -> str | None:
        name = r.str_(value, path)
        if name is None:
            return None
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            r.fail(path, f"is not a known IANA time zone: {name!r}")
            return None
        return name

    return check


def _currency(r: FieldReader) -> Any:
    def check(value: Any, path: str) -> str | None:
        if value != "CNY":
            r.fail(path, f"must be 'CNY' (amounts are in fen), got {value!r}")
            return None
        return "CNY"

    return check


def _opt_enum(r: FieldReader, kind: Any, value: Any, path: str) -> Any:
    return None if value is None else r.enum(kind, value, path)


def _rules(r: FieldReader, doc: Mapping[str, Any], path: str) -> PricingRules | None:
    free = r.get(doc, path, "free_minutes", lambda v, p: r.int_(v, p, 0, MINUTES_PER_DAY), 0)
    deducted = r.get(doc, path, "free_minutes_deducted", r.bool_, default=False)
    daily = r.get(doc, path, "daily_max_fee_fen", r.opt_int, None)
    window = r.get(doc, path, "daily_window", lambda v, p: r.enum(CapWindow, v, p), "calendar_day")
    session = r.get(doc, path, "session_max_fee_fen", r.opt_int, None)
    bands = _bands(r, doc.get("bands"), join_path(path, "bands")) if "bands" in doc else None
    if "bands" not in doc:
        r.fail(join_path(path, "bands"), "is required")
    if bands is None or free is None or deducted is None or window is None:
        return None
    return PricingRules(
        bands=bands,
        free_minutes=free,
        free_minutes_deducted=deducted,
        daily_max_fee_fen=daily,
        daily_window=CapWindow(window),
        session_max_fee_fen=session,
    )


def _bands(r: FieldReader, value: Any, path: str) -> tuple[Band, ...] | None:
    if not isinstance(value, list) or not value:
        r.fail(path, "must be a non-empty list of bands")
        return None
    before = len(r.problems)
    bands = [_band(r, item, f"{path}[{i}]") for i, item in enumerate(value)]
    seen: dict[str, int] = {}
    for i, band in enumerate(bands):
        if band is not None and band.band_id in seen:
            r.fail(f"{path}[{i}].band_id", f"repeats bands[{seen[band.band_id]}].band_id")
        elif band is not None:
            seen[band.band_id] = i
    if len(r.problems) > before:
        return None
    checked = tuple(b for b in bands if b is not None)
    _check_coverage(r, checked, path)
    return checked if len(r.problems) == before else None


def _band(r: FieldReader, value: Any, path: str) -> Band | None:
    doc = r.obj(value, path, BAND_FIELDS)
    if doc is None:
        return None
    band_id = r.get(doc, path, "band_id", r.id_)
    name_zh, name_en = r.names(doc["name"], join_path(path, "name")) if "name" in doc else ("", "")
    if "name" not in doc:
        r.fail(join_path(path, "name"), "is required")
    start = r.get(doc, path, "start", lambda v, p: r.time_(v, p, is_end=False))
    end = r.get(doc, path, "end", lambda v, p: r.time_(v, p, is_end=True))
    if start is not None and end is not None and start == end:
        r.fail(join_path(path, "end"), "equals start; write 00:00-24:00 for a whole day")
    day_types = r.get(doc, path, "day_types", _day_types(r), tuple(DayType))
    charge = r.get(doc, path, "charge", lambda v, p: r.enum(Charge, v, p))
    if charge is None:
        return None
    for key in sorted(set(doc) & (BAND_FIELDS - FIELDS_BY_CHARGE[charge]) - _COMMON_BAND_FIELDS):
        r.fail(join_path(path, key), f"is not allowed when charge is {charge.value!r}")
    rounding = r.get(doc, path, "rounding", lambda v, p: r.enum(Rounding, v, p), Rounding.UP)
    flat = r.get(doc, path, "flat_fee_fen", r.int_) if charge is Charge.FLAT else 0
    cap = r.get(doc, path, "max_fee_fen", r.opt_int, None)
    tiers: tuple[Tier, ...] | None = ()
    if charge is Charge.TIERED:
        unit = r.get(doc, path, "unit_min", lambda v, p: r.int_(v, p, 1, MINUTES_PER_DAY), None)
        tiers = _tiers(r, doc.get("tiers"), join_path(path, "tiers"), unit)
    if None in (band_id, start, end, day_types, rounding, flat, tiers) or start == end:
        return None
    assert band_id is not None
    assert start is not None
    assert end is not None
    assert day_types is not None
    assert rounding is not None
    assert flat is not None
    assert tiers is not None
    return Band(
        band_id=band_id,
        name_zh=name_zh,
        name_en=name_en,
        start_min=start,
        end_min=end,
        day_types=day_types,
        charge=charge,
        rounding=rounding if charge is Charge.TIERED else Rounding.UP,
        tiers=tiers,
        flat_fee_fen=flat,
        max_fee_fen=cap,
    )


_COMMON_BAND_FIELDS = frozenset({"band_id", "name", "start", "end", "day_types", "charge"})


def _day_types(r: FieldReader) -> Any:
    def check(value: Any, path: str) -> tuple[DayType, ...] | None:
        if not isinstance(value, list) or not value:
            r.fail(path, "must be a non-empty list of 'weekday', 'weekend', 'holiday'")
            return None
        found = [r.enum(DayType, v, f"{path}[{i}]") for i, v in enumerate(value)]
        if None in found:
            return None
        if len(set(found)) != len(found):
            r.fail(path, "lists a day type twice")
            return None
        return tuple(d for d in DayType if d in found)

    return check


def _tiers(r: FieldReader, value: Any, path: str, band_unit: int | None) -> tuple[Tier, ...] | None:
    if not isinstance(value, list) or not value:
        r.fail(path, "must be a non-empty list of tiers")
        return None
    before = len(r.problems)
    tiers = [_tier(r, item, f"{path}[{i}]", band_unit) for i, item in enumerate(value)]
    if len(r.problems) > before:
        return None
    expected_start = 0
    for i, tier in enumerate(tiers):
        assert tier is not None
        _check_tier(r, f"{path}[{i}]", (i, len(tiers)), expected_start, tier)
        expected_start = tier.end_min if tier.end_min is not None else tier.start_min
    checked = tuple(t for t in tiers if t is not None)
    return checked if len(r.problems) == before else None


def _tier(r: FieldReader, value: Any, path: str, band_unit: int | None) -> Tier | None:
    doc = r.obj(value, path, TIER_FIELDS)
    if doc is None:
        return None
    start = r.get(doc, path, "start_min", r.int_)
    end = r.get(doc, path, "end_min", r.opt_int, None)
    price = r.get(doc, path, "unit_price_fen", r.int_)
    unit = r.get(doc, path, "unit_min", lambda v, p: r.int_(v, p, 1, 1440), band_unit)
    if unit is None and "unit_min" not in doc:
        r.fail(join_path(path, "unit_min"), "is required (here or on the band)")
    if start is None or price is None or unit is None:
        return None
    return Tier(start, end, price, unit)


def _check_tier(
    r: FieldReader, path: str, position: tuple[int, int], expected_start: int, tier: Tier
) -> None:
    """Record problems with one tier's bounds: order, gaps, open end, unit multiples."""
    i, count = position
    start, end, unit = tier.start_min, tier.end_min, tier.unit_min
    if start != expected_start:
        what = "the first tier must start at 0" if i == 0 else f"tiers[{i - 1}] ends there"
        r.fail(join_path(path, "start_min"), f"must be {expected_start} ({what})")
    if end is None and i != count - 1:
        r.fail(join_path(path, "end_min"), "only the last tier may be open-ended (null)")
    if end is not None and i == count - 1:
        r.fail(join_path(path, "end_min"), "the last tier must be open-ended (null)")
    if end is not None and end <= start:
        r.fail(join_path(path, "end_min"), f"must be greater than start_min ({start})")
    for key, bound in (("start_min", start), ("end_min", end)):
        if bound is not None and bound % unit:
            r.fail(join_path(path, key), f"must be a multiple of unit_min ({unit})")


def _check_coverage(r: FieldReader, bands: tuple[Band, ...], path: str) -> None:
    """Record overlaps and gaps: for each day type the bands must tile 00:00-24:00 exactly."""
    for day_type in DayType:
        pieces = sorted(
            (lo, hi, i)
            for i, band in enumerate(bands)
            if day_type in band.day_types
            for lo, hi in band.pieces()
        )
        cursor, last = 0, None
        for lo, hi, i in pieces:
            if lo < cursor and last is not None:
                r.fail(
                    f"{path}[{i}]",
                    f"overlaps bands[{last}] on {day_type.value} days "
                    f"at {format_minute(lo)}-{format_minute(min(hi, cursor))}",
                )
            elif lo > cursor:
                r.fail(
                    path,
                    f"leave {format_minute(cursor)}-{format_minute(lo)} uncovered on {day_type.value} days",
                )
            cursor, last = max(cursor, hi), i
        if cursor < MINUTES_PER_DAY:
            r.fail(path, f"leave {format_minute(cursor)}-24:00 uncovered on {day_type.value} days")


def _vehicle_rules(r: FieldReader) -> Any:
    def check(value: Any, path: str) -> tuple[VehicleRule, ...] | None:
        doc = r.obj(value, path, frozenset(VehicleClass))
        if doc is None:
            return None
        found: list[VehicleRule] = []
        for vehicle_class in VehicleClass:
            if vehicle_class.value in doc:
                rule = _vehicle_rule(r, doc[vehicle_class.value], join_path(path, vehicle_class))
                if rule is not None:
                    found.append(VehicleRule(vehicle_class, *rule))
        return tuple(found)

    return check


def _vehicle_rule(r: FieldReader, value: Any, path: str) -> tuple[int | None, PricingRules | None] | None:
    doc = r.obj(value, path, frozenset({"factor_percent", "rules"}))
    if doc is None:
        return None
    if ("factor_percent" in doc) == ("rules" in doc):
        r.fail(path, "must have exactly one of factor_percent or rules")
        return None
    if "factor_percent" in doc:
        factor = r.int_(doc["factor_percent"], join_path(path, "factor_percent"), 0, MAX_FACTOR_PERCENT)
        return None if factor is None else (factor, None)
    rules_path = join_path(path, "rules")
    rules_doc = r.obj(doc["rules"], rules_path, RULE_FIELDS)
    rules = None if rules_doc is None else _rules(r, rules_doc, rules_path)
    return None if rules is None else (None, rules)
