"""BufferedSocket hands paho the bytes the socket delivered; the short PUBLISH path, paho's message."""

from __future__ import annotations

import socket
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from device_gateway.mqtt_buffered import BufferedClient, BufferedSocket


def test_small_reads_are_served_from_one_large_read() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"\x30\x05hello\x40\x02\x00\x01")
        buffered = BufferedSocket(right)
        assert buffered.recv(1) == b"\x30"
        assert buffered.pending() == 10
        assert buffered.recv(1) == b"\x05"
        assert buffered.recv(5) == b"hello"
        assert buffered.recv(10) == b"\x40\x02\x00\x01"  # never more than is buffered
        assert buffered.pending() == 0


def test_an_empty_buffer_reads_the_socket_and_reports_its_state() -> None:
    left, right = socket.socketpair()
    with left, right:
        right.setblocking(False)
        buffered = BufferedSocket(right)
        with pytest.raises(BlockingIOError):  # paho's "nothing yet" (MQTT_ERR_AGAIN)
            buffered.recv(1)
        left.sendall(b"ab")
        assert buffered.recv(1) == b"a"
        left.close()
        assert buffered.recv(4) == b"b"
        assert buffered.recv(1) == b""  # closed: paho's MQTT_ERR_CONN_LOST
        assert buffered.fileno() == right.fileno()  # select() and setsockopt reach the socket


def _client(
    *, protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5, manual_ack: bool = True
) -> tuple[BufferedClient, list[Any]]:
    client = BufferedClient(
        CallbackAPIVersion.VERSION2, client_id="t", protocol=protocol, manual_ack=manual_ack
    )
    got: list[Any] = []
    client.on_message = lambda _c, _u, m: got.append(m)
    return client, got


def _publish_packet(topic: bytes, mid: int, payload: bytes, props: bytes = b"\x00") -> bytes:
    return len(topic).to_bytes(2, "big") + topic + mid.to_bytes(2, "big") + props + payload


def _load(client: BufferedClient, header: int, packet: bytes) -> None:
    client._in_packet["command"] = header  # paho's read state, as after reading a packet
    client._in_packet["packet"] = bytearray(packet)


def _deliver(client: BufferedClient, header: int, packet: bytes) -> None:
    _load(client, header, packet)
    assert client._handle_publish() == MQTTErrorCode.MQTT_ERR_SUCCESS


def _fields(m: mqtt.MQTTMessage) -> tuple[object, ...]:
    return (m.topic, m.mid, m.qos, m.dup, m.retain, m.payload)


@settings(max_examples=200)
@given(
    topic=st.text(min_size=1, max_size=80).filter(lambda t: "\x00" not in t),
    mid=st.integers(1, 65535),
    payload=st.binary(max_size=300),
    dup=st.booleans(),
    retain=st.booleans(),
)
def test_the_short_path_gives_paho_s_message(
    topic: str, mid: int, payload: bytes, dup: bool, retain: bool
) -> None:
    header = 0x30 | 0x02 | (0x08 if dup else 0) | (0x01 if retain else 0)
    packet = _publish_packet(topic.encode(), mid, payload)
    short, got_short = _client()
    _load(short, header, packet)
    assert short._plain_publish() is not None
    _deliver(short, header, packet)
    paho, got_paho = _client()
    paho.message_callback_add("never/matches/#", lambda *_a: None)  # forces paho's own path
    _deliver(paho, header, packet)
    assert [_fields(m) for m in got_short] == [_fields(m) for m in got_paho]
    assert got_short[0].properties is None


@pytest.mark.parametrize(
    ("header", "packet", "protocol", "manual_ack"),
    [
        (
            0x32,
            _publish_packet(b"a/b", 7, b"x", props=b"\x02\x01\x01"),
            MQTTProtocolVersion.MQTTv5,
            True,
        ),  # properties
        (0x30, b"\x00\x03a/b\x00x", MQTTProtocolVersion.MQTTv5, True),  # QoS 0
        (
            0x32,
            _publish_packet(b"", 7, b"x", props=b"\x03\x23\x00\x01"),
            MQTTProtocolVersion.MQTTv5,
            True,
        ),  # topic alias
        (0x32, _publish_packet(b"a/b", 7, b"x", props=b""), MQTTProtocolVersion.MQTTv311, True),  # MQTT 3.1.1
        (0x32, _publish_packet(b"a/b", 7, b"x"), MQTTProtocolVersion.MQTTv5, False),  # paho acks itself
    ],
)
def test_anything_else_takes_paho_s_path(
    header: int, packet: bytes, protocol: MQTTProtocolVersion, manual_ack: bool
) -> None:
    client, _ = _client(protocol=protocol, manual_ack=manual_ack)
    _load(client, header, packet)
    assert client._plain_publish() is None


def test_a_failing_callback_still_raises_unless_suppressed() -> None:
    client, _ = _client()

    def boom(*_a: object) -> None:
        raise ValueError("boom")

    client.on_message = boom
    packet = _publish_packet(b"a/b", 1, b"x")
    with pytest.raises(ValueError, match="boom"):
        _deliver(client, 0x32, packet)
    client.suppress_exceptions = True
    _deliver(client, 0x32, packet)
