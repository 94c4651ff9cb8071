"""Time-weighted occupancy, pure: hand-computed buckets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest

from parking_core.errors import NaiveTimeError
from parking_core.time_weight import Buckets, LotSample, occupancy_fraction, time_weighted

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
FIVE = Buckets(timedelta(minutes=5), datetime(2000, 1, 1, tzinfo=UTC))


def at(seconds: float, occupied: int, capacity: int = 10) -> LotSample:
    """Return a sample *seconds* after T0 with no unknown spots."""
    return LotSample(T0 + timedelta(seconds=seconds), occupied, capacity - occupied, 0, capacity)


def test_the_issues_busy_minute_weighs_a_minute() -> None:
    """Full, then 5 spaces toggling every 0.5 s for 54 s: 2865 of 3000 space-seconds, 95.5 %."""
    toggles = [at(240 + 0.5 * k, 5 if k % 2 == 0 else 10) for k in range(108)]
    [bucket] = time_weighted([at(0, 10), at(120, 10), *toggles], (T0, T0 + timedelta(minutes=5)), FIVE)
    assert occupancy_fraction(bucket) == Fraction(955, 1000)
    assert (bucket.samples, bucket.covered, bucket.occupied_max, bucket.free_min) == (
        110,
        timedelta(minutes=5),
        10,
        0,
    )


def test_the_state_before_the_window_is_carried_in_and_runs_on() -> None:
    """4 from before the window, 8 from 120 s: (4×120 + 8×180) / 300; the next bucket is all 8."""
    first, second = time_weighted([at(-600, 4), at(120, 8)], (T0, T0 + timedelta(minutes=10)), FIVE)
    assert first.average("occupied") == Fraction(4 * 120 + 8 * 180, 300)
    assert (first.samples, second.samples, second.average("occupied")) == (1, 0, Fraction(8))


def test_time_before_the_first_known_state_is_not_covered() -> None:
    """Without a state before the window, a bucket averages over the part after its first sample."""
    [bucket] = time_weighted([at(60, 6)], (T0, T0 + timedelta(minutes=5)), FIVE)
    assert (bucket.covered, bucket.average("occupied")) == (timedelta(minutes=4), Fraction(6))


def test_no_samples_no_buckets_and_samples_after_the_window_are_ignored() -> None:
    """An empty history gives nothing; a sample at the window's end is outside it."""
    assert time_weighted([], (T0, T0 + timedelta(hours=1)), FIVE) == []
    assert time_weighted([at(300, 3)], (T0, T0 + timedelta(minutes=5)), FIVE) == []


def test_a_state_spanning_buckets_is_split_between_them() -> None:
    """A state from 4 minutes to 11 minutes lasts 1, 5 and 1 minutes in three buckets."""
    buckets = time_weighted([at(240, 2), at(660, 0)], (T0, T0 + timedelta(minutes=15)), FIVE)
    assert [(b.start - T0, b.covered) for b in buckets] == [
        (timedelta(0), timedelta(minutes=1)),
        (timedelta(minutes=5), timedelta(minutes=5)),
        (timedelta(minutes=10), timedelta(minutes=5)),
    ]
    assert [b.average("occupied") for b in buckets] == [2, 2, Fraction(2 * 60, 300)]


def test_a_naive_time_is_refused() -> None:
    """Samples carry an offset, like every time in the domain."""
    with pytest.raises(NaiveTimeError):
        LotSample(datetime(2026, 1, 1), 0, 0, 0, 0)
