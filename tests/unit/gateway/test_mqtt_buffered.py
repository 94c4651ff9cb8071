"""BufferedSocket hands paho exactly the bytes the socket delivered, in the sizes asked for."""

from __future__ import annotations

import socket

import pytest

from device_gateway.mqtt_buffered import BufferedSocket


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
