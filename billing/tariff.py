# Copyright 2026 city-parking contributors (Apache-2.0)
"""The tariff model: bands, tiers, caps and vehicle classes as frozen value objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from billing.errors import NaiveDatetimeError, NoTariffInForceError
from parking_core.lots import DEFAULT_TIME_ZONE

MINUTES_PER_DAY = 24 * 60


class VehicleClass(StrEnum):
    """The vehicle classes a tariff may price differently."""

    SMALL_CAR = "small_car"
    LARGE_CAR = "large_car"
    NEW_ENERGY = "new_energy"
    MOTORCYCLE = "motorcycle"


class DayType(StrEnum):
    """What kind of day a local calendar date is, for choosing bands."""

    WEEKDAY = "weekday"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"


class Charge(StrEnum):
    """How a band charges: by progressive tiers, a flat fee per occurrence, or not at all."""

    TIERED = "tiered"
    FLAT = "flat"
    FREE = "free"


class Rounding(StrEnum):
    """How a part charging unit at the end of a segment is counted."""

    UP = "up"  # any started unit is a whole unit (不足一个计费单位按一个单位计)
    DOWN = "down"  # a part unit is not charged
    HALF_UP = "half_up"  # a part of at least half a unit is a whole unit, less is free


class CapWindow(StrEnum):
    """What a daily maximum fee is measured over."""

    CALENDAR_DAY = "calendar_day"  # local calendar date of each charge, 00:00-24:00
    ROLLING_24H = "rolling_24h"  # any 24 hours: charges in (t - 24 h, t] never exceed the cap


class LotKind(StrEnum):
    """Where the lots that use a tariff are; descriptive only, pricing ignores it."""

    ON_STREET = "on_street"
    ABOVE_GROUND = "above_ground"
    UNDERGROUND = "underground"


@dataclass(frozen=True, slots=True)
class Tier:
    """One progressive step of a tiered band: a price per unit between two elapsed times."""

    start_min: int  # minutes since the segment started, inclusive
    end_min: int | None  # exclusive; None means open-ended (only the last tier)
    unit_price_fen: int
    unit_min: int  # the charging unit of this tier, in minutes


@dataclass(frozen=True, slots=True)
class Band:
    """A time-of-day window, on some day types, and how time inside it is charged."""

    band_id: str
    name_zh: str
    name_en: str
    start_min: int  # minute of the day the band starts, 0..1439
    end_min: int  # minute of the day it ends, 1..1440; less than start_min wraps midnight
    day_types: tuple[DayType, ...]
    charge: Charge
    rounding: Rounding = Rounding.UP
    tiers: tuple[Tier, ...] = ()
    flat_fee_fen: int = 0
    max_fee_fen: int | None = None  # cap per band occurrence

    @property
    def wraps_midnight(self) -> bool:
        """Return whether the band runs past midnight into the next day."""
        return self.end_min < self.start_min

    def pieces(self) -> tuple[tuple[int, int], ...]:
        """Return the band's minute ranges within one day, [start, end)."""
        if self.wraps_midnight:
            if self.end_min == 0:
                return ((self.start_min, MINUTES_PER_DAY),)
            return ((0, self.end_min), (self.start_min, MINUTES_PER_DAY))
        return ((self.start_min, self.end_min),)


@dataclass(frozen=True, slots=True)
class PricingRules:
    """Everything that determines a price: bands, free minutes and caps."""

    bands: tuple[Band, ...]
    free_minutes: int = 0
    free_minutes_deducted: bool = False  # False: a longer stay pays from its entry
    daily_max_fee_fen: int | None = None
    daily_window: CapWindow = CapWindow.CALENDAR_DAY
    session_max_fee_fen: int | None = None


@dataclass(frozen=True, slots=True)
class VehicleRule:
    """How one vehicle class is priced: a percentage of the base rules, or its own rules."""

    vehicle_class: VehicleClass
    factor_percent: int | None = None
    rules: PricingRules | None = None


