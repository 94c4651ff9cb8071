"""Wire schemas of gate messages (plate, passage, ack, command) and their decoding (pydantic)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from device_gateway.decode import Limits, Rejection, RejectReason, reject
from device_gateway.messages import MAX_SEQ
from parking_core.ids import is_valid_id
from parking_core.plates import normalise_plate
from parking_core.topics import GATE_LEAVES, Leaf, parse_device_topic

PlateColor = Literal["blue", "yellow", "green", "black", "white", "other"]
LaneName = Literal["entry", "exit"]


class _GateMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class PlateMessage(_GateMessage):
    """``gates/{device_id}/plate``: a camera read a plate."""

    seq: int = Field(ge=0, le=MAX_SEQ)
    ts: AwareDatetime
    lane: LaneName
    plate: str = Field(min_length=1, max_length=16)
    plate_color: PlateColor | None = None
    confidence: float = Field(ge=0, le=1)


class PassageMessage(_GateMessage):
    """``gates/{device_id}/passage``: a vehicle crossed the barrier."""

    seq: int = Field(ge=0, le=MAX_SEQ)
    ts: AwareDatetime
    lane: LaneName
    plate: str | None = Field(default=None, min_length=1, max_length=16)


class AckMessage(_GateMessage):
    """``gates/{device_id}/ack``: the gate carried out (or could not carry out) a command."""

    command_id: str = Field(min_length=1, max_length=64)
    ts: AwareDatetime
    ok: bool
    seq: int | None = Field(default=None, ge=0, le=MAX_SEQ)


PLATE = TypeAdapter(PlateMessage)
PASSAGE = TypeAdapter(PassageMessage)
ACK = TypeAdapter(AckMessage)


@dataclass(frozen=True, slots=True)
class GateMessage:
    """A decoded gate message: which gate, what it said (plate normalised), when it arrived."""

    leaf: Leaf
    device_id: str
    body: PlateMessage | PassageMessage | AckMessage
    received_at: datetime
    topic: str
    raw: bytes

    @property
    def plate(self) -> str | None:
        """Return the normalised plate of a plate read or passage."""
        plate = getattr(self.body, "plate", None)
        return None if plate is None else normalise_plate(plate)


def _check_time(message: GateMessage, limits: Limits) -> Rejection | None:
    ts, received = message.body.ts, message.received_at
    if ts - received > limits.max_ahead:
        detail = f"ts {ts.isoformat()} is ahead of receipt {received.isoformat()}"
        return reject(
            message.topic, message.device_id, RejectReason.CLOCK_SKEW, detail, message.raw, received
        )
    if received - ts > limits.history_window:
        detail = f"ts {ts.isoformat()} is older than {limits.history_window}"
        return reject(message.topic, message.device_id, RejectReason.TOO_OLD, detail, message.raw, received)
    return None


def decode_gate(
    topic: str, payload: bytes, prefix: str, received_at: datetime, limits: Limits
) -> GateMessage | Rejection:
    """Decode one gate message; never raises for bad input."""
    parsed = parse_device_topic(topic, prefix)
    if parsed is None or parsed.leaf not in GATE_LEAVES or not is_valid_id(parsed.device_id):
        return reject(topic, None, RejectReason.WRONG_TOPIC, "not a gate topic", payload, received_at)
    try:
        body: PlateMessage | PassageMessage | AckMessage
        if parsed.leaf is Leaf.PLATE:
            body = PLATE.validate_json(payload)
        elif parsed.leaf is Leaf.PASSAGE:
            body = PASSAGE.validate_json(payload)
        else:
            body = ACK.validate_json(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if errors and errors[0]["type"] in {"json_invalid", "json_type"}:
            reason, detail = RejectReason.NOT_JSON, str(errors[0]["msg"])
        else:
            reason = RejectReason.SCHEMA
            detail = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors[:5])
        return reject(topic, parsed.device_id, reason, detail, payload, received_at)
    if isinstance(body, AckMessage):
        try:
            uuid.UUID(body.command_id)
        except ValueError:
            detail = "command_id: not a command id we issued"
            return reject(topic, parsed.device_id, RejectReason.SCHEMA, detail, payload, received_at)
    message = GateMessage(parsed.leaf, parsed.device_id, body, received_at, topic, payload)
    return _check_time(message, limits) or message
