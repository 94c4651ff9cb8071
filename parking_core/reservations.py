"""Reservations: holds with arrival windows, grace, no-show and the never-more-holds-than-spaces rule."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from parking_core.errors import HoldRequestError, HoldStateError, NaiveTimeError, NoRoomError
from parking_core.ids import LotId, SpotId, ZoneId
from parking_core.lots import LotCounts
from parking_core.occupancy import ChangeCause, Spot, SpotStatus, SpotStatusChanged, hold_spot, release_spot


class HoldStatus(StrEnum):
    """Where a hold is in its life (docs/reservations.md)."""

    HELD = "held"  # a space is kept for the plate until it arrives or the deadline passes
    ARRIVED = "arrived"  # the gate or the bay sensor saw the vehicle: the space is the driver's
    CANCELLED = "cancelled"  # the driver cancelled (free before the lot's cut-off)
    NO_SHOW = "no_show"  # the deadline passed without an arrival: released, no-show fee due


class ArrivalEvidence(StrEnum):
    """What verified an arrival."""

    GATE = "gate"  # the held plate was read at an entry gate of the lot
    SENSOR = "sensor"  # the held bay turned occupied (with the plate when it was known)


class SensorVerdict(StrEnum):
    """What a held bay turning occupied means."""

    ARRIVED = "arrived"  # the plate matches, or no plate is known: the driver is in
    TAKEN_BY_OTHER = "taken_by_other"  # another plate is in the held bay: offer the driver another
    IGNORED = "ignored"  # the hold is not held any more


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    """A lot's reservation policy (per-lot columns; these defaults when unset)."""

    grace: timedelta = timedelta(minutes=15)  # after the window's end, before a no-show
    cancel_cutoff: timedelta = timedelta(minutes=30)  # cancelling later than this before the window costs
    max_lead: timedelta = timedelta(hours=24)  # how far ahead a window may start
    max_window: timedelta = timedelta(hours=2)  # how long an arrival window may be


