"""Hostile payloads: oversized, unstorable or odd input is refused with a reason that can be stored."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from device_gateway.decode import Limits, Rejection, RejectReason, SensorReading, decode
from device_gateway.inbox import Envelope, Inbox

P = "parking/v1"
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
TS = "2026-11-23T08:00:00+00:00"


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop that is never run: the inbox only schedules its wake-ups on it."""
    new = asyncio.new_event_loop()
    yield new
    new.close()


def message(topic: str, payload: bytes, mid: int) -> Envelope:
    return Envelope(topic, payload, mid, 1, 0.0, 0)


def storable(rejection: Rejection) -> bool:
    texts = (rejection.topic, rejection.device_id or "", rejection.detail, rejection.payload)
    return not any("\x00" in t or any(0xD800 <= ord(c) <= 0xDFFF for c in t) for t in texts)


def test_nul_in_a_stored_field_is_refused_as_unstorable() -> None:
    """A NUL in `fw` (stored in devices.firmware) is an `unstorable` refusal, not a failed batch."""
    payload = f'{{"seq":1,"ts":"{TS}","occupied":true,"fw":"1.0\\u0000"}}'.encode()
    got = decode(f"{P}/sensors/d1/heartbeat", payload, P, NOW, Limits())
    assert isinstance(got, Rejection)
    assert got.reason is RejectReason.UNSTORABLE
    assert got.detail.startswith("fw:")
    assert storable(got)


@pytest.mark.parametrize(
    "payload",
    [
        f'{{"seq":1,"ts":"{TS}","occupied":true,"x\\u0000y":1}}'.encode(),  # NUL in a key: in the detail
        b'{"seq":1,"ts":"' + b"\x00" + b'","occupied":true}',  # a raw NUL: not JSON
        b"\xff\xfe\x00\x00garbage",
        b'{"seq":1,"ts":"2026-11-23T08:00:00Z","occupied":true,"\\ud800":1}',  # a lone surrogate
    ],
)
def test_unstorable_characters_never_reach_a_refusal_row(payload: bytes) -> None:
    """Whatever the payload holds, the refusal's topic, detail and payload are storable text."""
    got = decode(f"{P}/sensors/d1/heartbeat", payload, P, NOW, Limits())
    assert isinstance(got, Rejection)
    assert got.reason in {RejectReason.SCHEMA, RejectReason.NOT_JSON}
    assert storable(got)


def test_an_oversized_payload_is_refused_as_too_large() -> None:
    """Over the limit: `too_large`, naming the size; the kept payload is cut to 1 KiB."""
    payload = b'{"seq":1,"ts":"' + TS.encode() + b'","occupied":true}' + b" " * 10_000
    got = decode(f"{P}/sensors/d1/state", payload, P, NOW, Limits(max_payload_bytes=8192))
    assert isinstance(got, Rejection)
    assert got.reason is RejectReason.TOO_LARGE
    assert "10" in got.detail
    assert len(got.payload) <= 1024
    small = decode(f"{P}/sensors/d1/state", payload[:200], P, NOW, Limits(), size=200)
    assert isinstance(small, SensorReading)


def test_a_huge_topic_is_kept_cut_short() -> None:
    """A 60 kB topic is refused `wrong_topic` and stored as 256 characters."""
    got = decode(f"{P}/sensors/{'x' * 60_000}/state", b"{}", P, NOW, Limits())
    assert isinstance(got, Rejection)
    assert got.reason is RejectReason.WRONG_TOPIC
    assert len(got.topic) == 256


def test_a_cut_topic_never_becomes_a_valid_one(loop: asyncio.AbstractEventLoop) -> None:
    """The inbox cuts a long topic with an ellipsis, so a valid prefix cannot pass as the topic."""
    inbox = Inbox(loop, 10)
    tail = "/" + "x" * 1000
    inbox.put(message(f"{P}/sensors/d1/state{tail}", b"{}", 1))
    (item,) = inbox.take()
    got = decode(item.topic, item.payload, P, NOW, Limits(), item.size)
    assert isinstance(got, Rejection)
    assert got.reason is RejectReason.WRONG_TOPIC


def test_the_inbox_blocks_the_network_thread_when_full_and_resumes_when_room_is_made(
    loop: asyncio.AbstractEventLoop,
) -> None:
    """Past its bound `put` waits (paho stops reading); a committed batch makes room."""
    inbox = Inbox(loop, 100, max_messages=3, max_bytes=10_000_000, max_payload_bytes=100)
    for mid in range(3):
        inbox.put(message(f"{P}/sensors/d{mid}/state", b"x" * 10_000, mid))  # oversized: kept as 1 KiB
    assert inbox.held_bytes < 3 * 1500
    put_done = threading.Event()

    def network_thread() -> None:
        inbox.put(message(f"{P}/sensors/d9/state", b"{}", 9))
        put_done.set()

    blocked = threading.Thread(target=network_thread)
    blocked.start()
    assert not put_done.wait(0.3)  # full: the fourth message waits
    inbox.done(inbox.take())
    assert put_done.wait(5)
    blocked.join()
    assert [e.mid for e in inbox.take()] == [9]


def test_closing_releases_a_blocked_network_thread(loop: asyncio.AbstractEventLoop) -> None:
    """On shutdown a waiting `put` returns at once and its message stays unacknowledged."""
    inbox = Inbox(loop, 100, max_messages=1)
    inbox.put(message(f"{P}/sensors/d0/state", b"{}", 0))
    blocked = threading.Thread(target=inbox.put, args=(message(f"{P}/sensors/d1/state", b"{}", 1),))
    blocked.start()
    inbox.close()
    blocked.join(5)
    assert not blocked.is_alive()
    assert [e.mid for e in inbox.take()] == [0]
