"""Holds: request policy, life cycle, sensor verdicts, and never more holds than spaces (Hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parking_core.errors import HoldRequestError, HoldStateError, NoRoomError, SpotNotFreeError
from parking_core.ids import LotId, SpotId, ZoneId
from parking_core.lots import LotCounts
from parking_core.occupancy import ChangeCause, Spot, SpotStatus, close_spot, hold_spot, release_spot
from parking_core.reservations import (
    ArrivalEvidence,
    ArrivalWindow,
    HoldPolicy,
    HoldStatus,
    LotBook,
    SensorVerdict,
    has_room,
    is_late_cancellation,
    new_hold,
    sensor_verdict,
    take_room,
)

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
LOT = LotId("l1")
POLICY = HoldPolicy()


def window(start_min: int, length_min: int = 30) -> ArrivalWindow:
    start = T0 + timedelta(minutes=start_min)
    return ArrivalWindow(start, start + timedelta(minutes=length_min))


def test_a_request_is_refused_naming_the_field() -> None:
    """Empty, past, too long and too far ahead windows are refused, each naming its field."""
    cases = [
        (ArrivalWindow(T0, T0), "arrival_to"),
        (window(-60), "arrival_to"),
        (window(0, 3 * 60), "arrival_to"),
        (window(25 * 60), "arrival_from"),
    ]
    for bad, name in cases:
        with pytest.raises(HoldRequestError) as caught:
            new_hold("r1", LOT, "豫A12345", bad, now=T0, policy=POLICY)
        assert caught.value.field == name


def test_the_deadline_is_the_window_end_plus_grace() -> None:
    """A hold keeps its space until the end of the window plus the lot's grace."""
    hold = new_hold("r1", LOT, "豫A12345", window(10), now=T0, policy=POLICY)
    assert hold.deadline == T0 + timedelta(minutes=40) + POLICY.grace
    with pytest.raises(HoldStateError):
        hold.expire(hold.deadline - timedelta(seconds=1))
    assert hold.expire(hold.deadline).status is HoldStatus.NO_SHOW


def test_an_ended_hold_refuses_every_move_by_name() -> None:
    """Cancelling an arrival (or arriving after a cancellation) raises HoldStateError."""
    hold = new_hold("r1", LOT, "豫A12345", window(10), now=T0, policy=POLICY).arrive(T0, ArrivalEvidence.GATE)
    with pytest.raises(HoldStateError, match="arrived: cannot cancel"):
        hold.cancel(T0)


def test_cancelling_is_free_until_the_cut_off() -> None:
    """The cut-off is measured back from the window's start."""
    hold = new_hold("r1", LOT, "豫A12345", window(60), now=T0, policy=POLICY)
    assert not is_late_cancellation(hold, T0 + timedelta(minutes=30), POLICY)
    assert is_late_cancellation(hold, T0 + timedelta(minutes=31), POLICY)


def test_sensor_verdicts() -> None:
    """The held plate or an unknown plate is an arrival; another plate took the space."""
    hold = new_hold("r1", LOT, "豫A12345", window(10), now=T0, policy=POLICY)
    assert sensor_verdict(hold, None) is SensorVerdict.ARRIVED
    assert sensor_verdict(hold, "豫A12345") is SensorVerdict.ARRIVED
    assert sensor_verdict(hold, "豫B99999") is SensorVerdict.TAKEN_BY_OTHER
    assert sensor_verdict(hold.cancel(T0), None) is SensorVerdict.IGNORED


def test_spot_transitions_of_holds_and_closures() -> None:
    """Only a free spot is held; a held spot is not closed; releasing goes back to the sensor."""
    free = Spot(SpotId("s1"), LOT, SpotStatus.FREE, occupied=False)
    held, events = hold_spot(free, T0)
    assert held.status is SpotStatus.RESERVED
    assert events[0].cause is ChangeCause.RESERVATION
    with pytest.raises(SpotNotFreeError):
        hold_spot(held, T0)
    with pytest.raises(SpotNotFreeError):
        close_spot(held, T0)
    back, _ = release_spot(held, T0, sensor_online=True, cause=ChangeCause.RESERVATION)
    assert back.status is SpotStatus.FREE
    silent, _ = release_spot(held, T0, sensor_online=False, cause=ChangeCause.RESERVATION)
    assert silent.status is SpotStatus.UNKNOWN
    closed, events = close_spot(Spot(SpotId("s2"), LOT, SpotStatus.OCCUPIED, occupied=True), T0)
    assert closed.status is SpotStatus.CLOSED
    assert events[0].cause is ChangeCause.ADMIN


