"""Decoding and validation of device messages: every bad input is refused with its reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from device_gateway.decode import (
    Limits,
    PresenceReport,
    Rejection,
    RejectReason,
    SensorReading,
    decode,
)
from device_gateway.messages import encode_heartbeat, encode_presence, encode_state
from parking_core.topics import DeviceTopic, Leaf, parse_device_topic

P = "parking/v1"
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
LIMITS = Limits()


def test_a_state_message_decodes() -> None:
    """A well-formed state message becomes a reading."""
    payload = b'{"seq":1042,"ts":"2026-11-23T08:15:02.120+08:00","occupied":true,"battery_mv":3610}'
    got = decode(f"{P}/sensors/d1/state", payload, P, NOW, LIMITS)
    assert isinstance(got, SensorReading)
    assert (got.device_id, got.seq, got.occupied, got.battery_mv) == ("d1", 1042, True, 3610)
    assert got.ts.utcoffset() == timedelta(hours=8)


def test_heartbeats_may_carry_firmware() -> None:
    """Heartbeats have the same shape plus fw; state messages refuse fw."""
    payload = encode_heartbeat(1, NOW, True, fw="1.2.3")
    got = decode(f"{P}/sensors/d1/heartbeat", payload, P, NOW, LIMITS)
    assert isinstance(got, SensorReading)
    assert got.firmware == "1.2.3"
    refused = decode(f"{P}/sensors/d1/state", payload, P, NOW, LIMITS)
    assert isinstance(refused, Rejection)
    assert refused.reason is RejectReason.SCHEMA


def test_presence_decodes() -> None:
    """The will payload is a presence report."""
    got = decode(f"{P}/devices/d1/presence", encode_presence(False), P, NOW, LIMITS)
    assert got == PresenceReport("d1", False, NOW)


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (f"{P}/sensors/d1/state", b"\xff\xfe not json", RejectReason.NOT_JSON),
        (f"{P}/sensors/d1/state", b"", RejectReason.NOT_JSON),
        (
            f"{P}/sensors/d1/state",
            b'{"seq":1,"ts":"2026-11-23T08:00:00","occupied":true}',
            RejectReason.SCHEMA,
        ),  # naive time
        (
            f"{P}/sensors/d1/state",
            b'{"seq":1,"ts":"2026-11-23T08:00:00Z","occupied":"yes"}',
            RejectReason.SCHEMA,
        ),
        (
            f"{P}/sensors/d1/state",
            b'{"seq":1,"ts":"2026-11-23T08:00:00Z","occupied":true,"x":1}',
            RejectReason.SCHEMA,
        ),  # extra field
        (f"{P}/sensors/d1/state", b"[1,2]", RejectReason.SCHEMA),
        (
            f"{P}/sensors/d1/state",
            b'{"seq":-1,"ts":"2026-11-23T08:00:00Z","occupied":true}',
            RejectReason.SCHEMA,
        ),
        (
            f"{P}/sensors/d1/state",
            b'{"seq":1,"ts":"2026-11-23T08:06:00Z","occupied":true}',
            RejectReason.CLOCK_SKEW,
        ),
        (
            f"{P}/sensors/d1/state",
            b'{"seq":1,"ts":"2026-11-20T07:59:00Z","occupied":true}',
            RejectReason.TOO_OLD,
        ),
        (f"{P}/sensors/d1/other", b"{}", RejectReason.WRONG_TOPIC),
        (f"{P}/sensors/bad id!/state", b"{}", RejectReason.WRONG_TOPIC),
        ("elsewhere/sensors/d1/state", b"{}", RejectReason.WRONG_TOPIC),
    ],
)
def test_bad_input_is_refused_with_a_reason(topic: str, payload: bytes, reason: RejectReason) -> None:
    """Each kind of bad input gets its own reason, and the payload is kept as text."""
    got = decode(topic, payload, P, NOW, LIMITS)
    assert isinstance(got, Rejection)
    assert got.reason is reason, got.detail
    assert got.received_at == NOW
    assert "\x00" not in got.payload


def test_an_upload_within_the_window_is_accepted() -> None:
    """Old readings within the history window are accepted (they go to history)."""
    payload = encode_state(5, NOW - timedelta(hours=71), False)
    assert isinstance(decode(f"{P}/sensors/d1/state", payload, P, NOW, LIMITS), SensorReading)


def test_payloads_are_truncated() -> None:
    """Huge payloads are kept truncated."""
    got = decode(f"{P}/sensors/d1/state", b"x" * 100_000, P, NOW, LIMITS)
    assert isinstance(got, Rejection)
    assert len(got.payload) == 1024


def test_parse_device_topic() -> None:
    """Topics map to (kind, device) under the prefix only."""
    assert parse_device_topic(f"{P}/sensors/d1/heartbeat", P) == DeviceTopic(Leaf.HEARTBEAT, "d1")
    assert parse_device_topic(f"{P}/devices/d1/presence", P) == DeviceTopic(Leaf.PRESENCE, "d1")
    assert parse_device_topic(f"{P}/gates/g1/plate", P) == DeviceTopic(Leaf.PLATE, "g1")
    assert parse_device_topic(f"{P}/gates/g1/command", P) is None  # the backend's, never a device's
    assert parse_device_topic(f"{P}/sensors/g1/plate", P) is None
    assert parse_device_topic(f"{P}x/sensors/d1/state", P) is None
    assert parse_device_topic(f"{P}/sensors//state", P) is None
    assert parse_device_topic(f"{P}/sensors/d1/state/x", P) is None
