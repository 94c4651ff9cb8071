"""Hypothesis strategies for gate streams: plate reads and passages at two gated lots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from parking_core.gates import Lane, Passage, PlateRead
from parking_core.ids import DeviceId, LotId

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
LOTS = (LotId("gl1"), LotId("gl2"))
CAPACITY = 3
PLATES = ("豫A12345", "豫A12340", "豫A1234D", "豫B88888", "京C55555")
GateMessage = PlateRead | Passage


def gate_device(lot: LotId, lane: Lane) -> DeviceId:
    """Return the id of a lot's entry or exit gate."""
    return DeviceId(f"{lot}-{lane.value}")


def lot_of(device: DeviceId) -> LotId:
    """Return the lot of a gate device named by gate_device."""
    return LotId(device.rsplit("-", 1)[0])


def price_by_hour(
    entry: datetime, exit_at: datetime, _plate: str, earlier: list[tuple[datetime, int]]
) -> tuple[int, list[tuple[datetime, int]]]:
    """A simple tariff for the model: 15 minutes free, then 300 fen per started hour, 1500 a day."""
    minutes = int((exit_at - entry).total_seconds()) // 60
    hours = 0 if minutes <= 15 else (minutes + 59) // 60
    room = max(0, 1500 - sum(amount for _, amount in earlier))
    amount = min(300 * hours, room)
    return amount, [(entry, amount)] if amount else []


@st.composite
def lot_stream(draw: st.DrawFn, lot: LotId) -> list[GateMessage]:
    """A lot's messages in time order: reads (some misread or unsure) and passages (some missing)."""
    messages: list[GateMessage] = []
    minute = 0
    seq = {Lane.ENTRY: 0, Lane.EXIT: 0}
    for _ in range(draw(st.integers(0, 12))):
        minute += draw(st.integers(0, 90))
        lane = draw(st.sampled_from(list(Lane)))
        device = gate_device(lot, lane)
        seq[lane] += 1
        ts = T0 + timedelta(minutes=minute)
        plate = draw(st.sampled_from(PLATES))
        confidence = draw(st.sampled_from([0.99, 0.95, 0.5]))
        messages.append(PlateRead(device, lot, seq[lane], ts, lane, plate, confidence=confidence))
        if draw(st.booleans()) or draw(st.booleans()):  # a passage three times in four
            seq[lane] += 1
            passed = ts + timedelta(seconds=draw(st.integers(1, 30)))
            messages.append(Passage(device, lot, seq[lane], passed, lane))
    return messages


@st.composite
def interleaved(draw: st.DrawFn) -> tuple[list[GateMessage], list[GateMessage]]:
    """Two lots' streams one after the other, and the same merged in any interleaving with repeats."""
    first, second = draw(lot_stream(LOTS[0])), draw(lot_stream(LOTS[1]))
    picks = draw(
        st.lists(st.booleans(), min_size=len(first) + len(second), max_size=len(first) + len(second))
    )
    merged: list[GateMessage] = []
    a, b = iter(first), iter(second)
    left, right = len(first), len(second)
    for pick in picks:
        if (pick and left) or not right:
            merged.append(next(a))
            left -= 1
        else:
            merged.append(next(b))
            right -= 1
    repeated: list[GateMessage] = []
    for message in merged:
        repeated.append(message)
        if draw(st.integers(0, 3)) == 0:
            repeated.append(message)  # redelivered at once
    if merged:
        late = draw(st.lists(st.integers(0, len(merged) - 1), max_size=5))
        repeated.extend(merged[index] for index in late)  # redelivered much later
    return first + second, repeated
