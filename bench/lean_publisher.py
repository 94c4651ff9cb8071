"""A lean QoS 1 publisher for benchmark streams: MQTT 3.1.1 packets written straight to a socket.

The load generator shares the two cores with what it measures. paho's QoS 1 publish is costly (a
message object, locks, its network thread): about half a core at 3,000 msg/s, which the gateway, the
database and the API then lack, and a source of noise between runs. This client encodes
each PUBLISH itself, writes them in bursts and counts PUBACKs by their fixed size, with a window of
unacknowledged messages; it does nothing else (no retries, no reconnection: a benchmark that loses
its broker has failed anyway).
"""

from __future__ import annotations

import socket
import struct
import time

from parking_core.adapters.settings import MqttEndpoint

CONNECT_TIMEOUT_S = 10.0
PUBACK = b"\x40\x02"  # MQTT 3.1.1 PUBACK: type 4, remaining length 2, then the packet id
PUBACK_SIZE = 4


class LeanPublisherError(RuntimeError):
    """The broker refused the connection or went away."""


def _length(n: int) -> bytes:
    """Return MQTT's variable-length encoding of a remaining length."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, username: str | None, password: str | None) -> bytes:
    """Return a clean-session MQTT 3.1.1 CONNECT with a 60 s keep-alive."""
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = _string("MQTT") + bytes([4, flags]) + struct.pack("!H", 60) + _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _string(password)
    return b"\x10" + _length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """Return a QoS 1 PUBLISH of *payload* to *topic* with *packet_id* (1-65535)."""
    head = _string(topic) + struct.pack("!H", packet_id)
    return b"\x32" + _length(len(head) + len(payload)) + head + payload


class LeanPublisher:
    """One connection; ``publish`` queues, ``flush`` writes and collects PUBACKs, ``close`` waits for all."""

    def __init__(self, endpoint: MqttEndpoint, client_id: str, window: int = 2000) -> None:
        self.window = window
        self.unacked = 0
        self._next_id = 0
        self._out = bytearray()
        self._acks = bytearray()
        self._sock = socket.create_connection((endpoint.host, endpoint.port), timeout=CONNECT_TIMEOUT_S)
        try:
            self._connect(endpoint, client_id)
        except BaseException:
            self._sock.close()
            raise
        self._sock.settimeout(None)  # blocking: MSG_DONTWAIT reads do not wait, the others do

    def _connect(self, endpoint: MqttEndpoint, client_id: str) -> None:
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        secret = endpoint.password.get_secret_value() if endpoint.password else None
        self._sock.sendall(connect_packet(client_id, endpoint.username, secret))
        connack = self._read_exactly(4)
        if connack[0] != 0x20 or connack[3] != 0:
            raise LeanPublisherError(f"broker refused the connection: CONNACK {connack.hex()}")

    def _read_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise LeanPublisherError("the broker closed the connection")
            data += chunk
        return data

    def publish(self, topic: str, payload: bytes) -> None:
        """Queue one QoS 1 message (written by the next ``flush``)."""
        self._next_id = self._next_id % 65535 + 1
        self._out += publish_packet(topic, payload, self._next_id)
        self.unacked += 1

    def _take_acks(self, *, block: bool) -> None:
        try:
            chunk = self._sock.recv(65536, 0 if block else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        if not chunk:
            raise LeanPublisherError("the broker closed the connection")
        self._acks += chunk
        whole = len(self._acks) // PUBACK_SIZE * PUBACK_SIZE
        self.unacked -= whole // PUBACK_SIZE
        del self._acks[:whole]

    def flush(self) -> None:
        """Write what is queued, collect the PUBACKs that arrived, and wait while the window is full."""
        if self._out:
            self._sock.sendall(self._out)
            self._out.clear()
        self._take_acks(block=False)
        while self.unacked > self.window:
            self._take_acks(block=True)

    def close(self, timeout_s: float = 30.0) -> None:
        """Write the rest, wait for every PUBACK (up to *timeout_s*), disconnect."""
        self.flush()
        deadline = time.monotonic() + timeout_s
        self._sock.settimeout(1.0)
        while self.unacked > 0 and time.monotonic() < deadline:
            try:
                self._take_acks(block=True)
            except TimeoutError:
                continue
        try:
            self._sock.sendall(b"\xe0\x00")  # DISCONNECT
        finally:
            self._sock.close()
        if self.unacked > 0:
            raise LeanPublisherError(f"{self.unacked} messages unacknowledged after {timeout_s:.0f} s")
