"""The shipped Mosquitto config: devices over TLS with their own credentials, plain text refused."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from parking_core.topics import sensor_topic
from tests.integration.deploy.shipped_broker import ShippedBroker
from tests.mqtt_helpers import WAIT_S, connect, wait_until

pytestmark = [
    pytest.mark.mqtt,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShippedBroker]:
    """Run Mosquitto with the shipped config and a throwaway CA."""
    started = ShippedBroker(Path(tmp_path_factory.mktemp("shipped-broker"))).start()
    yield started
    started.stop()


def _field(value: str) -> bytes:
    raw = value.encode()
    return len(raw).to_bytes(2, "big") + raw


def connect_packet(client_id: str, username: str, password: str) -> bytes:
    """Return an MQTT 3.1.1 CONNECT packet with user name and password (clean session)."""
    body = _field("MQTT") + bytes([4, 0xC2]) + (60).to_bytes(2, "big")
    body += _field(client_id) + _field(username) + _field(password)
    assert len(body) < 128  # one-byte remaining length
    return bytes([0x10, len(body)]) + body


def first_reply(sock: socket.socket | ssl.SSLSocket, packet: bytes) -> bytes:
    """Send *packet* and return the first bytes the broker answers (b"" when it hangs up)."""
    sock.settimeout(WAIT_S)
    sock.sendall(packet)
    try:
        return sock.recv(4)
    except (ConnectionResetError, ssl.SSLError):
        return b""


def tls_context(ca_file: Path) -> ssl.SSLContext:
    """Return a client context trusting only the throwaway CA."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.check_hostname = True
    return context


def test_a_device_connects_over_tls_with_its_own_credentials(broker: ShippedBroker) -> None:
    """The raw CONNECT gets CONNACK 0 over TLS (which also proves the packet is well formed)."""
    raw = socket.create_connection(("127.0.0.1", broker.device_port))
    with tls_context(broker.ca_file).wrap_socket(raw, server_hostname="localhost") as sock:
        reply = first_reply(sock, connect_packet(broker.device_id, broker.device_id, broker.device_password))
    assert reply == bytes([0x20, 2, 0, 0]), reply


def test_plain_text_to_the_device_listener_is_refused(broker: ShippedBroker) -> None:
    """The same CONNECT without TLS gets no CONNACK: the broker hangs up."""
    with socket.create_connection(("127.0.0.1", broker.device_port)) as sock:
        reply = first_reply(sock, connect_packet(broker.device_id, broker.device_id, broker.device_password))
    assert reply == b""


def test_a_wrong_password_over_tls_is_refused(broker: ShippedBroker) -> None:
    """TLS alone lets nobody in: CONNACK 5 (not authorised) for a wrong password."""
    raw = socket.create_connection(("127.0.0.1", broker.device_port))
    with tls_context(broker.ca_file).wrap_socket(raw, server_hostname="localhost") as sock:
        reply = first_reply(sock, connect_packet(broker.device_id, broker.device_id, "wrong"))
    assert reply[:1] == b"\x20"
    assert reply[3] != 0


def test_a_tls_device_reading_reaches_the_backend_listener(broker: ShippedBroker) -> None:
    """paho over TLS publishes on its own topic; the backend, on the private listener, receives it."""
    backend = connect(broker.backend_url)
    topic = sensor_topic(broker.prefix, broker.device_id, "state")
    subscribed = threading.Event()
    backend.client.on_subscribe = lambda *_args: subscribed.set()
    backend.client.subscribe(topic, qos=1)
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=broker.device_id, protocol=mqtt.MQTTv311)
    device.username_pw_set(broker.device_id, broker.device_password)
    device.tls_set_context(tls_context(broker.ca_file))
    try:
        assert subscribed.wait(WAIT_S)
        device.connect("localhost", broker.device_port)
        device.loop_start()
        payload = json.dumps({"seq": 1, "ts": "2026-11-30T08:00:00+08:00", "occupied": True}).encode()
        device.publish(topic, payload, qos=1).wait_for_publish(WAIT_S)
        assert wait_until(lambda: (topic, payload) in backend.messages)
    finally:
        device.disconnect()
        device.loop_stop()
        backend.close()
