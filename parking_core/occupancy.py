"""Spot occupancy rules: newest reading wins, silence makes a spot unknown (lot counts: lots.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from parking_core.errors import NaiveTimeError, SpotNotFreeError, WrongSpotError
from parking_core.ids import DeviceId, LotId, SpotId


class SpotStatus(StrEnum):
    """What a spot is, per CONTRACT.md (FIWARE ParkingSpot values plus ``reserved``)."""

    FREE = "free"
    OCCUPIED = "occupied"
    RESERVED = "reserved"  # held by a reservation: readings do not override it
    CLOSED = "closed"  # closed by an operator: readings do not override it
    UNKNOWN = "unknown"  # no reading yet, or the sensor went quiet


class ChangeCause(StrEnum):
    """Why a spot's status changed (the ``spot_status_changes.cause`` vocabulary)."""

    READING = "reading"
    COMMS_LOST = "comms_lost"
    ADMIN = "admin"  # an operator closed or reopened the spot
    RESERVATION = "reservation"  # a hold took the spot, or released it


# Statuses that only people (operators, reservations) set; a sensor reading never overrides them.
HELD_STATUSES = frozenset({SpotStatus.RESERVED, SpotStatus.CLOSED})


@dataclass(frozen=True, slots=True, order=True)
class ReadingKey:
    """Orders readings of one spot: the device's ``ts``, then ``seq`` to break a tie."""

    ts: datetime
    seq: int


@dataclass(frozen=True, slots=True)
class Reading:
    """One accepted sensor reading (state or heartbeat), already bound to its spot."""

    device_id: DeviceId
    spot_id: SpotId
    seq: int
    ts: datetime
    occupied: bool

    def __post_init__(self) -> None:
        if self.ts.utcoffset() is None:
            raise NaiveTimeError("reading ts")

    @property
    def key(self) -> ReadingKey:
        """Return the key that decides which of two readings is newer."""
        return ReadingKey(self.ts, self.seq)

    @property
    def identity(self) -> tuple[DeviceId, int, datetime]:
        """Return what makes two deliveries the same reading: ``(device_id, seq, ts)``."""
        return (self.device_id, self.seq, self.ts)


@dataclass(frozen=True, slots=True)
class Spot:
    """The current state of one spot as the gateway keeps it."""

    spot_id: SpotId
    lot_id: LotId
    status: SpotStatus = SpotStatus.UNKNOWN
    since: datetime | None = None
    last_key: ReadingKey | None = None  # the reading that decided the status
    occupied: bool | None = None  # the last reading, kept when the spot turns unknown


@dataclass(frozen=True, slots=True)
class SpotStatusChanged:
    """Event: a spot's status changed."""

    spot_id: SpotId
    lot_id: LotId
    ts: datetime
    status: SpotStatus
    previous: SpotStatus
    cause: ChangeCause
    device_id: DeviceId | None = None


def status_for(occupied: bool) -> SpotStatus:
    """Return the status a sensor reading alone implies."""
    return SpotStatus.OCCUPIED if occupied else SpotStatus.FREE


def _changed(
    spot: Spot, status: SpotStatus, ts: datetime, cause: ChangeCause, device: DeviceId | None
) -> list[SpotStatusChanged]:
    if status is spot.status:
        return []
    return [SpotStatusChanged(spot.spot_id, spot.lot_id, ts, status, spot.status, cause, device)]


def apply_reading(spot: Spot, reading: Reading) -> tuple[Spot, list[SpotStatusChanged]]:
    """Return the spot after *reading*, and what changed; older or repeated readings change nothing."""
    if reading.spot_id != spot.spot_id:
        raise WrongSpotError(spot.spot_id, reading.spot_id)
    if spot.last_key is not None and reading.key <= spot.last_key:
        return spot, []  # late, reordered or duplicate delivery: history only
    new_status = spot.status if spot.status in HELD_STATUSES else status_for(reading.occupied)
    events = _changed(spot, new_status, reading.ts, ChangeCause.READING, reading.device_id)
    since = reading.ts if events else spot.since
    return replace(
        spot, status=new_status, since=since, last_key=reading.key, occupied=reading.occupied
    ), events


def mark_comms_lost(spot: Spot, now: datetime) -> tuple[Spot, list[SpotStatusChanged]]:
    """Return the spot once its sensor is found silent: free/occupied turns unknown."""
    if spot.status not in {SpotStatus.FREE, SpotStatus.OCCUPIED}:
        return spot, []
    events = _changed(spot, SpotStatus.UNKNOWN, now, ChangeCause.COMMS_LOST, None)
    return replace(spot, status=SpotStatus.UNKNOWN, since=now), events


def restore_comms(
    spot: Spot,
    now: datetime,
    device: DeviceId | None = None,
) -> tuple[Spot, list[SpotStatusChanged]]:
    """Return the spot once its silent sensor speaks again: unknown goes back to the last reading."""
    if spot.status is not SpotStatus.UNKNOWN or spot.occupied is None:
        return spot, []
    status = status_for(spot.occupied)
    events = _changed(spot, status, now, ChangeCause.READING, device)
    return replace(spot, status=status, since=now), events


def hold_spot(spot: Spot, now: datetime) -> tuple[Spot, list[SpotStatusChanged]]:
    """Return the spot taken by a hold: only a free spot can be held (raises SpotNotFreeError)."""
    if spot.status is not SpotStatus.FREE:
        raise SpotNotFreeError(spot.spot_id, spot.status.value)
    events = _changed(spot, SpotStatus.RESERVED, now, ChangeCause.RESERVATION, None)
    return replace(spot, status=SpotStatus.RESERVED, since=now), events


def close_spot(spot: Spot, now: datetime) -> tuple[Spot, list[SpotStatusChanged]]:
    """Return the spot closed by an operator; a held spot must be released first (SpotNotFreeError)."""
    if spot.status is SpotStatus.RESERVED:
        raise SpotNotFreeError(spot.spot_id, spot.status.value)
    events = _changed(spot, SpotStatus.CLOSED, now, ChangeCause.ADMIN, None)
    return replace(spot, status=SpotStatus.CLOSED, since=now), events


def release_spot(
    spot: Spot, now: datetime, *, sensor_online: bool, cause: ChangeCause
) -> tuple[Spot, list[SpotStatusChanged]]:
    """Return a held or closed spot given back to its sensor: the last reading, or unknown.

    A spot whose sensor is silent (or that never had a reading) turns ``unknown``, exactly as
    ``mark_comms_lost`` would have made it while it was held.
    """
    if spot.status not in HELD_STATUSES:
        return spot, []
    status = status_for(spot.occupied) if sensor_online and spot.occupied is not None else SpotStatus.UNKNOWN
    events = _changed(spot, status, now, cause, None)
    return replace(spot, status=status, since=now), events
