# Copyright 2026 city-parking contributors (Apache-2.0)
"""Price a stay under a tariff, exact to the fen; see docs/tariffs.md for the semantics."""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from datetime import UTC, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING

from billing.errors import ExitBeforeEntryError, StayTooLongError
from billing.quotes import MAX_PRICED_STAY_DAYS, LineKind, Quote, QuoteLine, TimedCharge
from billing.segments import Segment, segments
from billing.tariff import CapWindow, Charge, Rounding, require_aware

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import date, datetime

    from billing.tariff import PricingRules, Tariff, Tier, VehicleClass

CAP_WINDOW = timedelta(hours=24)  # a rolling daily cap looks back this far from each charge


@dataclass(slots=True)
class _Accrual:
    """An amount that falls due at an instant; caps reduce `amount_fen` in time order."""

    at: datetime
    amount_fen: int


def price_stay(
    entry: datetime,
    exit: datetime,  # noqa: A002 - the domain word; shadowing the builtin is harmless here
    vehicle_class: VehicleClass,
    tariff: Tariff,
    earlier_charges: Iterable[TimedCharge] = (),
) -> Quote:
    """Return the price of a stay from *entry* to *exit* for *vehicle_class* under *tariff*.

    *earlier_charges* are what the same plate was already charged at the same lot (the
    `charges` of earlier quotes, or one (entry time, amount) per earlier stay); they count
    against the daily maximum fee, by calendar day or rolling 24 h as the tariff says.
    """
    require_aware("entry", entry)
    require_aware("exit", exit)
    if exit < entry:
        raise ExitBeforeEntryError(entry, exit)
    if exit - entry > timedelta(days=MAX_PRICED_STAY_DAYS):
        raise StayTooLongError(entry, exit, MAX_PRICED_STAY_DAYS)
    entry, exit_at = entry.astimezone(UTC), exit.astimezone(UTC)
    rules = tariff.rules_for(vehicle_class)
    free = timedelta(minutes=rules.free_minutes)
    lines: list[QuoteLine] = []
    accruals: list[_Accrual] = []
    if exit_at - entry <= free:
        if free:
            lines.append(_free_line(entry, exit_at, rules, within=True))
    else:
        start = entry + free if rules.free_minutes_deducted else entry
        if rules.free_minutes_deducted and free:
            lines.append(_free_line(entry, start, rules, within=False))
        for segment in segments(tariff, rules, start, exit_at):
            _price_segment(segment, lines, accruals)
    earlier = sorted((c for c in earlier_charges if c.amount_fen), key=lambda c: c.at)
    _apply_daily_cap(tariff, rules, earlier, accruals, lines)
    _apply_session_cap(rules, accruals, lines, entry, exit_at)
    charges = tuple(TimedCharge(a.at, a.amount_fen) for a in accruals if a.amount_fen)
    return Quote(
        amount_fen=sum(line.amount_fen for line in lines),
        lines=tuple(lines),
        charges=charges,
        tariff_id=tariff.tariff_id,
        tariff_version=tariff.version,
        vehicle_class=vehicle_class,
        entry=entry,
        exit=exit_at,
    )


def _free_line(start: datetime, end: datetime, rules: PricingRules, *, within: bool) -> QuoteLine:
    detail = (
        f"stay within the {rules.free_minutes} free minutes"
        if within
        else f"first {rules.free_minutes} minutes free"
    )
    return QuoteLine(LineKind.FREE_MINUTES, 0, start=start, end=end, detail=detail)


def tier_units(elapsed: timedelta, tier: Tier, rounding: Rounding) -> int:
    """Return how many units of *tier* a segment of length *elapsed* pays for."""
    lo = timedelta(minutes=tier.start_min)
    hi = elapsed if tier.end_min is None else min(elapsed, timedelta(minutes=tier.end_min))
    if hi <= lo:
        return 0
    unit = timedelta(minutes=tier.unit_min)
    full, part = divmod(hi - lo, unit)
    if not part:
        return full
    if rounding is Rounding.UP or (rounding is Rounding.HALF_UP and part * 2 >= unit):
        return full + 1
    return full


@dataclass(frozen=True, slots=True)
class _SegmentRef:
    band_id: str
    start: datetime
    end: datetime