@dataclass(frozen=True, slots=True)
class Tariff:
    """One version of a published tariff, valid from a local date until another date."""

    tariff_id: str
    version: int
    name_zh: str
    name_en: str
    valid_from: date  # inclusive, local date in time_zone
    valid_to: date | None  # exclusive; None means until superseded
    rules: PricingRules
    time_zone: str = DEFAULT_TIME_ZONE
    currency: str = "CNY"
    zone: int | None = None  # city pricing zone (Zhengzhou: 1 most central, 3 outer)
    lot_kind: LotKind | None = None
    holidays: tuple[date, ...] = ()  # public holidays (法定节假日)
    workdays: tuple[date, ...] = ()  # weekend dates worked as weekdays (调休上班)
    vehicle_rules: tuple[VehicleRule, ...] = ()
    reservation_fee_fen: int = 0  # for a hold that was kept, cancelled late or not shown up for
    no_show_fee_fen: int = 0  # on top, for a hold released because nobody arrived

    @property
    def zoneinfo(self) -> ZoneInfo:
        """Return the tariff's time zone."""
        return ZoneInfo(self.time_zone)

    def day_type(self, day: date) -> DayType:
        """Return the day type of a local date: holiday list, then workdays, then the week."""
        return day_type_of(day, self.holidays, self.workdays)

    def in_force_on(self, day: date) -> bool:
        """Return whether this version is valid on a local date."""
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)

    def rules_for(self, vehicle_class: VehicleClass) -> PricingRules:
        """Return the rules that price *vehicle_class*, with any factor already applied."""
        for rule in self.vehicle_rules:
            if rule.vehicle_class is vehicle_class:
                if rule.rules is not None:
                    return rule.rules
                if rule.factor_percent is not None:
                    return scale_rules(self.rules, rule.factor_percent)
        return self.rules


def day_type_of(day: date, holidays: Sequence[date] = (), workdays: Sequence[date] = ()) -> DayType:
    """Return the day type of a local date: holidays, then make-up working days, then the week."""
    if day in holidays:
        return DayType.HOLIDAY
    if day in workdays:
        return DayType.WEEKDAY
    return DayType.WEEKEND if day.weekday() >= 5 else DayType.WEEKDAY


def format_minute(minute: int) -> str:
    """Return a minute of the day as HH:MM (1440 is 24:00)."""
    return f"{minute // 60:02d}:{minute % 60:02d}"


def scale_percent(amount_fen: int, percent: int) -> int:
    """Return *amount_fen* x *percent* / 100, rounded half up to a whole fen (exact integers)."""
    return (amount_fen * percent * 2 + 100) // 200


def _scale_band(band: Band, percent: int) -> Band:
    tiers = tuple(replace(t, unit_price_fen=scale_percent(t.unit_price_fen, percent)) for t in band.tiers)
    cap = None if band.max_fee_fen is None else scale_percent(band.max_fee_fen, percent)
    return replace(
        band,
        tiers=tiers,
        flat_fee_fen=scale_percent(band.flat_fee_fen, percent),
        max_fee_fen=cap,
    )


def scale_rules(rules: PricingRules, percent: int) -> PricingRules:
    """Return *rules* with every amount (unit prices, flat fees, caps) scaled by *percent*."""
    daily = rules.daily_max_fee_fen
    session = rules.session_max_fee_fen
    return replace(
        rules,
        bands=tuple(_scale_band(b, percent) for b in rules.bands),
        daily_max_fee_fen=None if daily is None else scale_percent(daily, percent),
        session_max_fee_fen=None if session is None else scale_percent(session, percent),
    )


def require_aware(field: str, value: datetime) -> None:
    """Raise `NaiveDatetimeError` unless *value* carries a UTC offset."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(field, value)


def select_tariff_version(versions: Sequence[Tariff], at: datetime) -> Tariff:
    """Return the version in force at *at* (a session's entry), judged in its time zone.

    When validity periods overlap, the version with the latest `valid_from` wins, then the
    highest `version`. Raises `NoTariffInForceError` when none is in force.
    """
    tariff = tariff_in_force(versions, at)
    if tariff is None:
        raise NoTariffInForceError(versions[0].tariff_id if versions else None, at)
    return tariff


def tariff_in_force(versions: Sequence[Tariff], at: datetime) -> Tariff | None:
    """Return the version in force at *at* as `select_tariff_version` chooses it, or None."""
    require_aware("at", at)
    candidates = [v for v in versions if v.in_force_on(at.astimezone(v.zoneinfo).date())]
    return max(candidates, key=lambda v: (v.valid_from, v.version)) if candidates else None