def test_a_lot_without_spots_holds_only_free_room() -> None:
    """Counted lots: a hold moves one space from free to reserved; none when nothing is free."""
    counts = take_room(LotCounts(2, free=1, occupied=1))
    assert counts == LotCounts(2, free=0, occupied=1, reserved=1)
    assert not has_room(counts)
    with pytest.raises(NoRoomError):
        take_room(counts)


def test_a_zone_or_a_spot_is_honoured() -> None:
    """A hold asking for a zone gets a spot of it; asking for a taken spot gets none."""
    spots = {SpotId(f"s{i}"): Spot(SpotId(f"s{i}"), LOT, SpotStatus.FREE, occupied=False) for i in range(3)}
    book = LotBook(LOT, spots, {SpotId("s2"): ZoneId("z")})
    placed = book.hold(new_hold("r1", LOT, "豫A1", window(5), now=T0, policy=POLICY, zone_id=ZoneId("z")), T0)
    assert placed.spot_id == "s2"
    with pytest.raises(NoRoomError):
        book.hold(new_hold("r2", LOT, "豫A2", window(5), now=T0, policy=POLICY, spot_id=SpotId("s2")), T0)


OPS = st.lists(
    st.tuples(
        st.sampled_from(["hold", "cancel", "arrive", "expire", "reading", "close"]),
        st.integers(0, 30),  # which hold / spot
        st.integers(1, 20),  # minutes the clock moves
    ),
    max_size=60,
)


@settings(max_examples=300)
@given(ops=OPS, size=st.integers(1, 6))
def test_holds_never_exceed_the_spaces(ops: list[tuple[str, int, int]], size: int) -> None:
    """Any sequence of holds, cancellations, arrivals, expiries, readings and closures keeps holds
    within the free spaces they took: distinct spots, each reserved, counts consistent."""
    spots = {
        SpotId(f"s{i}"): Spot(SpotId(f"s{i}"), LOT, SpotStatus.FREE, occupied=False) for i in range(size)
    }
    book = LotBook(LOT, spots)
    counts = LotCounts(size, free=size)
    now, made = T0, 0
    for op, n, minutes in ops:
        now += timedelta(minutes=minutes)
        ids = sorted(book.holds)
        if op == "hold":
            try:
                wanted = ArrivalWindow(now, now + timedelta(minutes=60))
                book.hold(new_hold(f"r{made}", LOT, f"豫A{made}", wanted, now=now, policy=POLICY), now)
            except NoRoomError:
                assert not any(s.status is SpotStatus.FREE for s in book.spots.values())
            made += 1
        elif op in {"cancel", "arrive"} and ids:
            hold = book.holds[ids[n % len(ids)]]
            if hold.is_held:
                (
                    book.cancel(hold.reservation_id, now)
                    if op == "cancel"
                    else book.arrive(hold.reservation_id, now, ArrivalEvidence.SENSOR)
                )
        elif op == "expire":
            book.expire(now)
            assert all(h.deadline > now for h in book.active())
        elif op == "close":
            spot = book.spots[SpotId(f"s{n % size}")]
            if spot.status is not SpotStatus.RESERVED:
                book._set(*close_spot(spot, now))
        active = book.active()
        held_spots = [h.spot_id for h in active]
        assert len(held_spots) == len(set(held_spots)) <= size
        assert all(book.spots[s].status is SpotStatus.RESERVED for s in held_spots if s is not None)
        reserved = [s for s in book.spots.values() if s.status is SpotStatus.RESERVED]
        assert len(reserved) == len(active)
    for event in book.events:
        counts = counts.apply(event)
    assert counts.is_consistent()
    assert counts.reserved == len(book.active())
