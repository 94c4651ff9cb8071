"""Wire schemas of device messages (pydantic, shared with simulators) and the topic layout."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

SensorTopicKind = Literal["state", "heartbeat"]
TopicKind = Literal["state", "heartbeat", "presence"]

# Sensors send small integers; the bounds only stop absurd values from reaching the database.
MAX_SEQ = 2**63 - 1
INT32 = 2**31 - 1


class _DeviceMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class SensorState(_DeviceMessage):
    """``sensors/{device_id}/state``: sent by a bay sensor on every change."""

    seq: int = Field(ge=0, le=MAX_SEQ)
    ts: AwareDatetime
    occupied: bool
    battery_mv: int | None = Field(default=None, ge=0, le=INT32)
    rssi_dbm: int | None = Field(default=None, ge=-INT32, le=INT32)
    prev_state_s: int | None = Field(default=None, ge=0, le=INT32)


class SensorHeartbeat(SensorState):
    """``sensors/{device_id}/heartbeat``: the same shape, periodic, with optional firmware."""

    fw: str | None = Field(default=None, max_length=64)


class Presence(_DeviceMessage):
    """``devices/{device_id}/presence``: retained, and the device's will (``{"online": false}``)."""

    online: bool
    seq: int | None = Field(default=None, ge=0, le=MAX_SEQ)
    ts: AwareDatetime | None = None


class Availability(BaseModel):
    """``lots/{lot_id}/availability``: published by the gateway, retained."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ts: AwareDatetime
    free: int
    capacity: int
    status: Literal["open", "almost_full", "full", "closed", "unknown"]


# Built once at import: validation is on the hot path.
STATE = TypeAdapter(SensorState)
HEARTBEAT = TypeAdapter(SensorHeartbeat)
PRESENCE = TypeAdapter(Presence)
AVAILABILITY = TypeAdapter(Availability)


def sensor_topic(prefix: str, device_id: str, kind: SensorTopicKind) -> str:
    """Return the topic a bay sensor publishes *kind* messages on."""
    return f"{prefix}/sensors/{device_id}/{kind}"


def presence_topic(prefix: str, device_id: str) -> str:
    """Return a device's presence topic."""
    return f"{prefix}/devices/{device_id}/presence"


def availability_topic(prefix: str, lot_id: str) -> str:
    """Return a lot's availability topic."""
    return f"{prefix}/lots/{lot_id}/availability"


def subscriptions(prefix: str, share_group: str | None) -> list[str]:
    """Return the topic filters the gateway subscribes to, shared when *share_group* is set."""
    filters = [f"{prefix}/sensors/+/state", f"{prefix}/sensors/+/heartbeat", f"{prefix}/devices/+/presence"]
    if share_group:
        return [f"$share/{share_group}/{f}" for f in filters]
    return filters


def parse_topic(topic: str, prefix: str) -> tuple[TopicKind, str] | None:
    """Return (kind, device_id) of a device topic under *prefix*, or None if it is not one."""
    if not topic.startswith(prefix) or topic[len(prefix) : len(prefix) + 1] != "/":
        return None
    parts = topic[len(prefix) + 1 :].split("/")
    if len(parts) != 3 or not parts[1]:
        return None
    family, device, leaf = parts
    if family == "sensors" and leaf in {"state", "heartbeat"}:
        return ("state" if leaf == "state" else "heartbeat"), device
    if family == "devices" and leaf == "presence":
        return "presence", device
    return None


def encode_state(seq: int, ts: datetime, occupied: bool, **extra: int | str | None) -> bytes:
    """Return the JSON payload of a state message (extra: battery_mv, rssi_dbm, prev_state_s)."""
    message = SensorState.model_validate({"seq": seq, "ts": ts, "occupied": occupied, **extra})
    return message.model_dump_json(exclude_none=True).encode()


def encode_heartbeat(seq: int, ts: datetime, occupied: bool, **extra: int | str | None) -> bytes:
    """Return the JSON payload of a heartbeat message (extra may include fw)."""
    message = SensorHeartbeat.model_validate({"seq": seq, "ts": ts, "occupied": occupied, **extra})
    return message.model_dump_json(exclude_none=True).encode()


def encode_presence(online: bool) -> bytes:
    """Return the JSON payload of a presence message (also the will)."""
    return Presence(online=online).model_dump_json(exclude_none=True).encode()
