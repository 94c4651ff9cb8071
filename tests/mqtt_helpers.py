"""Small synchronous paho helpers for tests: connect, collect messages, wait for a condition."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from parking_core.adapters.settings import MqttEndpoint

WAIT_S = 10.0  # generous: a loaded CI box may be slow, and nothing here is a timing assertion


def wait_until(condition: Callable[[], bool], timeout_s: float = WAIT_S) -> bool:
    """Poll *condition* until it holds or *timeout_s* passes; return its last value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@dataclass
class Collector:
    """A connected MQTT v5 client that records what it receives and how its connect went."""

    client: mqtt.Client
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    connect_reason: ReasonCode | None = None
    connected: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()


def connect(
    url: str,
    username: str | None = None,
    password: str | None = None,
    client_id: str = "",
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5,
) -> Collector:
    """Connect to the broker of *url* (credentials from the URL unless given) and start its loop."""
    endpoint = MqttEndpoint.from_url(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    user = username if username is not None else endpoint.username
    secret = (
        password
        if password is not None
        else (endpoint.password.get_secret_value() if endpoint.password else None)
    )
    client.username_pw_set(user, secret)
    collector = Collector(client)

    def on_connect(_c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        collector.connect_reason = reason
        collector.connected.set()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        collector.messages.append((message.topic, bytes(message.payload)))

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    collector.connected.wait(WAIT_S)
    return collector
