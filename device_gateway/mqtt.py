"""The gateway's paho-mqtt client: persistent shared subscription, manual acks, TCP_NODELAY."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from device_gateway.config import GatewaySettings
from device_gateway.inbox import Envelope
from device_gateway.mqtt_buffered import BufferedClient
from device_gateway.ports import Receiver
from parking_core.topics import Leaf, subscriptions

log = structlog.get_logger("device_gateway.mqtt")

KEEPALIVE_S = 30  # the broker drops us after 1.5 × this without traffic; short enough to notice
OUTGOING_INFLIGHT = 1000  # availability publishes in flight at once (many lots change per batch)
PUBACK = 0x40
SESSION_TAKEN_OVER = 142  # MQTT 5 DISCONNECT reason: a client connected with the same client id
# Taken over sooner than this after our connect: the other process was there first and came back.
NEWCOMER_WINDOW_S = 10.0
# An MQTT 3.1.1/5 PUBACK without reason code: type, remaining length 2, packet id.
PUBACK_PACKET = struct.Struct("!BBH")


def set_nodelay(client: mqtt.Client) -> None:
    """Turn off Nagle on the client's socket: paho 2.x leaves it on (MACHINE-NOTES: 39 ms → 1 ms)."""
    sock = client.socket()
    if sock is not None and hasattr(sock, "setsockopt"):  # a socket, or a BufferedSocket around one
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class GatewayMqtt:
    """Routes received messages to receivers on paho's own thread; acks and publishes from anywhere.

    Each path of the gateway registers the topic leaves it takes with :meth:`route` before
    :meth:`start`; the client subscribes to exactly those (shared) and hands each message to the
    receiver of its leaf.
    """

    def __init__(
        self,
        settings: GatewaySettings,
        loop: asyncio.AbstractEventLoop,
        on_fatal: Callable[[str], None] | None = None,
    ) -> None:
        self._settings = settings
        self._loop = loop
        self._on_fatal = on_fatal
        self._connected_at = 0.0
        self._routes: dict[str, Receiver] = {}
        self._subscribed: set[str] = set()  # the routed leaves this process subscribes to
        self.generation = 0  # connections so far: a mid is only meaningful on its own connection
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()
        self.client = BufferedClient(
            CallbackAPIVersion.VERSION2,
            client_id=settings.gateway_client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        endpoint = settings.mqtt_endpoint()
        if endpoint.username:
            password = endpoint.password.get_secret_value() if endpoint.password else None
            self.client.username_pw_set(endpoint.username, password)
        self.client.reconnect_delay_set(1, int(settings.gateway_reconnect_max_s))
        self.client.max_inflight_messages_set(OUTGOING_INFLIGHT)
        self.client.max_queued_messages_set(0)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._host, self._port = endpoint.host, endpoint.port

    def route(self, leaves: Iterable[Leaf], receiver: Receiver, *, subscribe: bool = True) -> None:
        """Send messages of *leaves* (e.g. sensor ``state``) to *receiver*; call before :meth:`start`.

        With *subscribe* false the leaves are unsubscribed at every connect instead (other
        processes take them: ``--paths``); what the session still delivers of them is handled.
        """
        for leaf in leaves:
            if leaf.value in self._routes:
                raise ValueError(f"{leaf.value!r} messages already have a receiver")
            self._routes[leaf.value] = receiver
            if subscribe:
                self._subscribed.add(leaf.value)

    def start(self) -> None:
        """Connect in the background (paho's thread reconnects with back-off on its own)."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self._settings.gateway_session_expiry_s
        props.ReceiveMaximum = self._settings.gateway_receive_maximum
        self.client.connect_async(self._host, self._port, KEEPALIVE_S, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("mqtt.refused", reason=str(reason))
            return
        set_nodelay(client)
        self._connected_at = time.monotonic()
        self.generation += 1  # mids of earlier connections must not be acked on this one
        prefix, group = self._settings.topic_prefix, self._settings.gateway_share_group
        declined = tuple(Leaf(leaf) for leaf in sorted(set(self._routes) - self._subscribed))
        if declined:  # a persistent session keeps what it subscribed to under other --paths
            client.unsubscribe(subscriptions(prefix, group, declined))
        leaves = tuple(Leaf(leaf) for leaf in sorted(self._subscribed))
        # retainHandling 1: retained presence only when the subscription is new, not on every
        # reconnect of the persistent session (a million retained wills otherwise).
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        client.subscribe([(t, options) for t in subscriptions(prefix, group, leaves)])
        log.info("mqtt.connected", session_present=bool(flags.session_present), generation=self.generation)
        self._loop.call_soon_threadsafe(self.connected.set)

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: list[ReasonCode], _props: Any
    ) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("mqtt.subscribe_refused", reasons=refused)  # the broker's ACL or limits
            return
        log.info("mqtt.subscribed", routes=sorted(self._subscribed), generation=self.generation)
        self._loop.call_soon_threadsafe(self.subscribed.set)

    def _on_disconnect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        log.warning("mqtt.disconnected", reason=str(reason))
        self._loop.call_soon_threadsafe(self.connected.clear)
        self._loop.call_soon_threadsafe(self.subscribed.clear)
        if reason.value == SESSION_TAKEN_OVER:
            self._taken_over(client)

    def _taken_over(self, client: mqtt.Client) -> None:
        """Another client connected with our id: stop if we are the newcomer, else take it back once.

        The broker drops the older connection. The older process reconnects after paho's first
        back-off (1 s) and drops the newcomer in turn, so a takeover soon after our own connect
        means someone else was there first: we stop instead of flapping with them.
        """
        client_id = self._settings.gateway_client_id
        if time.monotonic() - self._connected_at > NEWCOMER_WINDOW_S:
            log.warning(
                "mqtt.session_taken_over", client_id=client_id, detail="reconnecting; the newcomer stops"
            )
            return
        message = (
            f"MQTT client id {client_id!r} is in use by another process (two gateways with one --slot or "
            "--client-id?); stopping instead of taking its session back and forth"
        )
        log.error("mqtt.client_id_in_use", client_id=client_id, detail=message)
        client.disconnect()  # no reconnect
        if self._on_fatal is not None:
            self._loop.call_soon_threadsafe(self._on_fatal, message)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        topic = msg.topic
        receiver = self._routes.get(topic[topic.rfind("/") + 1 :])
        if receiver is None:  # we subscribe only to routed leaves: a broker bug, left unacknowledged
            log.error("mqtt.unrouted", topic=topic[:200])
            return
        receiver.put(Envelope(topic, bytes(msg.payload), msg.mid, msg.qos, time.time(), self.generation))

    def ack(self, envelopes: Iterable[Envelope]) -> int:
        """Acknowledge committed messages received on the current connection; return how many.

        ``client.ack`` costs a wake-up of paho's thread and a socket write per message (with
        TCP_NODELAY one TCP segment each: a bare drain falls from 12k to 8k msg/s here). A batch's
        PUBACKs are therefore queued as one write through paho's own packet queue, the path
        ``client.ack`` itself takes; if a paho release renames it we fall back to ``client.ack``.
        """
        generation = self.generation
        mids = [e.mid for e in envelopes if e.qos == 1 and e.generation == generation]
        others = [e for e in envelopes if e.qos > 1 and e.generation == generation]
        queue = getattr(self.client, "_packet_queue", None)
        if mids and queue is not None:
            queue(PUBACK, b"".join(PUBACK_PACKET.pack(PUBACK, 2, mid) for mid in mids), 0, 1)
        else:
            for mid in mids:
                self.client.ack(mid, 1)
        for item in others:
            self.client.ack(item.mid, item.qos)
        return len(mids) + len(others)

    def publish(self, topic: str, payload: bytes, *, retain: bool = True) -> None:
        """Publish at QoS 1 (availability: retained)."""
        self.client.publish(topic, payload, qos=1, retain=retain)

    def stop(self) -> None:
        """Disconnect after the queued acks and publishes are written, and stop paho's thread.

        Then drop our callbacks: the client no longer refers back to us, so it is freed with the
        gateway (paho closes the socket pair of its network thread only when the client is freed).
        """
        self.client.disconnect()
        self.client.loop_stop()
        self.client.on_connect = self.client.on_disconnect = None
        self.client.on_message = self.client.on_subscribe = None
