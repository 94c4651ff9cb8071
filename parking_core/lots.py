"""A lot's live counts and the one rule that turns them into its availability status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from parking_core.occupancy import SpotStatus, SpotStatusChanged

# CONTRACT.md: a lot's clock times and tariffs are read in its time zone, this one unless it says.
DEFAULT_TIME_ZONE = "Asia/Shanghai"


class LotStatus(StrEnum):
    """What a lot's availability says, per CONTRACT.md."""

    OPEN = "open"
    ALMOST_FULL = "almost_full"
    FULL = "full"
    CLOSED = "closed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class LotCounts:
    """A lot's live counters (``lots.*_count``)."""

    capacity: int
    free: int = 0
    occupied: int = 0
    reserved: int = 0
    unknown: int = 0
    closed: int = 0

    def apply(self, event: SpotStatusChanged) -> LotCounts:
        """Return the counts after one spot status change."""
        values = {status: getattr(self, status.value) for status in SpotStatus}
        values[event.previous] -= 1
        values[event.status] += 1
        return LotCounts(self.capacity, **{s.value: n for s, n in values.items()})

    def is_consistent(self) -> bool:
        """Tell whether the counts satisfy the ``lot_counts_in_range`` constraint."""
        parts = (self.free, self.occupied, self.reserved, self.unknown, self.closed)
        return all(0 <= n <= self.capacity for n in parts) and sum(parts) <= self.capacity


# A lot reads almost_full when fewer than this share of its capacity is free (guidance signs
# switch colour there; 10 % is the usual threshold of Chinese guidance-sign standards).
ALMOST_FULL_FREE_RATIO = 0.10


# More than this share of a lot's spots unknown and its free count is not to be trusted: the lot
# reads ``unknown`` and its occupancy history -1 (CDS metrics' "source offline").
UNKNOWN_MAJORITY = 0.5


def is_mostly_unknown(unknown: float, capacity: float) -> bool:
    """Tell whether a lot (or a time bucket's average) has too many unknown spots to count."""
    return capacity <= 0 or unknown > capacity * UNKNOWN_MAJORITY


def lot_status(counts: LotCounts, closed: bool = False) -> LotStatus:
    """Return the availability status of a lot from its counts (rules in docs/gateway.md)."""
    if closed or (counts.capacity > 0 and counts.closed >= counts.capacity):
        return LotStatus.CLOSED
    if is_mostly_unknown(counts.unknown, counts.capacity):
        return LotStatus.UNKNOWN  # most spots unknown: the count says little
    if counts.free <= 0:
        return LotStatus.FULL
    if counts.free < counts.capacity * ALMOST_FULL_FREE_RATIO:
        return LotStatus.ALMOST_FULL
    return LotStatus.OPEN
