"""Turn one raw MQTT message into a sensor reading, a presence report or a refusal with a reason."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import ValidationError

from device_gateway.messages import HEARTBEAT, PRESENCE, STATE, SensorHeartbeat
from parking_core.ids import is_valid_id
from parking_core.topics import Leaf, parse_device_topic

PAYLOAD_KEEP_BYTES = 1024  # rejected payloads are kept for operators, truncated to this
DETAIL_KEEP_CHARS = 500
TOPIC_KEEP_CHARS = 256  # a device topic is under 120 characters; a longer one is kept cut short
DEFAULT_MAX_PAYLOAD_BYTES = 8192  # a sensor message is ~150 bytes; anything near this is not one
# What PostgreSQL text cannot hold: NUL, and UTF-16 surrogates (no UTF-8 form).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
SENSOR_PATH_LEAVES = frozenset({Leaf.STATE, Leaf.HEARTBEAT, Leaf.PRESENCE})  # the batched path


class RejectReason(StrEnum):
    """Why the gateway refused a message (``rejected_messages.reason``)."""

    NOT_JSON = "not_json"
    SCHEMA = "schema"
    UNKNOWN_DEVICE = "unknown_device"
    WRONG_KIND = "wrong_kind"  # not a bay sensor, or not bound to a spot
    CLOCK_SKEW = "clock_skew"  # ts too far in the future of receipt
    TOO_OLD = "too_old"  # ts older than the history window
    WRONG_TOPIC = "wrong_topic"
    TOO_LARGE = "too_large"  # payload over the gateway's limit (PARKING_GATEWAY_MAX_PAYLOAD_BYTES)
    UNSTORABLE = "unstorable"  # a field holds a character the database cannot store (NUL)


@dataclass(frozen=True, slots=True)
class Limits:
    """How far a device clock may be from the receipt time, and how large a payload may be."""

    max_ahead: timedelta = timedelta(minutes=5)  # CONTRACT.md: clock_skew beyond 5 minutes
    history_window: timedelta = timedelta(hours=72)  # CONTRACT.md: old uploads within 72 h
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES


@dataclass(frozen=True, slots=True)
class SensorReading:
    """A decoded and time-checked sensor message (device still to be checked against the registry)."""

    device_id: str
    message: str  # "state" or "heartbeat"
    seq: int
    ts: datetime
    occupied: bool
    battery_mv: int | None
    rssi_dbm: int | None
    firmware: str | None
    received_at: datetime
    topic: str = field(default="", compare=False, repr=False)
    raw: bytes = field(default=b"", compare=False, repr=False)  # kept in case the registry refuses


@dataclass(frozen=True, slots=True)
class PresenceReport:
    """A decoded presence message (the device's will or its own announcement)."""

    device_id: str
    online: bool
    received_at: datetime
    topic: str = field(default="", compare=False, repr=False)
    raw: bytes = field(default=b"", compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A refused message, as kept in ``rejected_messages``."""

    topic: str
    device_id: str | None
    reason: RejectReason
    detail: str
    payload: str
    received_at: datetime


Decoded = SensorReading | PresenceReport | Rejection


def storable(text: str, keep: int) -> str:
    """Return *text* cut to *keep* characters, with what PostgreSQL cannot store replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text[:keep])


def truncate_payload(payload: bytes) -> str:
    """Return the payload as text for the operator, truncated and with bad bytes replaced."""
    return storable(payload[:PAYLOAD_KEEP_BYTES].decode("utf-8", errors="replace"), PAYLOAD_KEEP_BYTES)


def reject(  # noqa: PLR0913, PLR0917 -- mirrors the rejected_messages row
    topic: str, device: str | None, reason: RejectReason, detail: str, payload: bytes, received_at: datetime
) -> Rejection:
    """Return a refusal record; every text in it can be stored, whatever the device sent."""
    return Rejection(
        storable(topic, TOPIC_KEEP_CHARS),
        None if device is None else storable(device, 64),
        reason,
        storable(detail, DETAIL_KEEP_CHARS),
        truncate_payload(payload),
        received_at,
    )


def unstorable_field(values: dict[str, str | None]) -> str | None:
    """Return the name of the first field whose text the database cannot store, if any."""
    return next((name for name, text in values.items() if text and _UNSTORABLE.search(text)), None)


def _schema_detail(exc: ValidationError) -> tuple[RejectReason, str]:
    errors = exc.errors(include_url=False, include_input=False)
    if errors and errors[0]["type"] in {"json_invalid", "json_type"}:
        return RejectReason.NOT_JSON, str(errors[0]["msg"])
    parts = [f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors[:5]]
    return RejectReason.SCHEMA, "; ".join(parts)


def decode(  # noqa: PLR0911, PLR0913, PLR0917 -- one early return per refusal reason
    topic: str,
    payload: bytes,
    prefix: str,
    received_at: datetime,
    limits: Limits,
    size: int | None = None,
) -> Decoded:
    """Decode and validate one message; never raises for bad input.

    *size* is the payload's size as received, when *payload* was cut short on arrival (oversized).
    """
    size = len(payload) if size is None else size
    parsed = parse_device_topic(topic, prefix)
    if parsed is None or parsed.leaf not in SENSOR_PATH_LEAVES:
        return reject(topic, None, RejectReason.WRONG_TOPIC, "not a device topic", payload, received_at)
    kind, device = parsed.leaf.value, parsed.device_id
    if not is_valid_id(device):
        return reject(
            topic, device[:64], RejectReason.WRONG_TOPIC, "malformed device id", payload, received_at
        )
    if size > limits.max_payload_bytes:
        detail = f"payload of {size} bytes exceeds the limit of {limits.max_payload_bytes}"
        return reject(topic, device, RejectReason.TOO_LARGE, detail, payload, received_at)
    try:
        if kind == "presence":
            presence = PRESENCE.validate_json(payload)
            return PresenceReport(device, presence.online, received_at, topic, payload)
        report = STATE.validate_json(payload) if kind == "state" else HEARTBEAT.validate_json(payload)
    except ValidationError as exc:
        reason, detail = _schema_detail(exc)
        return reject(topic, device, reason, detail, payload, received_at)
    if report.ts - received_at > limits.max_ahead:
        return reject(
            topic,
            device,
            RejectReason.CLOCK_SKEW,
            f"ts {report.ts.isoformat()} is ahead of receipt {received_at.isoformat()}",
            payload,
            received_at,
        )
    if received_at - report.ts > limits.history_window:
        return reject(
            topic,
            device,
            RejectReason.TOO_OLD,
            f"ts {report.ts.isoformat()} is older than {limits.history_window}",
            payload,
            received_at,
        )
    firmware = report.fw if isinstance(report, SensorHeartbeat) else None  # no getattr: pydantic slow path
    bad = unstorable_field({"fw": firmware})
    if bad is not None:
        detail = f"{bad}: holds a character the database cannot store (NUL or a lone surrogate)"
        return reject(topic, device, RejectReason.UNSTORABLE, detail, payload, received_at)
    return SensorReading(
        device,
        kind,
        report.seq,
        report.ts,
        report.occupied,
        report.battery_mv,
        report.rssi_dbm,
        firmware,
        received_at,
        topic,
        payload,
    )
