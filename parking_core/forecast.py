"""Free spaces expected at an arrival time: the same weekday and hour of past weeks, adjusted to today.

The baseline of HSL's parking predictions (and of ParkAPI's forecasts): what the lot held at the
same time of the same weekday in the last few weeks, shifted by how today differs from those weeks
right now. The shift fades with the horizon (a busy morning says more about the next hour than about
the evening). The interval spreads the weeks' values around the forecast.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

WEEK = timedelta(days=7)
REFERENCE_WEEKS = 4  # a month of the same weekday: enough to average, recent enough to still hold
# Each past week's value is the lot's time-weighted free count over this window around the instant:
# one instant is one draw of a noisy count, half an hour is the weekday's level at that time.
REFERENCE_WINDOW = timedelta(minutes=30)
# How fast today's difference from past weeks fades with the horizon, trained on simulated weeks by
# bench/forecast_bench.py (MAE on held-out days): e-folding time of the shift.
SHIFT_FADE = timedelta(hours=3)
INTERVAL_Z = 1.2816  # the 10th and 90th percentiles of a normal spread: an 80 % interval
MIN_SPREAD = 1.0  # spaces: even identical weeks do not promise the exact count


@dataclass(frozen=True, slots=True)
class Reference:
    """One past week: free spaces at the arrival's weekday and time, and at now's."""

    at_arrival: float
    at_now: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """Expected free spaces at arrival, an 80 % interval, and what it rests on."""

    expected_free: float
    low: int
    high: int
    weeks: int  # past weeks used; 0 means the answer is today's count carried forward

    @property
    def basis(self) -> str:
        """Return `weeks` when past weeks were used, `now` when only today's count was."""
        return "weeks" if self.weeks else "now"


def shift_weight(horizon: timedelta, fade: timedelta = SHIFT_FADE) -> float:
    """Return how much of today's difference from past weeks still holds after *horizon*."""
    return math.exp(-max(horizon, timedelta(0)) / fade)


def forecast_free(
    free_now: float | None,
    capacity: int,
    references: Sequence[Reference],
    horizon: timedelta,
    *,
    fade: timedelta = SHIFT_FADE,
) -> Forecast | None:
    """Return the free spaces expected *horizon* from now, from today's count and past weeks.

    Without past weeks, the count now is the forecast (an interval of zero width around it: nothing
    says how the lot changes); without a count now (sensors silent), past weeks alone; without
    either, nothing.
    """
    if not references:
        if free_now is None:
            return None
        now = min(max(round(free_now), 0), capacity)
        return Forecast(float(now), now, now, 0)
    baseline = statistics.fmean(r.at_arrival for r in references)
    usual_now = statistics.fmean(r.at_now for r in references)
    shift = 0.0 if free_now is None else free_now - usual_now
    expected = min(max(baseline + shift * shift_weight(horizon, fade), 0.0), float(capacity))
    spread = statistics.stdev(r.at_arrival for r in references) if len(references) > 1 else 0.0
    half = INTERVAL_Z * max(spread, MIN_SPREAD)
    low = min(max(math.floor(expected - half), 0), capacity)
    high = min(max(math.ceil(expected + half), 0), capacity)
    return Forecast(round(expected, 1), low, high, len(references))


def reference_offsets(weeks: int = REFERENCE_WEEKS) -> list[timedelta]:
    """Return how far back each reference week lies (one week, two weeks, ...)."""
    return [WEEK * k for k in range(1, weeks + 1)]
