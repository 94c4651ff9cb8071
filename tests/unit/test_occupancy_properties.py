"""Hypothesis properties: any order and duplication of the same readings ends in the same state."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from parking_core.ids import DeviceId, LotId, SpotId
from parking_core.liveness import DeviceStatus, Liveness, check_silence, observe
from parking_core.lots import LotCounts
from parking_core.occupancy import (
    Reading,
    Spot,
    SpotStatus,
    SpotStatusChanged,
    apply_reading,
    mark_comms_lost,
)

T0 = datetime(2026, 11, 23, tzinfo=UTC)
SPOT_IDS = [SpotId(f"s{i}") for i in range(3)]


@st.composite
def readings(draw: st.DrawFn) -> list[Reading]:
    """Distinct readings of a few spots (one device each), unique by (device, seq, ts)."""
    keys = draw(
        st.lists(
            st.tuples(st.integers(0, 2), st.integers(0, 20), st.integers(0, 50)), unique=True, max_size=30
        )
    )
    return [
        Reading(DeviceId(f"d{spot}"), SPOT_IDS[spot], seq, T0 + timedelta(seconds=secs), draw(st.booleans()))
        for spot, seq, secs in keys
    ]


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[list[Reading], list[Reading]]:
    """Readings, and the same readings delivered at least once each in any order."""
    original = draw(readings())
    repeated = original + draw(st.lists(st.sampled_from(original), max_size=20) if original else st.just([]))
    return original, draw(st.permutations(repeated))


def replay(
    stream: list[Reading],
) -> tuple[dict[SpotId, Spot], set[tuple[object, ...]], list[SpotStatusChanged]]:
    """Fold a stream through the rules as the gateway does: history is a set, state a fold."""
    spots = {s: Spot(s, LotId("l1")) for s in SPOT_IDS}
    history: set[tuple[object, ...]] = set()
    events: list[SpotStatusChanged] = []
    for reading in stream:
        if reading.identity in history:
            continue
        history.add(reading.identity)
        spots[reading.spot_id], new = apply_reading(spots[reading.spot_id], reading)
        events += new
    return spots, history, events


@given(deliveries())
def test_order_and_duplicates_do_not_matter(case: tuple[list[Reading], list[Reading]]) -> None:
    """Final state and history set are those of the readings applied once, in ts order.

    ``since`` is left out: it is when the current status was first seen, which depends on arrival.
    """
    original, shuffled = case
    in_order = sorted(original, key=lambda r: (r.ts, r.seq))
    got, got_history, _ = replay(shuffled)
    want, want_history, _ = replay(in_order)
    assert got_history == want_history
    assert {k: replace(v, since=None) for k, v in got.items()} == {
        k: replace(v, since=None) for k, v in want.items()
    }


@given(deliveries())
def test_the_newest_reading_decides(case: tuple[list[Reading], list[Reading]]) -> None:
    """Each spot's status is its newest reading's, or unknown if it has none."""
    original, shuffled = case
    spots, _, _ = replay(shuffled)
    for spot_id, spot in spots.items():
        mine = [r for r in original if r.spot_id == spot_id]
        if not mine:
            assert spot.status is SpotStatus.UNKNOWN
            continue
        newest = max(mine, key=lambda r: (r.ts, r.seq))
        assert spot.status is (SpotStatus.OCCUPIED if newest.occupied else SpotStatus.FREE)
        assert spot.last_key == newest.key


@given(deliveries())
def test_status_events_chain_and_keep_counts_consistent(
    case: tuple[list[Reading], list[Reading]],
) -> None:
    """Each event starts where the last one ended, and lot counts stay within capacity."""
    _, shuffled = case
    spots, _, events = replay(shuffled)
    counts = LotCounts(len(SPOT_IDS), unknown=len(SPOT_IDS))
    last: dict[SpotId, SpotStatus] = {}
    for event in events:
        assert event.previous == last.get(event.spot_id, SpotStatus.UNKNOWN)
        assert event.status != event.previous
        last[event.spot_id] = event.status
        counts = counts.apply(event)
        assert counts.is_consistent()
    for spot_id, spot in spots.items():
        assert last.get(spot_id, SpotStatus.UNKNOWN) == spot.status


@given(deliveries(), st.integers(0, 60))
def test_silence_is_undone_by_any_newer_reading(
    case: tuple[list[Reading], list[Reading]],
    cut: int,
) -> None:
    """Comms loss in the middle of a stream never changes which reading decides the end state."""
    original, shuffled = case
    spots = {s: Spot(s, LotId("l1")) for s in SPOT_IDS}
    for index, reading in enumerate(shuffled):
        if index == cut:
            spots = {k: mark_comms_lost(v, T0)[0] for k, v in spots.items()}
        spots[reading.spot_id], _ = apply_reading(spots[reading.spot_id], reading)
    expected = replay(original)[0]
    for spot_id, spot in spots.items():
        assert spot.occupied == expected[spot_id].occupied
        if spot.status is not SpotStatus.UNKNOWN:
            assert spot.status == expected[spot_id].status


@given(st.lists(st.integers(0, 3000), max_size=20), st.integers(1, 1000))
def test_a_device_is_offline_exactly_when_silent(gaps: list[int], window_s: int) -> None:
    """After any sequence of messages, offline means the last one is older than the window."""
    device = Liveness(DeviceId("d"), timedelta(seconds=window_s))
    now = T0
    for gap in gaps:
        now += timedelta(seconds=gap)
        device, _ = check_silence(device, now)
        device, events = observe(device, DeviceId("d"), now)
        assert device.status is DeviceStatus.ONLINE
        assert len(events) <= 1
    later = now + timedelta(seconds=window_s + 1)
    checked, events = check_silence(device, later)
    assert (checked.status is DeviceStatus.OFFLINE) == bool(gaps)
    assert len(events) == (1 if gaps else 0)
