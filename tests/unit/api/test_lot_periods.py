"""KPI periods on a zone's clock, and which occupancy view serves them."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from guidance_api.history_sql import HOURLY_SERIES, TIME_WEIGHTED_SERIES
from guidance_api.lot_periods import period_starts, series_for

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")


def test_hours_and_days_step_the_local_clock_from_midnight() -> None:
    """Two Shanghai days: 48 hours and the end, or the two midnights and the end."""
    hours = period_starts(date(2026, 11, 23), date(2026, 11, 25), "hour", SHANGHAI)
    assert (len(hours), hours[0], hours[-1]) == (
        49,
        datetime(2026, 11, 23, tzinfo=SHANGHAI),
        datetime(2026, 11, 25, tzinfo=SHANGHAI),
    )
    assert {b - a for a, b in pairwise(hours)} == {timedelta(hours=1)}
    days = period_starts(date(2026, 11, 23), date(2026, 11, 25), "day", SHANGHAI)
    assert days == [datetime(2026, 11, d, tzinfo=SHANGHAI) for d in (23, 24, 25)]


def test_a_day_across_a_clock_change_has_its_wall_clock_hours() -> None:
    """Berlin's 2026-10-25 lasts 25 hours; its bounds are its 24 wall-clock hours and both midnights."""
    [start, end] = period_starts(date(2026, 10, 25), date(2026, 10, 26), "day", BERLIN)
    assert end.timestamp() - start.timestamp() == timedelta(hours=25).total_seconds()  # real time
    hours = period_starts(date(2026, 10, 25), date(2026, 10, 26), "hour", BERLIN)
    assert [h.hour for h in hours[:-1]] == list(range(24))


@pytest.mark.parametrize(
    ("zone", "period", "series"),
    [
        (SHANGHAI, "hour", HOURLY_SERIES),
        (SHANGHAI, "day", HOURLY_SERIES),
        (BERLIN, "hour", HOURLY_SERIES),
        (ZoneInfo("UTC"), "day", HOURLY_SERIES),
        (KOLKATA, "hour", TIME_WEIGHTED_SERIES),  # +05:30: its hours are not UTC hours
        (KOLKATA, "day", TIME_WEIGHTED_SERIES),
    ],
)
def test_the_hourly_roll_up_serves_whole_utc_hours(zone: ZoneInfo, period: str, series: str) -> None:
    """Bounds on whole UTC hours read the hourly roll-up; any other bound needs the 5-minute view."""
    assert series_for(period_starts(date(2026, 3, 1), date(2026, 4, 1), period, zone)) == series


def test_the_two_series_differ_only_in_their_view() -> None:
    """One query, two sources: what the hourly roll-up answers is what the 5-minute view answers."""
    assert HOURLY_SERIES.replace("lot_occupancy_1h", "lot_occupancy_5m") == TIME_WEIGHTED_SERIES
    assert "lot_occupancy_5m" not in HOURLY_SERIES
