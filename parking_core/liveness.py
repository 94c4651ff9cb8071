"""Device liveness from the devices' own messages: what proves one alive, when a silent one is offline."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from parking_core.errors import NaiveTimeError, WrongDeviceError
from parking_core.ids import DeviceId
from parking_core.topics import DeviceKind, Leaf

# CONTRACT.md: a sensor is stale after twice its heartbeat interval plus a minute of slack.
STALE_SLACK = timedelta(seconds=60)
# A bay sensor's heartbeat unless its model says otherwise: NB-IoT sensors report every 5-15 minutes
# to last their ten-year battery (the schema's default of `devices.heartbeat_interval_s` too).
DEFAULT_HEARTBEAT_INTERVAL = timedelta(minutes=10)


# What proves a device alive (CONTRACT.md: liveness comes from the device's own messages), by kind.
# A bay sensor: its readings. A gate has no heartbeat topic: its plate reads, passages and acks, and
# its own presence announcements (`{"online": true}`, which a gate may repeat as its heartbeat); the
# will (`{"online": false}`) is published by the broker for it, so it is never a sign of life. A sign
# only listens: nothing proves it alive, so it is not watched (its status stays unknown).
LIFE_SIGNS: dict[DeviceKind, frozenset[Leaf]] = {
    DeviceKind.BAY_SENSOR: frozenset({Leaf.STATE, Leaf.HEARTBEAT}),
    DeviceKind.GATE: frozenset({Leaf.PLATE, Leaf.PASSAGE, Leaf.ACK, Leaf.PRESENCE}),
}
WATCHED_KINDS = frozenset(LIFE_SIGNS)


def is_life_sign(kind: DeviceKind, leaf: Leaf, *, online: bool = True) -> bool:
    """Tell whether a *leaf* message of a *kind* device proves it alive (a presence only if *online*)."""
    return leaf in LIFE_SIGNS.get(kind, frozenset()) and (leaf is not Leaf.PRESENCE or online)


class DeviceStatus(StrEnum):
    """What the backend believes about a device (``devices.status``)."""

    ONLINE = "online"
    OFFLINE = "offline"
    UNKNOWN = "unknown"  # never heard from


class PresenceEvent(StrEnum):
    """Events of ``device_presence_changes`` (CDS vocabulary plus the broker will)."""

    COMMS_LOST = "comms_lost"
    COMMS_RESTORED = "comms_restored"
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class DevicePresenceChanged:
    """Event: a device was found silent, spoke again, or announced its presence."""

    device_id: DeviceId
    ts: datetime
    event: PresenceEvent


@dataclass(frozen=True, slots=True)
class Liveness:
    """What liveness needs to know about one device."""

    device_id: DeviceId
    stale_after: timedelta
    status: DeviceStatus = DeviceStatus.UNKNOWN
    last_seen_at: datetime | None = None  # receipt time of its last message


def default_stale_after(heartbeat_interval: timedelta) -> timedelta:
    """Return the default silence window: 2 × heartbeat interval + 60 s."""
    return 2 * heartbeat_interval + STALE_SLACK


def silent_after(device: Liveness) -> datetime | None:
    """Return the time after which *device* counts as silent, or None if never seen."""
    if device.last_seen_at is None:
        return None
    return device.last_seen_at + device.stale_after


def is_silent(device: Liveness, now: datetime) -> bool:
    """Tell whether *device* has been quiet for longer than its window at *now*."""
    deadline = silent_after(device)
    return deadline is not None and now > deadline


def observe(
    device: Liveness,
    device_id: DeviceId,
    received_at: datetime,
) -> tuple[Liveness, list[DevicePresenceChanged]]:
    """Return the device after one of its messages arrived at *received_at*."""
    if device_id != device.device_id:
        raise WrongDeviceError(device.device_id, device_id)
    if received_at.utcoffset() is None:
        raise NaiveTimeError("received_at")
    seen = received_at if device.last_seen_at is None else max(device.last_seen_at, received_at)
    events: list[DevicePresenceChanged] = []
    if device.status is DeviceStatus.OFFLINE:
        events.append(DevicePresenceChanged(device.device_id, received_at, PresenceEvent.COMMS_RESTORED))
    return replace(device, status=DeviceStatus.ONLINE, last_seen_at=seen), events


def status_at(device: Liveness, now: datetime) -> DeviceStatus:
    """Return what the rule says *device* is at *now*: unknown until its first sign of life, online
    until its window after the last one has passed, offline after (the sweep's state, at any moment).
    """
    if device.last_seen_at is None:
        return DeviceStatus.UNKNOWN
    return DeviceStatus.OFFLINE if is_silent(device, now) else DeviceStatus.ONLINE


def check_silence(
    device: Liveness,
    now: datetime,
) -> tuple[Liveness, list[DevicePresenceChanged]]:
    """Return the device at *now*: offline (with a comms_lost event) if it has gone silent."""
    if device.status is DeviceStatus.OFFLINE or not is_silent(device, now):
        return device, []
    event = DevicePresenceChanged(device.device_id, now, PresenceEvent.COMMS_LOST)
    return replace(device, status=DeviceStatus.OFFLINE), [event]
