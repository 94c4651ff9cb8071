"""Errors raised by the pure parking domain; each carries its data and a stdlib meaning."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parking_core.ids import DeviceId, SpotId


class ParkingError(Exception):
    """Base class for every error raised by parking_core's domain modules."""


class InvalidIdError(ParkingError, ValueError):
    """Raised when an id does not have the contract's form ``[A-Za-z0-9_.-]{1,64}``."""

    def __init__(self, kind: str, value: str) -> None:
        super().__init__(f"malformed {kind} id {value!r}")
        self.kind = kind
        self.value = value


class UnknownSpotError(ParkingError, LookupError):
    """Raised when a reading or a request names a spot we do not know."""

    def __init__(self, spot_id: SpotId) -> None:
        super().__init__(f"unknown spot {spot_id!r}")
        self.spot_id = spot_id


class WrongSpotError(ParkingError, ValueError):
    """Raised when a reading is applied to a spot other than the one it is about."""

    def __init__(self, expected: SpotId, got: SpotId) -> None:
        super().__init__(f"reading for spot {got!r} applied to spot {expected!r}")
        self.expected = expected
        self.got = got


class WrongDeviceError(ParkingError, ValueError):
    """Raised when a liveness observation is applied to another device's record."""

    def __init__(self, expected: DeviceId, got: DeviceId) -> None:
        super().__init__(f"observation of device {got!r} applied to device {expected!r}")
        self.expected = expected
        self.got = got


class NaiveTimeError(ParkingError, ValueError):
    """Raised when a time without a UTC offset reaches the domain."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} must carry a UTC offset")
        self.what = what


class IllegalTransitionError(ParkingError, ValueError):
    """Raised when a session is asked to move to a state its state machine does not allow."""

    def __init__(self, session_id: str, current: str, target: str) -> None:
        super().__init__(f"session {session_id!r} cannot go from {current} to {target}")
        self.session_id = session_id
        self.current = current
        self.target = target


class SessionAlreadyOpenError(ParkingError, ValueError):
    """Raised when a second session would open for a plate or a spot that already has one."""

    def __init__(self, lot_id: str, plate: str | None, spot_id: str | None) -> None:
        what = f"plate {plate!r}" if plate is not None else f"spot {spot_id!r}"
        super().__init__(f"{what} already has an open session at lot {lot_id!r}")
        self.lot_id = lot_id
        self.plate = plate
        self.spot_id = spot_id


class SpotNotFreeError(ParkingError, ValueError):
    """Raised when a hold asks for a spot that is not free, or a held spot is to be closed."""

    def __init__(self, spot_id: str, status: str) -> None:
        super().__init__(f"spot {spot_id!r} is {status}")
        self.spot_id = spot_id
        self.status = status


class NoRoomError(ParkingError, LookupError):
    """Raised when a hold is asked of a lot (or zone) with no space that can take it."""

    def __init__(self, lot_id: str, zone_id: str | None = None) -> None:
        where = f"zone {zone_id!r} of lot {lot_id!r}" if zone_id else f"lot {lot_id!r}"
        super().__init__(f"no space can be held in {where}")
        self.lot_id = lot_id
        self.zone_id = zone_id


class HoldRequestError(ParkingError, ValueError):
    """Raised when a reservation request breaks the lot's policy; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class HoldStateError(ParkingError, ValueError):
    """Raised when a hold is asked to move in a way its state does not allow (e.g. cancel an arrival)."""

    def __init__(self, reservation_id: str, status: str, action: str) -> None:
        super().__init__(f"reservation {reservation_id!r} is {status}: cannot {action}")
        self.reservation_id = reservation_id
        self.status = status
        self.action = action
