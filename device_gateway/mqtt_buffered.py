"""A paho client that reads its socket in large chunks and takes the common PUBLISH by a short path."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

READ_CHUNK = 256 * 1024  # bytes asked of the kernel per recv (about 1,500 sensor messages)


class BufferedSocket:
    """Wraps a (TLS) socket; ``recv(n)`` is served from one large read, ``pending`` says what is left.

    paho reads each packet as recv(1) for the command, recv(1) per length byte and recv(n) for the
    rest, each after a select: four or five system calls per message (MACHINE-NOTES' bare paho
    drain). paho's loop already skips the select wait while ``pending()`` is positive (its TLS path).
    """

    __slots__ = ("_buf", "_pos", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, size: int) -> bytes:
        """Return up to *size* bytes, reading the socket only when the buffer is empty."""
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            buf = bytes(self._sock.recv(max(size, READ_CHUNK)))  # BlockingIOError etc. reach paho as before
            if not buf:
                return buf
            pos = 0
        end = min(pos + size, len(buf))
        self._buf, self._pos = buf, end
        return buf[pos:end]

    def pending(self) -> int:
        """Return the bytes received but not yet handed to paho (TLS: plus the TLS layer's)."""
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buf) - self._pos + int(inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class BufferedClient(mqtt.Client):
    """paho's client over a :class:`BufferedSocket`, reading every buffered packet per wake-up.

    A sensor message (MQTT 5, QoS 1, manual acks, no properties, no per-topic callbacks, no paho
    logging) takes a short path to ``on_message``: paho's own builds a ``Properties`` object per
    message (two dicts of 27 entries, then 27 ``hasattr`` to clear them), matches the topic against
    an empty filter tree and formats a debug line; about a fifth of its thread's time in a drain.
    Such a message's ``properties`` is None (it had none). Anything else takes paho's path.

    Relies on paho 2.x's own ``_create_socket``, ``loop_read``, ``_handle_publish`` and the fields
    they use; the rest of the protocol, acks and reconnects are paho's unchanged.
    """

    _filtered = False  # a per-topic callback was added: always paho's path

    def _create_socket(self) -> Any:
        sock = super()._create_socket()
        if self._transport == "websockets":
            return sock
        return BufferedSocket(sock)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read packets until the buffer is empty (paho reads one per select otherwise)."""
        rc = super().loop_read(max_packets)
        sock = self._sock
        ok = MQTTErrorCode.MQTT_ERR_SUCCESS
        while rc == ok and isinstance(sock, BufferedSocket) and sock.pending():
            rc = super().loop_read(max_packets)
            if self._sock is not sock:
                break
        return rc

    def message_callback_add(self, sub: str, callback: Any) -> None:
        """Add a per-topic callback (paho's); from then on every message takes paho's path."""
        self._filtered = True
        super().message_callback_add(sub, callback)

    def _handle_publish(self) -> MQTTErrorCode:
        message = self._plain_publish()
        if message is None:
            return super()._handle_publish()
        on_message = self.on_message
        if on_message is not None:
            with self._in_callback_mutex:
                try:
                    on_message(self, self._userdata, message)
                except Exception:
                    if not self.suppress_exceptions:
                        raise
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _plain_publish(self) -> mqtt.MQTTMessage | None:
        """Return the message of a QoS 1 PUBLISH without properties, if the short path may take it."""
        header: int = self._in_packet["command"]
        packet: bytes | bytearray = self._in_packet["packet"]
        if (
            (header & 0x06) != 0x02  # QoS 1
            or self._protocol != MQTTProtocolVersion.MQTTv5
            or not self._manual_ack
            or self._filtered
            or self.on_log is not None
            or self._logger is not None
            or len(packet) < 5
        ):
            return None
        topic_end = 2 + ((packet[0] << 8) | packet[1])
        props_at = topic_end + 2  # after the packet id
        if topic_end == 2 or len(packet) <= props_at or packet[props_at] != 0:
            return None  # empty topic (an alias) or properties: paho's path
        message = mqtt.MQTTMessage(
            mid=(packet[topic_end] << 8) | packet[topic_end + 1], topic=bytes(packet[2:topic_end])
        )
        message.dup = bool(header & 0x08)
        message.qos = 1
        message.retain = bool(header & 0x01)
        message.payload = bytes(packet[props_at + 1 :])
        message.timestamp = mqtt.time_func()
        return message
