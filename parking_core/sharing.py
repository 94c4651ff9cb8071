"""Staggered sharing (错时停车): recurring windows in which a private lot's spaces are public."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo

from parking_core.errors import NaiveTimeError
from parking_core.gates import format_yuan
from parking_core.lots import LotCounts

MINUTES_PER_DAY = 24 * 60
DAY_TYPES = frozenset({"weekday", "weekend", "holiday"})
# How far ahead the end of a chain of windows is looked for (a longer chain ends "in a week").
STRETCH_HORIZON = timedelta(days=8)
# The day type of a local date: weekday, weekend or holiday. The adapter passes the calendar the
# lot's tariff uses (billing's Tariff.day_type: holidays, then make-up working days, then the week),
# so sharing and prices never disagree about what kind of day it is.
DayTypeOf = Callable[[date], str]


@dataclass(frozen=True, slots=True)
class SharingRule:
    """One recurring window: on days of these types, from start to end, this many spaces are public.

    ``end_min`` ≤ ``start_min`` runs past midnight into the next day (19:00–08:00); 0–1440 is all
    day. A window belongs to the day it starts on: "weekdays 19:00–08:00" on a Friday runs to
    Saturday 08:00.
    """

    rule_id: str
    day_types: frozenset[str]
    start_min: int  # 0..1439
    end_min: int  # 1..1440; ≤ start_min wraps midnight
    spaces: int  # the quota: how many spaces the public may use

    def __post_init__(self) -> None:
        if not self.day_types or not self.day_types <= DAY_TYPES:
            raise ValueError(f"day_types must be a non-empty subset of {sorted(DAY_TYPES)}")
        if not (0 <= self.start_min < MINUTES_PER_DAY and 0 < self.end_min <= MINUTES_PER_DAY):
            raise ValueError("start must be 00:00-23:59 and end 00:01-24:00")
        if self.spaces < 0:
            raise ValueError("spaces must not be negative")

    @property
    def length(self) -> timedelta:
        """Return how long one occurrence lasts."""
        minutes = self.end_min - self.start_min
        return timedelta(minutes=minutes if minutes > 0 else minutes + MINUTES_PER_DAY)

    def occurrence(self, day: date, tz: tzinfo) -> tuple[datetime, datetime]:
        """Return the occurrence that starts on local *day*, as aware instants."""
        start = datetime.combine(day, time()) + timedelta(minutes=self.start_min)
        return start.replace(tzinfo=tz), (start + self.length).replace(tzinfo=tz)


@dataclass(frozen=True, slots=True)
class SharingWindow:
    """A stretch of time with a constant public quota (> 0)."""

    start: datetime
    end: datetime
    spaces: int


def _require_aware(what: str, value: datetime) -> None:
    if value.utcoffset() is None:
        raise NaiveTimeError(what)


def _occurrences(
    rules: Iterable[SharingRule], start: datetime, end: datetime, tz: tzinfo, day_type_of: DayTypeOf
) -> list[tuple[datetime, datetime, int]]:
    first = start.astimezone(tz).date() - timedelta(days=1)  # yesterday's window may still run
    last = end.astimezone(tz).date()
    found = []
    for rule in rules:
        day = first
        while day <= last:
            if day_type_of(day) in rule.day_types and rule.spaces > 0:
                begin, finish = rule.occurrence(day, tz)
                if begin < end and finish > start:
                    found.append((max(begin, start), min(finish, end), rule.spaces))
            day += timedelta(days=1)
    return found


def windows_between(
    rules: Iterable[SharingRule], start: datetime, end: datetime, tz: tzinfo, day_type_of: DayTypeOf
) -> list[SharingWindow]:
    """Return the shared stretches within [start, end): where rules overlap, the largest quota counts."""
    _require_aware("start", start)
    _require_aware("end", end)
    pieces = _occurrences(rules, start, end, tz, day_type_of)
    cuts = sorted({t for begin, finish, _ in pieces for t in (begin, finish)})
    windows: list[SharingWindow] = []
    for left, right in itertools.pairwise(cuts):
        spaces = max((n for begin, finish, n in pieces if begin <= left and right <= finish), default=0)
        if spaces <= 0:
            continue
        if windows and windows[-1].end == left and windows[-1].spaces == spaces:
            windows[-1] = replace(windows[-1], end=right)
        else:
            windows.append(SharingWindow(left, right, spaces))
    return windows


def shared_spaces_at(rules: Iterable[SharingRule], at: datetime, tz: tzinfo, day_type_of: DayTypeOf) -> int:
    """Return how many spaces are public at the instant *at* (0 outside every window)."""
    _require_aware("at", at)
    found = windows_between(rules, at, at + timedelta(microseconds=1), tz, day_type_of)
    return found[0].spaces if found else 0


def stretches(windows: Iterable[SharingWindow]) -> list[SharingWindow]:
    """Return the windows chained where one ends as the next begins: the shared time a car may stay.

    A stretch's ``spaces`` is its smallest quota (the public is never promised more than that).
    """
    chained: list[SharingWindow] = []
    for window in windows:
        if chained and chained[-1].end == window.start:
            last = chained[-1]
            chained[-1] = SharingWindow(last.start, window.end, min(last.spaces, window.spaces))
        else:
            chained.append(window)
    return chained


def stretch_at(chained: Sequence[SharingWindow], at: datetime) -> SharingWindow | None:
    """Return the stretch of *chained* (sorted, disjoint) that covers the instant *at*, if any."""
    index = bisect.bisect_right([s.start for s in chained], at) - 1
    if index >= 0 and at < chained[index].end:
        return chained[index]
    return None


def window_end_after(
    rules: Iterable[SharingRule], at: datetime, tz: tzinfo, day_type_of: DayTypeOf
) -> datetime | None:
    """Return when the shared time that covers *at* ends (a car parked then must leave by it)."""
    horizon = at + STRETCH_HORIZON  # a window chain longer than a week is looked at a week ahead
    found = stretch_at(stretches(windows_between(rules, at, horizon, tz, day_type_of)), at)
    return None if found is None else found.end


def public_counts(counts: LotCounts, shared: int | None) -> tuple[LotCounts, bool]:
    """Return what the public sees of a lot, and whether it is closed to the public.

    A lot that shares nothing (``shared`` None) is public as it is. A shared lot shows at most its
    current quota as capacity and free; at quota 0 (outside every window) it is closed to the public
    (never ``full``: members still park there).
    """
    if shared is None:
        return counts, False
    quota = min(max(shared, 0), counts.capacity)
    if quota == 0:
        return LotCounts(0), True
    free = min(counts.free, quota)
    unknown = min(counts.unknown, quota - free)
    return LotCounts(quota, free=free, occupied=quota - free - unknown, unknown=unknown), False


def may_enter_shared_lot(plate: str, members: frozenset[str], shared_now: int) -> bool:
    """Tell whether a plate may enter a shared lot now: members always, the public only in a window."""
    return plate in members or shared_now > 0


@dataclass(frozen=True, slots=True)
class EndTerms:
    """What a shared lot's owner set for the end of a window: when to remind, what an overstay costs."""

    remind_before: timedelta = timedelta(minutes=30)  # 0: no reminder
    overstay_unit: timedelta = timedelta(minutes=60)
    overstay_unit_fee_fen: int = 0

    def __post_init__(self) -> None:
        if self.remind_before < timedelta(0) or self.overstay_unit <= timedelta(0):
            raise ValueError("remind_before must not be negative and overstay_unit must be positive")
        if self.overstay_unit_fee_fen < 0:
            raise ValueError("overstay_unit_fee_fen must not be negative")


