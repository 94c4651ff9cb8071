"""Wire schemas of device messages (pydantic, shared with simulators); topics are in parking_core.topics."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from parking_core.lots import LotStatus

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
    status: LotStatus


# Built once at import: validation is on the hot path.
STATE = TypeAdapter(SensorState)
HEARTBEAT = TypeAdapter(SensorHeartbeat)
PRESENCE = TypeAdapter(Presence)
AVAILABILITY = TypeAdapter(Availability)


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
