# Copyright 2026 city-parking contributors (Apache-2.0)
"""Split a stay into band occurrences (segments), in the tariff's local time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator
    from zoneinfo import ZoneInfo

    from billing.tariff import Band, PricingRules, Tariff

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One run of a band: a maximal time under it that does not cross the band's start time."""

    band: Band
    start: datetime  # UTC
    end: datetime  # UTC


@dataclass(frozen=True, slots=True)
class Segment:
    """The part of a stay inside one band occurrence."""

    occurrence: Occurrence
    start: datetime  # UTC, max(stay start, occurrence start)
    end: datetime  # UTC, min(stay end, occurrence end)

    @property
    def band(self) -> Band:
        """Return the band this segment is priced by."""
        return self.occurrence.band

    @property
    def duration(self) -> timedelta:
        """Return how long the stay spent in this occurrence."""
        return self.end - self.start


def _local(day: datetime, minute: int, tz: ZoneInfo) -> datetime:
    """Return the UTC instant of *minute* past local midnight on *day* (minute may be 1440)."""
    wall = datetime.combine(day.date(), time()) + timedelta(minutes=minute)
    return wall.replace(tzinfo=tz).astimezone(UTC)


def _day_pieces(
    tariff: Tariff, rules: PricingRules, day: datetime, tz: ZoneInfo
) -> Iterator[tuple[Band, int, datetime, datetime]]:
    """Yield (band, local start minute, start, end) for each band piece of one local day."""
    day_type = tariff.day_type(day.date())
    pieces = sorted(
        ((lo, hi, band) for band in rules.bands if day_type in band.day_types for lo, hi in band.pieces()),
        key=lambda piece: piece[0],
    )
    for lo, hi, band in pieces:
        yield band, lo, _local(day, lo, tz), _local(day, hi, tz)


def occurrences(tariff: Tariff, rules: PricingRules, start: datetime, end: datetime) -> list[Occurrence]:
    """Return the band occurrences that overlap [start, end), in time order.

    Each local date uses the bands of its own day type. Adjacent pieces of the same band are
    one occurrence unless the later piece begins at the band's own start time (so a night band
    21:00-07:00 is one occurrence across midnight, and a 00:00-24:00 band starts anew each day).
    """
    tz = tariff.zoneinfo
    first = datetime.combine(start.astimezone(tz).date() - ONE_DAY, time())
    last = end.astimezone(tz).date()
    found: list[Occurrence] = []
    day = first
    while day.date() <= last:
        for band, lo, piece_start, piece_end in _day_pieces(tariff, rules, day, tz):
            previous = found[-1] if found else None
            if (
                previous is not None
                and previous.band == band
                and previous.end == piece_start
                and lo != band.start_min
            ):
                found[-1] = Occurrence(band, previous.start, piece_end)
            else:
                found.append(Occurrence(band, piece_start, piece_end))
        day += ONE_DAY
    return [o for o in found if o.end > start and o.start < end]


def segments(tariff: Tariff, rules: PricingRules, start: datetime, end: datetime) -> list[Segment]:
    """Return the non-empty parts of [start, end) in each band occurrence, in time order."""
    return [
        Segment(occ, max(start, occ.start), min(end, occ.end))
        for occ in occurrences(tariff, rules, start, end)
        if min(end, occ.end) > max(start, occ.start)
    ]
