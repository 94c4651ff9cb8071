"""Forecast at arrival, pure: hand-computed cases."""

from __future__ import annotations

import math
from datetime import timedelta

from parking_core.forecast import (
    SHIFT_FADE,
    Forecast,
    Reference,
    forecast_free,
    reference_offsets,
    shift_weight,
)

TWO_HOURS = timedelta(hours=2)


def test_past_weeks_adjusted_to_today() -> None:
    """Weeks say 10 free now and 4, 6, 4, 6 at arrival; today 14 free: 5 + 4 × e^(-2/3) = 7.05."""
    refs = [Reference(a, 10) for a in (4, 6, 4, 6)]
    got = forecast_free(14, 20, refs, TWO_HOURS)
    expected = 5 + 4 * math.exp(-2 / 3)
    assert got is not None
    assert got.expected_free == round(expected, 1)
    half = 1.2816 * math.sqrt(4 / 3)  # sample standard deviation of 4, 6, 4, 6
    assert (got.low, got.high, got.weeks, got.basis) == (
        math.floor(expected - half),
        math.ceil(expected + half),
        4,
        "weeks",
    )


def test_the_shift_fades_with_the_horizon() -> None:
    """At once today's difference holds whole; after SHIFT_FADE, 1/e of it."""
    assert shift_weight(timedelta(0)) == 1
    assert math.isclose(shift_weight(SHIFT_FADE), math.exp(-1))
    refs = [Reference(5, 10)]
    now = forecast_free(14, 20, refs, timedelta(0))
    assert now is not None
    assert now.expected_free == 9  # the weeks' change from now to arrival (-5) added to today's 14


def test_without_history_the_count_now_is_carried() -> None:
    """No past weeks: the answer is the count now, an interval of zero width; no count either: none."""
    assert forecast_free(7, 20, [], TWO_HOURS) == Forecast(7.0, 7, 7, 0)
    assert forecast_free(None, 20, [], TWO_HOURS) is None


def test_silent_sensors_today_leave_the_weeks_alone() -> None:
    """No count now: the weeks' average at arrival, unshifted; the interval never leaves 0..capacity."""
    got = forecast_free(None, 10, [Reference(9, 2), Reference(10, 3)], TWO_HOURS)
    assert got is not None
    assert (got.expected_free, got.high, got.low) == (9.5, 10, 8)
    empty = forecast_free(0, 10, [Reference(0, 5)], TWO_HOURS)
    assert empty is not None
    assert (empty.expected_free, empty.low, empty.high) == (0, 0, 2)


def test_reference_weeks_are_whole_weeks_back() -> None:
    """The same weekday and time: 7, 14, 21, 28 days back."""
    assert reference_offsets() == [timedelta(days=d) for d in (7, 14, 21, 28)]
