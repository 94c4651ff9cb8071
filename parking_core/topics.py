"""The MQTT topic layout of CONTRACT.md: one place for the gateway, the broker ACL and simulators."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DeviceKind(StrEnum):
    """Kinds of field device (``devices.kind``)."""

    BAY_SENSOR = "bay_sensor"
    GATE = "gate"
    SIGN = "sign"


class Leaf(StrEnum):
    """The last level of a device topic: what the message is."""

    STATE = "state"
    HEARTBEAT = "heartbeat"
    PRESENCE = "presence"
    PLATE = "plate"
    PASSAGE = "passage"
    ACK = "ack"
    COMMAND = "command"


# (family, leaf) of every topic a device publishes on; the family is the second level.
_FAMILY = {
    Leaf.STATE: "sensors",
    Leaf.HEARTBEAT: "sensors",
    Leaf.PRESENCE: "devices",
    Leaf.PLATE: "gates",
    Leaf.PASSAGE: "gates",
    Leaf.ACK: "gates",
    Leaf.COMMAND: "gates",
}
SENSOR_LEAVES = (Leaf.STATE, Leaf.HEARTBEAT)
GATE_LEAVES = (Leaf.PLATE, Leaf.PASSAGE, Leaf.ACK)
# What each kind publishes (besides its presence) and what it reads from the backend.
_WRITES = {DeviceKind.BAY_SENSOR: SENSOR_LEAVES, DeviceKind.GATE: GATE_LEAVES, DeviceKind.SIGN: ()}


def device_topic(prefix: str, leaf: Leaf, device_id: str) -> str:
    """Return the topic of *leaf* messages of *device_id* (e.g. ``parking/v1/sensors/s1/state``)."""
    return f"{prefix}/{_FAMILY[leaf]}/{device_id}/{leaf.value}"


def sensor_topic(prefix: str, device_id: str, leaf: str) -> str:
    """Return the topic a bay sensor publishes ``state`` or ``heartbeat`` messages on."""
    if leaf not in SENSOR_LEAVES:
        raise ValueError(f"a sensor publishes state or heartbeat, not {leaf!r}")
    return device_topic(prefix, Leaf(leaf), device_id)


def presence_topic(prefix: str, device_id: str) -> str:
    """Return a device's presence topic (retained; also its will)."""
    return device_topic(prefix, Leaf.PRESENCE, device_id)


def gate_topic(prefix: str, device_id: str, leaf: str) -> str:
    """Return a gate's ``plate``, ``passage``, ``ack`` or ``command`` topic."""
    if leaf not in {*GATE_LEAVES, Leaf.COMMAND}:
        raise ValueError(f"a gate topic ends in plate, passage, ack or command, not {leaf!r}")
    return device_topic(prefix, Leaf(leaf), device_id)


def availability_topic(prefix: str, lot_id: str) -> str:
    """Return a lot's retained availability topic."""
    return f"{prefix}/lots/{lot_id}/availability"


def subscriptions(prefix: str, share_group: str | None, leaves: tuple[Leaf, ...]) -> list[str]:
    """Return the backend's topic filters for *leaves*, shared when *share_group* is set."""
    filters = [device_topic(prefix, leaf, "+") for leaf in leaves]
    if share_group:
        return [f"$share/{share_group}/{f}" for f in filters]
    return filters


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """A parsed device topic: what it carries and which device it names (not yet checked)."""

    leaf: Leaf
    device_id: str


def parse_device_topic(topic: str, prefix: str) -> DeviceTopic | None:
    """Return what a device topic under *prefix* carries, or None if it is not one a device sends."""
    if not topic.startswith(prefix) or topic[len(prefix) : len(prefix) + 1] != "/":
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) != 3 or not parts[1]:
        return None
    family, device, leaf_name = parts
    try:
        leaf = Leaf(leaf_name)
    except ValueError:
        return None
    if leaf is Leaf.COMMAND or _FAMILY[leaf] != family:
        return None
    return DeviceTopic(leaf, device)


def device_acl_lines(prefix: str, device_id: str, kind: DeviceKind, lot_id: str | None) -> list[str]:
    """Return the Mosquitto ACL lines that let a device use only its own topics."""
    lines = [f"topic write {device_topic(prefix, Leaf.PRESENCE, device_id)}"]
    lines += [f"topic write {device_topic(prefix, leaf, device_id)}" for leaf in _WRITES[kind]]
    if kind is DeviceKind.GATE:
        lines.append(f"topic read {device_topic(prefix, Leaf.COMMAND, device_id)}")
    elif kind is DeviceKind.SIGN and lot_id is not None:
        lines.append(f"topic read {availability_topic(prefix, lot_id)}")
    return lines
