"""A paho client that reads its socket in large chunks: one recv per many messages, not four each."""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

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

    Relies on two of paho 2.x's own methods (``_create_socket``, ``loop_read``); the rest of the
    protocol, acks and reconnects are paho's unchanged.
    """

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
