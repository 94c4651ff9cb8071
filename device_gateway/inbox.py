"""Hand-off from paho's network thread to the asyncio writer: one append per message, no futures."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass


@dataclass(slots=True)
class Envelope:
    """One received message and what is needed to acknowledge it after commit."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: float  # wall clock, seconds since the epoch
    generation: int  # connection it arrived on: a mid is only meaningful on that connection


class Inbox:
    """A locked list filled by paho's thread and drained in batches by the writer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, batch_rows: int) -> None:
        self._loop = loop
        self._batch_rows = batch_rows
        self._lock = threading.Lock()
        self._items: list[Envelope] = []
        self._nonempty = asyncio.Event()
        self._full = asyncio.Event()
        self.closed = False  # set on shutdown: later messages stay unacknowledged for redelivery

    def put(self, item: Envelope) -> None:
        """Add a message (called on paho's thread); wakes the writer only on edges."""
        if self.closed:
            return
        with self._lock:
            self._items.append(item)
            size = len(self._items)
        if size == 1:
            self._loop.call_soon_threadsafe(self._nonempty.set)
        if size == self._batch_rows:
            self._loop.call_soon_threadsafe(self._full.set)

    def close(self) -> None:
        """Take no more messages: the broker keeps later ones for the next connection."""
        self.closed = True

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

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