@dataclass(frozen=True, slots=True)
class ArrivalWindow:
    """When the driver says they will arrive: [start, end), both aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            if getattr(self, name).utcoffset() is None:
                raise NaiveTimeError(f"arrival window {name}")


def check_request(window: ArrivalWindow, now: datetime, policy: HoldPolicy) -> None:
    """Raise HoldRequestError (naming the field) unless *window* may be booked at *now*."""
    if window.end <= window.start:
        raise HoldRequestError("arrival_to", "must be after arrival_from")
    if window.end <= now:
        raise HoldRequestError("arrival_to", "is already past")
    if window.end - window.start > policy.max_window:
        raise HoldRequestError("arrival_to", f"the window may last at most {policy.max_window}")
    if window.start - now > policy.max_lead:
        raise HoldRequestError("arrival_from", f"may be at most {policy.max_lead} ahead")


@dataclass(frozen=True, slots=True)
class Hold:
    """One reservation: a space kept for one plate at one lot until arrival, cancellation or no-show."""

    reservation_id: str
    lot_id: LotId
    plate: str
    window: ArrivalWindow
    deadline: datetime  # window end + grace: released as a no-show at this instant
    created_at: datetime
    spot_id: SpotId | None = None  # the held spot, when the lot has spots
    zone_id: ZoneId | None = None
    status: HoldStatus = HoldStatus.HELD
    ended_at: datetime | None = None
    evidence: ArrivalEvidence | None = None

    @property
    def is_held(self) -> bool:
        """Tell whether the hold still keeps a space."""
        return self.status is HoldStatus.HELD

    def _end(self, status: HoldStatus, at: datetime, action: str) -> Hold:
        if not self.is_held:
            raise HoldStateError(self.reservation_id, self.status.value, action)
        return replace(self, status=status, ended_at=at)

    def arrive(self, at: datetime, evidence: ArrivalEvidence) -> Hold:
        """The vehicle was seen (gate or sensor) while held."""
        return replace(self._end(HoldStatus.ARRIVED, at, "arrive"), evidence=evidence)

    def cancel(self, at: datetime) -> Hold:
        """The driver cancelled."""
        return self._end(HoldStatus.CANCELLED, at, "cancel")

    def expire(self, at: datetime) -> Hold:
        """The deadline passed without an arrival."""
        if at < self.deadline:
            raise HoldStateError(self.reservation_id, self.status.value, "expire before its deadline")
        return self._end(HoldStatus.NO_SHOW, at, "expire")


def new_hold(  # noqa: PLR0913 - a reservation request has this many parts
    reservation_id: str,
    lot_id: LotId,
    plate: str,
    window: ArrivalWindow,
    *,
    now: datetime,
    policy: HoldPolicy,
    spot_id: SpotId | None = None,
    zone_id: ZoneId | None = None,
) -> Hold:
    """Return a new hold after checking the request against the policy."""
    check_request(window, now, policy)
    return Hold(reservation_id, lot_id, plate, window, window.end + policy.grace, now, spot_id, zone_id)


def is_late_cancellation(hold: Hold, at: datetime, policy: HoldPolicy) -> bool:
    """Tell whether cancelling at *at* is past the cut-off (the reservation fee is then due)."""
    return at > hold.window.start - policy.cancel_cutoff


def is_due_for_release(hold: Hold, now: datetime) -> bool:
    """Tell whether the sweep must release *hold* as a no-show at *now*."""
    return hold.is_held and now >= hold.deadline


def sensor_verdict(hold: Hold, plate_seen: str | None) -> SensorVerdict:
    """Judge a held bay turning occupied: the held plate (or no plate known) arrived, else an intruder."""
    if not hold.is_held:
        return SensorVerdict.IGNORED
    if plate_seen is not None and plate_seen != hold.plate:
        return SensorVerdict.TAKEN_BY_OTHER
    return SensorVerdict.ARRIVED


# The one rule: a hold takes a *free* space, so holds never exceed the spaces that can take them.


def has_room(counts: LotCounts) -> bool:
    """Tell whether a lot can take one more hold: it must have a free space (held, closed,
    occupied and unknown spaces cannot take one).
    """
    return counts.free > 0


def take_room(counts: LotCounts) -> LotCounts:
    """Return the counts after a hold on a lot counted without spots (free → reserved)."""
    if not has_room(counts):
        raise NoRoomError("(counts)")
    return replace(counts, free=counts.free - 1, reserved=counts.reserved + 1)


def give_back_room(counts: LotCounts) -> LotCounts:
    """Return the counts after a spot-less hold ends (reserved → free)."""
    return replace(counts, free=counts.free + 1, reserved=max(0, counts.reserved - 1))


def choose_spot(
    spots: list[tuple[Spot, ZoneId | None]],
    lot_id: LotId,
    wanted_spot: SpotId | None = None,
    wanted_zone: ZoneId | None = None,
) -> Spot:
    """Return the spot a new hold takes: the one asked for if free, else the first free one (of the zone)."""
    for spot, zone in sorted(spots, key=lambda pair: pair[0].spot_id):
        if spot.status is not SpotStatus.FREE:
            continue
        if wanted_spot is not None and spot.spot_id != wanted_spot:
            continue
        if wanted_zone is not None and zone != wanted_zone:
            continue
        return spot
    raise NoRoomError(lot_id, wanted_zone)


@dataclass
class LotBook:
    """The holds of one lot with spots, as the store keeps them (the reference the SQL follows)."""

    lot_id: LotId
    spots: dict[SpotId, Spot]
    zones: dict[SpotId, ZoneId | None] = field(default_factory=dict)
    holds: dict[str, Hold] = field(default_factory=dict)
    events: list[SpotStatusChanged] = field(default_factory=list)

    def _set(self, spot: Spot, events: list[SpotStatusChanged]) -> None:
        self.spots[spot.spot_id] = spot
        self.events.extend(events)

    def hold(self, hold: Hold, now: datetime) -> Hold:
        """Take a free spot for *hold* (its own spot or zone if asked); NoRoomError when none."""
        pairs = [(s, self.zones.get(s.spot_id)) for s in self.spots.values()]
        spot = choose_spot(pairs, self.lot_id, hold.spot_id, hold.zone_id)
        self._set(*hold_spot(spot, now))
        placed = replace(hold, spot_id=spot.spot_id)
        self.holds[hold.reservation_id] = placed
        return placed

    def _release(self, hold: Hold, now: datetime, *, sensor_online: bool = True) -> None:
        if hold.spot_id is not None:
            spot = self.spots[hold.spot_id]
            self._set(*release_spot(spot, now, sensor_online=sensor_online, cause=ChangeCause.RESERVATION))

    def cancel(self, reservation_id: str, now: datetime) -> Hold:
        """Cancel a hold and give its spot back."""
        hold = self.holds[reservation_id].cancel(now)
        self._release(hold, now)
        self.holds[reservation_id] = hold
        return hold

    def arrive(self, reservation_id: str, now: datetime, evidence: ArrivalEvidence) -> Hold:
        """Mark an arrival: the spot goes back to its sensor (which says occupied once the car is in)."""
        hold = self.holds[reservation_id].arrive(now, evidence)
        self._release(hold, now)
        self.holds[reservation_id] = hold
        return hold

    def expire(self, now: datetime) -> list[Hold]:
        """Release every hold whose deadline has passed; return them (no-shows)."""
        gone = [h.expire(now) for h in self.holds.values() if is_due_for_release(h, now)]
        for hold in gone:
            self._release(hold, now)
            self.holds[hold.reservation_id] = hold
        return gone

    def active(self) -> list[Hold]:
        """Return the holds that keep a space."""
        return [h for h in self.holds.values() if h.is_held]
