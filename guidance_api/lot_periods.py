"""Occupancy per lot and period (hours, days) on a zone's clock, from the time-weighted series."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from guidance_api.history_sql import HOURLY_SERIES, TIME_WEIGHTED_SERIES
from parking_core.lots import DEFAULT_TIME_ZONE
from parking_core.time_weight import SOURCE_OFFLINE, is_source_offline

PERIODS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
DEFAULT_ZONE = DEFAULT_TIME_ZONE  # CONTRACT.md: the lot time zone when none is set
HOUR_S = 3600


@dataclass
class Tally:
    """Sums of one period over the lots that reported in it."""

    start: datetime
    end: datetime
    occupied_us: float = 0.0  # occupied spots × microseconds
    capacity_us: float = 0.0  # capacity × microseconds
    occupied: float = 0.0  # the lots' time-weighted occupied spots, summed
    capacity: float = 0.0
    reporting: int = 0
    offline: int = 0
    samples: int = 0

    def add_lot(self, row: Any) -> None:
        """Count one lot's row of TIME_WEIGHTED_SERIES."""
        occupied, capacity, covered = (
            float(row["occupied_avg"]),
            float(row["capacity_avg"]),
            row["covered_us"],
        )
        self.occupied_us += occupied * covered
        self.capacity_us += capacity * covered
        self.occupied += occupied
        self.capacity += capacity
        self.reporting += 1
        self.samples += int(row["samples"])

    def add(self, other: Tally) -> None:
        """Add *other*'s sums into this tally (the same period of lots in another zone)."""
        self.occupied_us += other.occupied_us
        self.capacity_us += other.capacity_us
        self.occupied += other.occupied
        self.capacity += other.capacity
        self.reporting += other.reporting
        self.offline += other.offline
        self.samples += other.samples

    @property
    def online(self) -> bool:
        """Tell whether any lot reported in this period."""
        return self.reporting > 0 and self.capacity_us > 0

    def percent(self) -> float:
        """Return occupied time over capacity time in percent, or -1 when no lot reported."""
        return round(100 * self.occupied_us / self.capacity_us, 1) if self.online else SOURCE_OFFLINE

    def view(self) -> dict[str, Any]:
        """Return the JSON of this period."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "occupancy_percent": self.percent(),
            "source_offline": not self.online,
            "occupied_avg": round(self.occupied, 2),
            "capacity_avg": round(self.capacity, 2),
            "lots_reporting": self.reporting,
            "lots_offline": self.offline,
            "samples": self.samples,
        }


def period_starts(first: date, last: date, period: str, zone: ZoneInfo) -> list[datetime]:
    """Return the local starts of the periods of days [first, last), and the end, in *zone*.

    Hours and days alike step the local wall clock from midnight: a day across a daylight-saving
    change lasts 23 or 25 hours, and its hours are its wall-clock hours.
    """
    step = PERIODS[period]
    start, end = datetime.combine(first, time(0)), datetime.combine(last, time(0))
    return [(start + n * step).replace(tzinfo=zone) for n in range((end - start) // step + 1)]


def series_for(bounds: Sequence[datetime]) -> str:
    """Return the series query for periods with *bounds*: the hourly roll-up when every bound is a whole
    UTC hour (hours and days of a zone whose offset is whole hours), else the 5-minute view.
    """
    if all(bound.timestamp() % HOUR_S == 0 for bound in bounds):
        return HOURLY_SERIES
    return TIME_WEIGHTED_SERIES


def zone_of(name: str) -> ZoneInfo:
    """Return the lot's zone; an unknown name (not accepted at provisioning) falls back to the default."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


@dataclass(frozen=True)
class Periods:
    """The periods asked for, on one zone's clock: their bounds (starts and the end), up to now."""

    bounds: list[datetime]
    width: timedelta
    now: datetime


async def lot_tallies(
    pool: asyncpg.Pool, lot_ids: list[str], zone: ZoneInfo, periods: Periods
) -> dict[str, dict[datetime, Tally]]:
    """Return each lot's tally (of *lot_ids*, all in *zone*) per period, up to now."""
    bounds, now = periods.bounds, periods.now
    rows = await pool.fetch(
        series_for(bounds), lot_ids, bounds[0], min(bounds[-1], now), periods.width, zone.key
    )
    found = {(r["lot_id"], r["bucket_start"]): r for r in rows}
    tallies: dict[str, dict[datetime, Tally]] = {lot_id: {} for lot_id in lot_ids}
    for start, stop in pairwise(bounds):
        if start >= now:
            break
        span = min(stop, now) - start
        for lot_id in lot_ids:
            tally = tallies[lot_id][start] = Tally(start, stop)
            row = found.get((lot_id, start))
            covered = timedelta(microseconds=row["covered_us"]) if row else timedelta(0)
            unknown = float(row["unknown_avg"]) if row else 0.0
            capacity = float(row["capacity_avg"]) if row else 0.0
            if row is None or is_source_offline(covered, span, unknown, capacity):
                tally.offline += 1
                continue
            tally.add_lot(row)
    return tallies


def combined(per_lot: dict[str, dict[datetime, Tally]]) -> dict[datetime, Tally]:
    """Return the tallies of several lots added up per period."""
    out: dict[datetime, Tally] = {}
    for tallies in per_lot.values():
        for start, tally in tallies.items():
            out.setdefault(start, Tally(tally.start, tally.end)).add(tally)
    return out