def _price_segment(segment: Segment, lines: list[QuoteLine], accruals: list[_Accrual]) -> None:
    band = segment.band
    common = _SegmentRef(band.band_id, segment.start, segment.end)
    if band.charge is Charge.FREE:
        lines.append(
            QuoteLine(
                LineKind.FREE_BAND,
                0,
                band_id=common.band_id,
                start=common.start,
                end=common.end,
                detail=f"{band.name_en}: free",
            )
        )
        return
    own: list[_Accrual] = []
    if band.charge is Charge.FLAT:
        own.append(_Accrual(segment.start, band.flat_fee_fen))
        lines.append(
            QuoteLine(
                LineKind.FLAT,
                band.flat_fee_fen,
                band_id=common.band_id,
                start=common.start,
                end=common.end,
                units=1,
                unit_price_fen=band.flat_fee_fen,
                detail=f"{band.name_en}: flat fee per entry",
            ),
        )
    for index, tier in enumerate(band.tiers):
        units = tier_units(segment.duration, tier, band.rounding)
        if not units:
            continue
        first = segment.start + timedelta(minutes=tier.start_min)
        step = timedelta(minutes=tier.unit_min)
        own.extend(_Accrual(first + k * step, tier.unit_price_fen) for k in range(units))
        lines.append(
            QuoteLine(
                LineKind.TIER,
                units * tier.unit_price_fen,
                band_id=common.band_id,
                start=common.start,
                end=common.end,
                tier_index=index,
                units=units,
                unit_min=tier.unit_min,
                unit_price_fen=tier.unit_price_fen,
                detail=f"{band.name_en}: tier {index + 1}",
            ),
        )
    if band.max_fee_fen is not None:
        cut = _clip(own, band.max_fee_fen)
        if cut:
            lines.append(
                QuoteLine(
                    LineKind.BAND_CAP,
                    -cut,
                    band_id=common.band_id,
                    start=common.start,
                    end=common.end,
                    cap_fen=band.max_fee_fen,
                    detail=f"{band.name_en}: at most {band.max_fee_fen} fen per occurrence",
                ),
            )
    accruals.extend(a for a in own if a.amount_fen)


def _clip(accruals: Iterable[_Accrual], cap_fen: int) -> int:
    """Reduce *accruals* in order so they add up to at most *cap_fen*; return the reduction."""
    used = cut = 0
    for accrual in accruals:
        allowed = min(accrual.amount_fen, max(0, cap_fen - used))
        cut += accrual.amount_fen - allowed
        used += allowed
        accrual.amount_fen = allowed
    return cut


def _apply_daily_cap(
    tariff: Tariff,
    rules: PricingRules,
    earlier: Sequence[TimedCharge],
    accruals: list[_Accrual],
    lines: list[QuoteLine],
) -> None:
    cap = rules.daily_max_fee_fen
    if cap is None:
        return
    if rules.daily_window is CapWindow.CALENDAR_DAY:
        _apply_calendar_cap(tariff, cap, earlier, accruals, lines)
    else:
        _apply_rolling_cap(cap, earlier, accruals, lines)


def _apply_calendar_cap(
    tariff: Tariff,
    cap: int,
    earlier: Sequence[TimedCharge],
    accruals: list[_Accrual],
    lines: list[QuoteLine],
) -> None:
    tz = tariff.zoneinfo
    used: dict[date, int] = {}
    for charge in earlier:
        day = charge.at.astimezone(tz).date()
        used[day] = used.get(day, 0) + charge.amount_fen
    cuts: dict[date, int] = {}
    for accrual in accruals:
        day = accrual.at.astimezone(tz).date()
        allowed = min(accrual.amount_fen, max(0, cap - used.get(day, 0)))
        if allowed < accrual.amount_fen:
            cuts[day] = cuts.get(day, 0) + accrual.amount_fen - allowed
        used[day] = used.get(day, 0) + allowed
        accrual.amount_fen = allowed
    for day, cut in cuts.items():
        lines.append(
            QuoteLine(
                LineKind.DAILY_CAP,
                -cut,
                cap_fen=cap,
                detail=f"at most {cap} fen on {day.isoformat()} (calendar day)",
            ),
        )


def _apply_rolling_cap(
    cap: int,
    earlier: Sequence[TimedCharge],
    accruals: list[_Accrual],
    lines: list[QuoteLine],
) -> None:
    times = [c.at for c in earlier]
    prefix = [0, *accumulate(c.amount_fen for c in earlier)]
    window: deque[_Accrual] = deque()
    in_window = cut = 0
    for accrual in accruals:
        since = accrual.at - CAP_WINDOW
        while window and window[0].at <= since:
            in_window -= window.popleft().amount_fen
        before = prefix[bisect_right(times, accrual.at)] - prefix[bisect_right(times, since)]
        allowed = min(accrual.amount_fen, max(0, cap - in_window - before))
        cut += accrual.amount_fen - allowed
        accrual.amount_fen = allowed
        window.append(accrual)
        in_window += allowed
    if cut:
        lines.append(
            QuoteLine(
                LineKind.DAILY_CAP,
                -cut,
                cap_fen=cap,
                detail=f"at most {cap} fen in any 24 hours (rolling)",
            ),
        )


def _apply_session_cap(
    rules: PricingRules,
    accruals: list[_Accrual],
    lines: list[QuoteLine],
    entry: datetime,
    exit_at: datetime,
) -> None:
    cap = rules.session_max_fee_fen
    if cap is None:
        return
    cut = _clip(accruals, cap)
    if cut:
        lines.append(
            QuoteLine(
                LineKind.SESSION_CAP,
                -cut,
                start=entry,
                end=exit_at,
                cap_fen=cap,
                detail=f"at most {cap} fen per stay",
            ),
        )