def overstay_units(window_end: datetime, left_at: datetime, unit: timedelta) -> int:
    """Return how many overstay units were started after the window's end (0 when left in time)."""
    _require_aware("window_end", window_end)
    _require_aware("left_at", left_at)
    over = left_at - window_end
    if over <= timedelta(0):
        return 0
    return -(-over // unit)  # started units: ceiling division on timedeltas


def overstay_fee(window_end: datetime, left_at: datetime, unit: timedelta, unit_fee_fen: int) -> int:
    """Return the overstay surcharge: every started *unit* after the window's end costs *unit_fee_fen*."""
    return overstay_units(window_end, left_at, unit) * unit_fee_fen


def reminder_due(window_end: datetime, now: datetime, before: timedelta) -> bool:
    """Tell whether a driver parked until *window_end* is now to be reminded to leave."""
    return window_end - before <= now < window_end


def reminder_text(window_end: datetime, tz: tzinfo, terms: EndTerms) -> str:
    """Return what the reminder says, e.g. ``共享停车时段将于 08:00 结束，请按时驶离；超时每60分钟加收¥5.00``.

    Times are the lot's local clock; the surcharge is named only when the owner set one.
    """
    end = window_end.astimezone(tz).strftime("%H:%M")
    text = f"共享停车时段将于 {end} 结束，请按时驶离"
    if terms.overstay_unit_fee_fen:
        unit_min = int(terms.overstay_unit.total_seconds() // 60)
        text += f"；超时每{unit_min}分钟加收{format_yuan(terms.overstay_unit_fee_fen)}"
    return text


def owner_split(total_fen: int, owner_share_percent: int) -> tuple[int, int]:
    """Return (owner's, operator's) part of *total_fen*: the owner's share rounded half up to a
    fen, the operator keeps the rest, so the parts always add up to the total.
    """
    if total_fen < 0 or not 0 <= owner_share_percent <= 100:
        raise ValueError("a split needs a non-negative total and a share of 0-100 %")
    owner = (total_fen * owner_share_percent * 2 + 100) // 200
    return owner, total_fen - owner
