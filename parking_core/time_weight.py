"""Occupancy weighted by time: a lot's samples as a step function, averaged over buckets of time."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction

from parking_core.errors import NaiveTimeError
from parking_core.lots import is_mostly_unknown

MICROSECOND = timedelta(microseconds=1)
SOURCE_OFFLINE = -1  # CDS Metrics' value of a period whose source was offline


@dataclass(frozen=True, slots=True, order=True)
class LotSample:
    """A lot's counts from ``at`` until the next sample (a ``lot_occupancy`` row).

    The field order is the tie-break of samples at the same instant: the larger counts come last.
    """

    at: datetime
    occupied: int
    free: int
    unknown: int
    capacity: int

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise NaiveTimeError("a lot sample's time")


@dataclass(slots=True)
class WeightedBucket:
    """Time-weighted averages of one bucket, over the part of it whose state is known."""

    start: datetime
    covered: timedelta = timedelta(0)
    samples: int = 0
    occupied_max: int | None = None
    free_min: int | None = None
    capacity_max: int | None = None
    _integrals: dict[str, Fraction] = field(default_factory=dict)

    def add_state(self, sample: LotSample, span: timedelta) -> None:
        """Count *sample*'s state for *span* of this bucket."""
        self.covered += span
        seconds = Fraction(span // MICROSECOND, 1_000_000)
        for name in ("occupied", "free", "unknown", "capacity"):
            self._integrals[name] = self._integrals.get(name, Fraction(0)) + getattr(sample, name) * seconds
        self.see(sample)

    def see(self, sample: LotSample) -> None:
        """Count *sample* in the bucket's extremes."""
        self.occupied_max = max(self.occupied_max or 0, sample.occupied)
        self.free_min = sample.free if self.free_min is None else min(self.free_min, sample.free)
        self.capacity_max = max(self.capacity_max or 0, sample.capacity)

    def average(self, name: str) -> Fraction:
        """Return the time-weighted average of ``occupied``, ``free``, ``unknown`` or ``capacity``."""
        return self._integrals[name] / Fraction(self.covered // MICROSECOND, 1_000_000)


@dataclass(frozen=True, slots=True)
class Buckets:
    """Buckets *width* wide, aligned to *origin* (like SQL's ``date_bin``)."""

    width: timedelta
    origin: datetime

    def start_of(self, at: datetime) -> datetime:
        """Return the start of the bucket that holds *at*."""
        return self.origin + ((at - self.origin) // self.width) * self.width

    def reached(self, start: datetime, end: datetime) -> list[datetime]:
        """Return the starts of the buckets that [start, end) reaches."""
        first, last = self.start_of(start), self.start_of(end - MICROSECOND)
        return [first + n * self.width for n in range((last - first) // self.width + 1)]


def time_weighted(
    samples: Iterable[LotSample], window: tuple[datetime, datetime], buckets: Buckets
) -> list[WeightedBucket]:
    """Return the buckets of [window) with time-weighted counts, oldest first.

    Each sample's state lasts until the next sample; the last one before the window is carried in
    as the state at its start; time before the first known state is not covered. Buckets without
    covered time are left out.
    """
    start, end = window
    ordered = sorted(samples)
    before = [s for s in ordered if s.at < start]
    inside = [s for s in ordered if start <= s.at < end]
    states: list[tuple[datetime, LotSample]] = [(start, before[-1])] if before else []
    states += [(s.at, s) for s in inside]
    found: dict[datetime, WeightedBucket] = {}
    for sample in inside:
        key = buckets.start_of(sample.at)
        bucket = found.setdefault(key, WeightedBucket(key))
        bucket.samples += 1
        bucket.see(sample)
    for index, (since, sample) in enumerate(states):
        until = states[index + 1][0] if index + 1 < len(states) else end
        if until <= since:
            continue
        for key in buckets.reached(since, until):
            span = min(key + buckets.width, until) - max(key, since)
            if span > timedelta(0):
                found.setdefault(key, WeightedBucket(key)).add_state(sample, span)
    return [found[key] for key in sorted(found) if found[key].covered > timedelta(0)]


def occupancy_fraction(bucket: WeightedBucket) -> Fraction:
    """Return occupied time over capacity time in *bucket* (0 when it had no capacity)."""
    capacity = bucket.average("capacity")
    return bucket.average("occupied") / capacity if capacity else Fraction(0)


def is_source_offline(covered: timedelta, span: timedelta, unknown_avg: float, capacity_avg: float) -> bool:
    """Tell whether a KPI period counts as "source offline" (CDS metrics' -1).

    It is when the lot's state is unknown for most of the period: less than half of it covered by a
    known state, or more than half its spots unknown on average over the covered part.
    """
    return covered * 2 < span or is_mostly_unknown(unknown_avg, capacity_avg)
