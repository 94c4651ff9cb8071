"""Examples of the occupancy and liveness rules: newest reading wins, silence, lot status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from parking_core.errors import InvalidIdError, NaiveTimeError, WrongSpotError
from parking_core.ids import DeviceId, LotId, SpotId, device_id, lot_id, spot_id
from parking_core.liveness import (
    DeviceStatus,
    Liveness,
    PresenceEvent,
    check_silence,
    default_stale_after,
    observe,
)
from parking_core.lots import LotCounts, LotStatus, lot_status
from parking_core.occupancy import (
    ChangeCause,
    Reading,
    Spot,
    SpotStatus,
    apply_reading,
    mark_comms_lost,
    restore_comms,
)

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
SPOT = Spot(SpotId("s1"), LotId("l1"))
DEV = DeviceId("d1")


def reading(seq: int, minutes: float, occupied: bool) -> Reading:
    return Reading(DEV, SpotId("s1"), seq, T0 + timedelta(minutes=minutes), occupied)


def test_first_reading_decides_an_unknown_spot() -> None:
    """A first reading turns an unknown spot free or occupied, with one event."""
    spot, events = apply_reading(SPOT, reading(1, 0, occupied=True))
    assert spot.status is SpotStatus.OCCUPIED
    assert spot.since == T0
    assert [(e.previous, e.status, e.cause) for e in events] == [
        (SpotStatus.UNKNOWN, SpotStatus.OCCUPIED, ChangeCause.READING)
    ]


def test_an_older_reading_goes_to_history_only() -> None:
    """A late reading does not override newer state."""
    spot, _ = apply_reading(SPOT, reading(2, 5, occupied=False))
    later, events = apply_reading(spot, reading(1, 0, occupied=True))
    assert later == spot
    assert events == []


def test_a_duplicate_changes_nothing() -> None:
    """The same (device, seq, ts) twice is applied once."""
    spot, _ = apply_reading(SPOT, reading(1, 0, occupied=True))
    assert apply_reading(spot, reading(1, 0, occupied=True)) == (spot, [])


def test_a_reading_for_another_spot_is_refused() -> None:
    """Applying a reading to the wrong spot is a programming error."""
    other = Reading(DEV, SpotId("s2"), 1, T0, occupied=True)
    with pytest.raises(WrongSpotError):
        apply_reading(SPOT, other)


def test_naive_times_are_refused() -> None:
    """The domain refuses device times without an offset."""
    with pytest.raises(NaiveTimeError):
        Reading(DEV, SpotId("s1"), 1, datetime(2026, 1, 1), occupied=True)


def test_closed_spots_keep_their_status() -> None:
    """Readings update the last occupancy of a closed spot but not its status."""
    closed = Spot(SpotId("s1"), LotId("l1"), SpotStatus.CLOSED)
    spot, events = apply_reading(closed, reading(1, 0, occupied=True))
    assert (spot.status, spot.occupied, events) == (SpotStatus.CLOSED, True, [])


def test_silence_then_restore() -> None:
    """Silence makes a spot unknown; the next message restores the last reading."""
    spot, _ = apply_reading(SPOT, reading(1, 0, occupied=True))
    lost, events = mark_comms_lost(spot, T0 + timedelta(hours=1))
    assert lost.status is SpotStatus.UNKNOWN
    assert lost.occupied is True
    assert [e.cause for e in events] == [ChangeCause.COMMS_LOST]
    back, events = restore_comms(lost, T0 + timedelta(hours=2), DEV)
    assert back.status is SpotStatus.OCCUPIED
    assert [e.previous for e in events] == [SpotStatus.UNKNOWN]


def test_liveness_window() -> None:
    """A device is offline only after its window, and comes back with its next message."""
    window = default_stale_after(timedelta(seconds=600))
    assert window == timedelta(seconds=1260)
    device, _ = observe(Liveness(DEV, window), DEV, T0)
    assert device.status is DeviceStatus.ONLINE
    assert check_silence(device, T0 + window) == (device, [])
    offline, events = check_silence(device, T0 + window + timedelta(seconds=1))
    assert offline.status is DeviceStatus.OFFLINE
    assert [e.event for e in events] == [PresenceEvent.COMMS_LOST]
    assert check_silence(offline, T0 + 2 * window)[1] == []
    online, events = observe(offline, DEV, T0 + 2 * window)
    assert online.status is DeviceStatus.ONLINE
    assert [e.event for e in events] == [PresenceEvent.COMMS_RESTORED]


@pytest.mark.parametrize(
    ("counts", "closed", "expected"),
    [
        (LotCounts(100, free=50, occupied=50), False, LotStatus.OPEN),
        (LotCounts(100, free=9, occupied=91), False, LotStatus.ALMOST_FULL),
        (LotCounts(100, free=10, occupied=90), False, LotStatus.OPEN),
        (LotCounts(100, free=0, occupied=100), False, LotStatus.FULL),
        (LotCounts(100, free=0, occupied=40, unknown=60), False, LotStatus.UNKNOWN),
        (LotCounts(100, free=50, occupied=50), True, LotStatus.CLOSED),
        (LotCounts(10, closed=10), False, LotStatus.CLOSED),
        (LotCounts(0), False, LotStatus.UNKNOWN),
    ],
)
def test_lot_status(counts: LotCounts, closed: bool, expected: LotStatus) -> None:
    """The availability status follows the documented thresholds."""
    assert lot_status(counts, closed=closed) is expected


def test_ids_are_checked() -> None:
    """Id constructors accept the contract's form and refuse anything else by name."""
    assert spot_id("a-1.b_2") == "a-1.b_2"
    assert device_id("x" * 64) == "x" * 64
    with pytest.raises(InvalidIdError, match="malformed lot id"):
        lot_id("bad id")
    with pytest.raises(InvalidIdError):
        device_id("")
