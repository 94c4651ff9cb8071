"""Sharing windows: examples, the tariffs' calendar, and a minute-by-minute check over any week."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing import load_example_tariffs
from parking_core.lots import LotCounts, lot_status
from parking_core.sharing import (
    EndTerms,
    SharingRule,
    may_enter_shared_lot,
    overstay_fee,
    overstay_units,
    owner_split,
    public_counts,
    reminder_due,
    reminder_text,
    shared_spaces_at,
    stretch_at,
    stretches,
    window_end_after,
    windows_between,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALENDAR = load_example_tariffs()["zz-zone1-on-street"]  # 2025 holidays and make-up working days
NIGHTS = SharingRule("nights", frozenset({"weekday"}), 19 * 60, 8 * 60, 120)
WEEKENDS = SharingRule("weekends", frozenset({"weekend", "holiday"}), 0, 24 * 60, 150)


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


def test_weekday_nights_and_weekends() -> None:
    """Monday 20:00 shares 120; Monday 12:00 nothing; Friday night runs to Saturday 08:00 then
    the weekend quota; Sunday ends at midnight, Monday 00:00-19:00 is private."""
    rules = [NIGHTS, WEEKENDS]
    monday = date(2025, 3, 3)
    day_type = CALENDAR.day_type
    assert shared_spaces_at(rules, local(monday, 20), SHANGHAI, day_type) == 120
    assert shared_spaces_at(rules, local(monday, 12), SHANGHAI, day_type) == 0
    friday, saturday = date(2025, 3, 7), date(2025, 3, 8)
    assert shared_spaces_at(rules, local(saturday, 7), SHANGHAI, day_type) == 150  # larger quota wins
    assert shared_spaces_at(rules, local(date(2025, 3, 10), 3), SHANGHAI, day_type) == 0
    windows = windows_between(rules, local(friday, 0), local(date(2025, 3, 10), 12), SHANGHAI, day_type)
    assert [(w.start, w.end, w.spaces) for w in windows] == [
        (local(friday, 0), local(friday, 8), 120),  # Thursday night
        (local(friday, 19), local(saturday, 0), 120),
        (local(saturday, 0), local(date(2025, 3, 10), 0), 150),
    ]


def test_holidays_and_make_up_working_days_follow_the_tariff_calendar() -> None:
    """National Day (a Wednesday) is shared all day; the make-up Sunday before it is a weekday."""
    day_type = CALENDAR.day_type
    rules = [NIGHTS, WEEKENDS]
    assert shared_spaces_at(rules, local(date(2025, 10, 1), 12), SHANGHAI, day_type) == 150
    assert shared_spaces_at(rules, local(date(2025, 9, 28), 12), SHANGHAI, day_type) == 0
    assert shared_spaces_at(rules, local(date(2025, 9, 28), 20), SHANGHAI, day_type) == 120


def test_a_car_must_leave_when_the_shared_time_ends() -> None:
    """The end of the shared stretch covering an instant, across chained windows."""
    end = window_end_after([NIGHTS, WEEKENDS], local(date(2025, 3, 7), 20), SHANGHAI, CALENDAR.day_type)
    assert end == local(date(2025, 3, 10), 0)
    assert window_end_after([NIGHTS], local(date(2025, 3, 3), 12), SHANGHAI, CALENDAR.day_type) is None


def test_public_view_of_a_shared_lot() -> None:
    """Outside its windows a shared lot is closed to the public (never full); inside it shows the quota."""
    counts = LotCounts(200, free=150, occupied=50)
    view, closed = public_counts(counts, 0)
    assert closed
    assert lot_status(view, closed=closed).value == "closed"
    view, closed = public_counts(counts, 120)
    assert (view.capacity, view.free, closed) == (120, 120, False)
    view, _ = public_counts(LotCounts(200, free=10, occupied=190), 120)
    assert (view.free, view.occupied) == (10, 110)
    assert public_counts(counts, None) == (counts, False)
    assert may_enter_shared_lot("豫A1", frozenset({"豫A1"}), 0)
    assert not may_enter_shared_lot("豫A2", frozenset({"豫A1"}), 0)


def test_overstay_and_reminders() -> None:
    """Every started hour after the end costs the unit fee; the reminder comes in the last minutes."""
    end = local(date(2025, 3, 4), 8)
    hour = timedelta(hours=1)
    assert overstay_fee(end, end, hour, 500) == 0
    assert overstay_fee(end, end + timedelta(minutes=1), hour, 500) == 500
    assert overstay_fee(end, end + timedelta(minutes=61), hour, 500) == 1000
    assert reminder_due(end, end - timedelta(minutes=10), timedelta(minutes=30))
    assert not reminder_due(end, end, timedelta(minutes=30))


def test_the_reminder_names_the_end_and_the_surcharge() -> None:
    """The lot's local clock; the surcharge only when the owner set one."""
    end = local(date(2025, 3, 4), 8)
    priced = EndTerms(timedelta(minutes=30), timedelta(minutes=60), 500)
    assert (
        reminder_text(end, SHANGHAI, priced)
        == "共享停车时段将于 08:00 结束，请按时驶离；超时每60分钟加收¥5.00"
    )
    assert reminder_text(end, SHANGHAI, EndTerms()) == "共享停车时段将于 08:00 结束，请按时驶离"
    assert overstay_units(end, end + timedelta(minutes=121), timedelta(hours=1)) == 3
    assert overstay_units(end, end - timedelta(minutes=5), timedelta(hours=1)) == 0
    with pytest.raises(ValueError, match="overstay_unit"):
        EndTerms(overstay_unit=timedelta(0))
    with pytest.raises(ValueError, match="fee"):
        EndTerms(overstay_unit_fee_fen=-1)


