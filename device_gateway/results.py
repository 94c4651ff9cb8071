"""What the gateway's store returns: lot rows for availability, batch and sweep results."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import datetime


@dataclass(frozen=True, slots=True)
class LotRow:
    """A lot's counters after a change, for availability publishing."""

    lot_id: str
    capacity: int
    free: int
    occupied: int
    reserved: int
    unknown: int
    closed: int
    lot_closed: bool
    updated_at: datetime
    shared_spaces: int | None = None  # a shared lot's public quota now (parking_core.sharing)


@dataclass
class BatchResult:
    """What one committed batch did."""

    accepted: int = 0
    duplicates: int = 0
    status_changes: int = 0
    presence: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    lots: list[LotRow] = field(default_factory=list)

    def merge(self, other: BatchResult) -> BatchResult:
        """Return what this batch and *other* did together: every field adds up (lots concatenate).

        Written over the dataclass fields, so a field added later cannot be forgotten here.
        """
        return BatchResult(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})


@dataclass
class SweepResult:
    """What one liveness sweep did."""

    devices_offline: int = 0
    spots_unknown: int = 0
    lots: list[LotRow] = field(default_factory=list)
