"""Check at start what the broker will do to a backlog: queue limit, in-flight window, CONNACK limits."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from parking_core.adapters.settings import MqttEndpoint

CONNECT_TIMEOUT_S = 10.0
# No new message for this long: the broker has sent all it is going to send. Generous, so that a
# loaded machine is not mistaken for a limit; a broker without limits never waits for it.
QUIET_S = 1.0
PROBE_EXPIRY_S = 60  # the probe's session and messages vanish on their own if we die mid-check
SMALLEST_USEFUL_PACKET = 4096  # contract payloads are hundreds of bytes; less than this cuts some
# The gateway publishes availability for every lot a batch changed (up to hundreds at once).
USEFUL_RECEIVE_MAXIMUM = 100
# The burst: two batches (one commits while the next fills), and never less than twice Mosquitto's
# default queue (1000), which is what a forgotten configuration leaves.
MIN_BURST = 2001


class BrokerCheckError(RuntimeError):
    """The broker could not be checked (refused the connection, the subscription, or timed out)."""


@dataclass
class BrokerReport:
    """What the broker did with a burst queued for an offline session of ours."""

    burst: int
    kept: int = 0  # messages the broker queued for the offline session and delivered later
    window: int = 0  # messages it sent before waiting for our acknowledgements
    receive_maximum: int | None = None  # CONNACK: QoS 1 messages it accepts in flight from us
    maximum_packet_size: int | None = None  # CONNACK: largest packet it accepts
    problems: list[str] = field(default_factory=list)  # data is lost or ingestion crawls
    warnings: list[str] = field(default_factory=list)


def check_broker(url: str, topic_root: str, batch_rows: int, client_id: str = "") -> BrokerReport:
    """Queue a burst of QoS 1 messages for an offline session of ours, resume it, and judge.

    The burst goes to a private topic under *topic_root*; the probe session expires by itself.
    The fix for every problem is in the message (deploy/mosquitto/mosquitto.conf has them all).
    """
    endpoint = MqttEndpoint.from_url(url)
    nonce = secrets.token_hex(4)
    probe_id = f"{client_id or 'parking'}-check-{nonce}"[-64:]
    topic = f"{topic_root}/broker-check/{nonce}"
    report = BrokerReport(burst=max(2 * batch_rows, MIN_BURST))
    probe = _Probe(endpoint, probe_id)
    try:
        probe.connect(clean_start=True)
        report.receive_maximum, report.maximum_packet_size = probe.limits
        probe.subscribe(topic)
        probe.disconnect()
        _publish_burst(endpoint, topic, report.burst)
        probe.connect(clean_start=False)
        report.window = probe.wait_quiet(report.burst)
        probe.ack_all()
        report.kept = probe.wait_quiet(report.burst)
        probe.ack_all()
    finally:
        probe.close()
    _judge(report, batch_rows)
    return report


def _judge(report: BrokerReport, batch_rows: int) -> None:
    if report.kept < report.burst:
        report.problems.append(
            f"the broker kept only {report.kept} of {report.burst} messages queued for an offline session: "
            "readings sent while a gateway is down are dropped. Set `max_queued_messages 0` and a "
            "`max_queued_bytes` sized for the outage to ride out (Mosquitto's default is 1000 messages)"
        )
    elif report.window < batch_rows:
        report.problems.append(
            f"the broker sends only {report.window} messages before waiting for acknowledgements, "
            f"and the gateway acknowledges after committing batches of {batch_rows}: ingestion "
            "crawls. Set `max_inflight_messages 0` (Mosquitto's default is 20)"
        )
    if report.receive_maximum is not None and report.receive_maximum < USEFUL_RECEIVE_MAXIMUM:
        report.warnings.append(
            f"the broker takes only {report.receive_maximum} QoS 1 publishes in flight from a client: "
            "availability updates wait in the gateway. Set `max_inflight_messages 0`"
        )
    if report.maximum_packet_size is not None and report.maximum_packet_size < SMALLEST_USEFUL_PACKET:
        report.warnings.append(
            f"the broker accepts packets of at most {report.maximum_packet_size} bytes: "
            f"raise `max_packet_size` to at least {SMALLEST_USEFUL_PACKET}"
        )


def _publish_burst(endpoint: MqttEndpoint, topic: str, count: int) -> None:
    client = _client(endpoint, "")
    client.max_inflight_messages_set(min(count, 1000))
    client.max_queued_messages_set(0)
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.MessageExpiryInterval = PROBE_EXPIRY_S
    client.connect(endpoint.host, endpoint.port)
    client.loop_start()
    try:
        if not connected.wait(CONNECT_TIMEOUT_S):
            raise BrokerCheckError("the broker did not answer the burst publisher's CONNECT")
        infos = [client.publish(topic, b"{}", qos=1, properties=props) for _ in range(count)]
        for info in infos:
            info.wait_for_publish(CONNECT_TIMEOUT_S)
            if not info.is_published():
                raise BrokerCheckError("the broker did not acknowledge the burst (backend ACL `#`?)")
    finally:
        client.disconnect()
        client.loop_stop()


def _client(endpoint: MqttEndpoint, client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5, manual_ack=manual_ack
    )
    if endpoint.username:
        password = endpoint.password.get_secret_value() if endpoint.password else None
        client.username_pw_set(endpoint.username, password)
    return client


class _Probe:
    """A persistent MQTT 5 session that records what it receives and acknowledges only when told."""

    def __init__(self, endpoint: MqttEndpoint, client_id: str) -> None:
        self._endpoint = endpoint
        self._client_id = client_id
        self._client = self._new_client()
        self._lock = threading.Lock()
        self._mids: list[int] = []
        self._received = 0
        self._event = threading.Event()
        self._reason: ReasonCode | None = None
        self.limits: tuple[int | None, int | None] = (None, None)
        self._running = False

    def _new_client(self) -> mqtt.Client:
        # One paho client per connection: a second loop_start on one client leaks its socket pair.
        client = _client(self._endpoint, self._client_id, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_args: self._event.set()
        client.on_message = self._on_message
        return client

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, props: Any) -> None:
        self._reason = reason
        receive = getattr(props, "ReceiveMaximum", None)
        packet = getattr(props, "MaximumPacketSize", None)
        self.limits = (receive, packet)
        self._event.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self._mids.append(message.mid)
            self._received += 1

    def connect(self, *, clean_start: bool) -> None:
        """Connect (ReceiveMaximum 65535, like the gateway) and wait for CONNACK."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = PROBE_EXPIRY_S
        props.ReceiveMaximum = 65535
        self._event.clear()
        if self._running or self._client.is_connected():
            raise BrokerCheckError("the probe is already connected")
        self._client = self._new_client()
        self._client.connect(
            self._endpoint.host, self._endpoint.port, clean_start=clean_start, properties=props
        )
        self._client.loop_start()
        self._running = True
        if not self._event.wait(CONNECT_TIMEOUT_S) or self._reason is None:
            raise BrokerCheckError("the broker did not answer CONNECT")
        if self._reason.is_failure:
            raise BrokerCheckError(f"the broker refused the check's connection: {self._reason}")

    def subscribe(self, topic: str) -> None:
        """Subscribe at QoS 1 and wait for SUBACK."""
        self._event.clear()
        self._client.subscribe(topic, qos=1)
        if not self._event.wait(CONNECT_TIMEOUT_S):
            raise BrokerCheckError("the broker did not answer SUBSCRIBE")

    def wait_quiet(self, expected: int) -> int:
        """Wait until *expected* messages arrived or none came for a while; return how many so far."""
        last, deadline = -1, time.monotonic() + CONNECT_TIMEOUT_S
        while True:
            with self._lock:
                received = self._received
            if received >= expected or (received == last and time.monotonic() > deadline):
                return received
            if received != last:
                last, deadline = received, time.monotonic() + QUIET_S
            time.sleep(0.02)

    def ack_all(self) -> None:
        """Acknowledge every message received so far."""
        with self._lock:
            mids, self._mids = self._mids, []
        for mid in mids:
            self._client.ack(mid, 1)

    def disconnect(self) -> None:
        """Disconnect, keeping the session."""
        self._client.disconnect()
        self._client.loop_stop()
        self._running = False

    def close(self) -> None:
        """Disconnect and end the session now (session expiry 0 on DISCONNECT)."""
        if self._running:
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
            self._client.disconnect(properties=props)
            self._client.loop_stop()
            self._running = False