def test_chained_windows_make_one_stretch() -> None:
    """Friday night (120) runs into the weekend (150): one stretch to Monday 00:00, at the smaller quota."""
    friday = date(2025, 3, 7)
    windows = windows_between(
        [NIGHTS, WEEKENDS], local(friday, 12), local(date(2025, 3, 11), 0), SHANGHAI, CALENDAR.day_type
    )
    chained = stretches(windows)
    assert [(s.start, s.end, s.spaces) for s in chained] == [
        (local(friday, 19), local(date(2025, 3, 10), 0), 120),
        (local(date(2025, 3, 10), 19), local(date(2025, 3, 11), 0), 120),
    ]
    assert stretch_at(chained, local(date(2025, 3, 8), 12)) == chained[0]
    assert stretch_at(chained, local(friday, 18)) is None
    assert stretch_at(chained, local(date(2025, 3, 10), 0)) is None  # the end is not inside


@st.composite
def rules(draw: st.DrawFn) -> list[SharingRule]:
    """A few rules with any day types, times (on a 30-minute grid, wrapping or not) and quotas."""
    found = []
    for i in range(draw(st.integers(0, 3))):
        kinds = draw(st.sets(st.sampled_from(["weekday", "weekend", "holiday"]), min_size=1))
        start = draw(st.integers(0, 47)) * 30
        end = draw(st.integers(1, 48)) * 30
        found.append(SharingRule(f"r{i}", frozenset(kinds), start, end, draw(st.integers(0, 300))))
    return found


def minute_by_minute(rule_list: list[SharingRule], at: datetime) -> int:
    """Independent evaluation: the quota of one minute from its local clock and the two dates' types."""
    clock = at.astimezone(SHANGHAI)
    minute = clock.hour * 60 + clock.minute
    today, yesterday = CALENDAR.day_type(clock.date()), CALENDAR.day_type(clock.date() - timedelta(days=1))
    best = 0
    for r in rule_list:
        wraps = r.end_min <= r.start_min
        on_today = today in r.day_types and r.start_min <= minute < (1440 if wraps else r.end_min)
        from_yesterday = wraps and yesterday in r.day_types and minute < r.end_min
        if on_today or from_yesterday:
            best = max(best, r.spaces)
    return best


@settings(max_examples=60, deadline=None)
@given(rule_list=rules(), first=st.dates(date(2025, 1, 1), date(2025, 12, 24)))
def test_windows_over_a_week_match_a_minute_by_minute_evaluation(
    rule_list: list[SharingRule], first: date
) -> None:
    """Over any week of 2025 (holidays and make-up days included), every minute's quota from the
    windows equals the independent per-minute evaluation, and the windows are ordered and disjoint."""
    start = local(first, 0)
    end = start + timedelta(days=7)
    windows = windows_between(rule_list, start, end, SHANGHAI, CALENDAR.day_type)
    assert all(a.end <= b.start for a, b in itertools.pairwise(windows))
    index, at = 0, start
    while at < end:
        while index < len(windows) and windows[index].end <= at:
            index += 1
        inside = index < len(windows) and windows[index].start <= at
        assert (windows[index].spaces if inside else 0) == minute_by_minute(rule_list, at), at
        at += timedelta(minutes=30)  # rule bounds sit on the 30-minute grid: one check per step
    probe = start + timedelta(hours=37, minutes=15)
    assert shared_spaces_at(rule_list, probe, SHANGHAI, CALENDAR.day_type) == minute_by_minute(
        rule_list, probe
    )


@settings(max_examples=60, deadline=None)
@given(
    rule_list=rules(),
    first=st.dates(date(2025, 1, 1), date(2025, 12, 20)),
    offset_min=st.integers(0, 7 * 24 * 60 - 1),
)
def test_the_end_of_the_shared_time_matches_a_minute_by_minute_walk(
    rule_list: list[SharingRule], first: date, offset_min: int
) -> None:
    """From any instant of a week, the window end a parked car must leave by is the first minute
    the independent evaluation says is private (None when the instant itself is private)."""
    at = local(first, 0) + timedelta(minutes=offset_min)
    end = window_end_after(rule_list, at, SHANGHAI, CALENDAR.day_type)
    if minute_by_minute(rule_list, at) == 0:
        assert end is None
        return
    walk = at.replace(second=0, microsecond=0)
    limit = at + timedelta(days=8)
    while walk < limit and minute_by_minute(rule_list, walk) > 0:
        walk += timedelta(minutes=30 - walk.minute % 30)  # bounds sit on the 30-minute grid
    assert end == min(walk, limit), (at, end, walk)


@given(total=st.integers(0, 10**9), percent=st.integers(0, 100))
def test_the_owners_split_adds_up_to_the_fen(total: int, percent: int) -> None:
    """Owner and operator parts add up to the total exactly; the owner's part is within half a fen."""
    owner, operator = owner_split(total, percent)
    assert owner + operator == total
    assert 0 <= owner <= total
    assert abs(owner * 100 - total * percent) <= 50


def test_split_examples() -> None:
    """60 % of ¥10.05 is ¥6.03; 50 % of 1 fen rounds half up to the owner."""
    assert owner_split(1005, 60) == (603, 402)
    assert owner_split(1, 50) == (1, 0)
