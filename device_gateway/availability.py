"""Lot availability on ``lots/{lot_id}/availability`` as the public sees it: retained, rate-limited."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from device_gateway.messages import Availability
from device_gateway.results import LotRow
from parking_core.lots import LotCounts, lot_status
from parking_core.sharing import public_counts
from parking_core.topics import availability_topic


def availability_payload(row: LotRow) -> bytes:
    """Return the availability message of a lot."""
    counts = LotCounts(row.capacity, row.free, row.occupied, row.reserved, row.unknown, row.closed)
    public, closed_to_public = public_counts(counts, row.shared_spaces)
    status = lot_status(public, closed=row.lot_closed or closed_to_public)
    message = Availability(ts=row.updated_at, free=public.free, capacity=public.capacity, status=status)
    return message.model_dump_json().encode()


class AvailabilityPublisher:
    """Keeps the newest counts per lot and lets each lot publish at most once per interval."""

    def __init__(self, prefix: str, min_interval_s: float, publish: Callable[[str, bytes], None]) -> None:
        self._prefix = prefix
        self._min_interval_s = min_interval_s
        self._publish = publish
        self._pending: dict[str, LotRow] = {}
        self._last_sent: dict[str, float] = {}

    def update(self, rows: Iterable[LotRow]) -> None:
        """Remember the newest counts of lots that changed."""
        for row in rows:
            current = self._pending.get(row.lot_id)
            if current is None or row.updated_at >= current.updated_at:
                self._pending[row.lot_id] = row

    def flush_due(self, now: float, *, force: bool = False) -> int:
        """Publish every pending lot whose interval has passed (all if *force*); return how many."""
        sent = 0
        for lot_id in list(self._pending):
            last = self._last_sent.get(lot_id)
            if force or last is None or now - last >= self._min_interval_s:
                row = self._pending.pop(lot_id)
                self._publish(availability_topic(self._prefix, lot_id), availability_payload(row))
                self._last_sent[lot_id] = now
                sent += 1
        return sent

    @property
    def pending(self) -> int:
        """Return how many lots wait for their interval."""
        return len(self._pending)
