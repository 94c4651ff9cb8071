"""Hand-off from paho's network thread to the asyncio writer: one append per message, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from device_gateway.decode import PAYLOAD_KEEP_BYTES, TOPIC_KEEP_CHARS

ENVELOPE_OVERHEAD_BYTES = 200  # an Envelope, its two objects' headers and the list slot, roughly
WAIT_SLICE_S = 0.5  # a blocked network thread re-checks `closed` this often


@dataclass(slots=True)
class Envelope:
    """One received message and what is needed to acknowledge it after commit."""

    topic: str
    payload: bytes  # cut to PAYLOAD_KEEP_BYTES by the inbox when over the size limit
    mid: int
    qos: int
    received_at: float  # wall clock, seconds since the epoch
    generation: int  # connection it arrived on: a mid is only meaningful on that connection
    size: int = -1  # the payload's size as received, when the inbox cut it (-1: len(payload))

    @property
    def cost(self) -> int:
        """Return the bytes this message holds while it waits (what the inbox bound counts)."""
        return len(self.payload) + len(self.topic) + ENVELOPE_OVERHEAD_BYTES


class Inbox:
    """A locked list filled by paho's thread and drained in batches by the writer.

    Bounded: at most *max_messages* messages and *max_bytes* bytes are held from arrival until
    their batch is committed (or abandoned): see :meth:`done`. When full, ``put`` blocks paho's
    network thread, which then stops reading the socket: the broker keeps the rest in our persistent
    session. The broker's side of the bound is the MQTT 5 receive maximum we announce (it never
    sends more unacknowledged messages than that), so with the defaults ``put`` blocks only when the
    bytes run out (large payloads during a database outage).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        batch_rows: int,
        *,
        max_messages: int = 10_000,
        max_bytes: int = 32 * 1024 * 1024,
        max_payload_bytes: int = 8192,
    ) -> None:
        self._loop = loop
        self._batch_rows = batch_rows
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._max_payload = max_payload_bytes
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._items: list[Envelope] = []
        self._held_messages = 0  # waiting here or in a batch not yet committed
        self._held_bytes = 0
        self.peak_bytes = 0
        self._nonempty = asyncio.Event()
        self._full = asyncio.Event()
        self._closed = False  # set on shutdown: later messages stay unacknowledged for redelivery

    @property
    def closed(self) -> bool:
        """Tell whether the inbox stopped taking messages."""
        return self._closed

    def close(self) -> None:
        """Take no more messages (a blocked ``put`` returns): the broker keeps later ones for us."""
        with self._space:
            self._closed = True
            self._space.notify_all()

    def put(self, item: Envelope) -> None:
        """Add a message (called on paho's thread); wakes the writer only on edges.

        An oversized payload is kept only as far as its refusal records it, a long topic cut with
        an ellipsis (never a valid device topic then); blocks while the inbox is full.
        """
        if len(item.payload) > self._max_payload:
            item.size, item.payload = len(item.payload), item.payload[:PAYLOAD_KEEP_BYTES]
        if len(item.topic) > TOPIC_KEEP_CHARS:
            item.topic = item.topic[:TOPIC_KEEP_CHARS] + "…"
        cost = item.cost
        with self._space:
            while (
                not self._closed
                and self._held_messages
                and (self._held_messages >= self._max_messages or self._held_bytes + cost > self._max_bytes)
            ):
                self._space.wait(WAIT_SLICE_S)
            if self._closed:
                return
            self._items.append(item)
            self._held_messages += 1
            self._held_bytes += cost
            self.peak_bytes = max(self.peak_bytes, self._held_bytes)
            size = len(self._items)
        if size == 1:
            self._loop.call_soon_threadsafe(self._nonempty.set)
        if size == self._batch_rows:
            self._loop.call_soon_threadsafe(self._full.set)

    def done(self, batch: Iterable[Envelope]) -> None:
        """Release the room held by a committed (or abandoned) batch."""
        items = list(batch)
        with self._space:
            self._held_messages -= len(items)
            self._held_bytes -= sum(item.cost for item in items)
            self._space.notify_all()

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def held_bytes(self) -> int:
        """Return the bytes held from arrival to commit."""
        with self._lock:
            return self._held_bytes

    def oldest(self) -> float | None:
        """Return the receipt time of the oldest waiting message."""
        with self._lock:
            return self._items[0].received_at if self._items else None

    async def next_batch(self, flush_interval_s: float, stop: asyncio.Event) -> list[Envelope]:
        """Wait for a batch: full, or the oldest message waited *flush_interval_s*, or stopping."""
        if not len(self):
            nonempty = asyncio.ensure_future(self._nonempty.wait())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({nonempty, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:  # also when we are cancelled: no waiter outlives the call
                nonempty.cancel()
                stopping.cancel()
        oldest = self.oldest()
        if oldest is not None and not stop.is_set() and len(self) < self._batch_rows:
            remaining = oldest + flush_interval_s - time.time()
            if remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), remaining)
        return self.take()

    def take(self) -> list[Envelope]:
        """Remove and return up to one batch, re-arming the wake-up events (loop thread only)."""
        with self._lock:
            batch = self._items[: self._batch_rows]
            del self._items[: self._batch_rows]
            left = len(self._items)
        if left == 0:
            self._nonempty.clear()
        if left < self._batch_rows:
            self._full.clear()
        return batch
