"""The batched sensor path: inbox → decode → one transaction per batch → ack after commit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from device_gateway.availability import AvailabilityPublisher
from device_gateway.config import GatewaySettings
from device_gateway.decode import PresenceReport, Rejection, RejectReason, SensorReading, decode, reject
from device_gateway.inbox import Envelope, Inbox
from device_gateway.metrics import Metrics
from device_gateway.ports import BrokerLink, PoisonBatchError, SensorStore, StoreUnavailableError
from device_gateway.results import BatchResult

log = structlog.get_logger("device_gateway")
Decoded = tuple[list[SensorReading], list[PresenceReport], list[Rejection]]
STOP_GIVE_UP_S = 10.0  # on SIGTERM with the database down, leave the rest unacked for redelivery
# Messages decoded between two yields to the event loop. The gate path shares the loop: a plate read
# whose database answer arrives during a decode waits for it, so a slice (about 2 ms), not a batch
# of up to 2,000 messages (tens of ms), is the longest it waits (docs/gates.md, "Latency").
DECODE_SLICE = 64


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts at the same batch: doubling from *first_s* up to *max_s*."""

    first_s: float = 0.2
    max_s: float = 30.0

    def delays(self) -> Iterator[float]:
        """Yield the delay before each retry, for ever."""
        delay = self.first_s
        while True:
            yield delay
            delay = min(delay * 2, self.max_s)


@dataclass
class SensorWriter:
    """Drains the sensor inbox in batches; one batch commits while the next is decoded."""

    settings: GatewaySettings
    inbox: Inbox
    store: SensorStore
    link: BrokerLink
    metrics: Metrics
    availability: AvailabilityPublisher
    stop: asyncio.Event
    backoff: Backoff = field(default_factory=Backoff)
    name: str = "sensor-writer"

    def decode_batch(self, batch: Sequence[Envelope]) -> Decoded:
        """Decode a batch; refusals are values, never exceptions."""
        readings: list[SensorReading] = []
        presences: list[PresenceReport] = []
        rejections: list[Rejection] = []
        prefix, limits, received = self.settings.topic_prefix, self.settings.limits(), self.metrics.received
        for item in batch:
            received_at = datetime.fromtimestamp(item.received_at, UTC)
            got = decode(item.topic, item.payload, prefix, received_at, limits, item.size)
            if isinstance(got, SensorReading):
                readings.append(got)
                received[got.message] += 1
            elif isinstance(got, PresenceReport):
                presences.append(got)
                received["presence"] += 1
            else:
                rejections.append(got)
                received["invalid"] += 1
        return readings, presences, rejections

    async def decode_in_slices(self, batch: Sequence[Envelope]) -> Decoded:
        """Decode a batch DECODE_SLICE messages at a time, letting the event loop run in between."""
        readings: list[SensorReading] = []
        presences: list[PresenceReport] = []
        rejections: list[Rejection] = []
        for start in range(0, len(batch), DECODE_SLICE):
            if start:
                await asyncio.sleep(0)
            got = self.decode_batch(batch[start : start + DECODE_SLICE])
            readings += got[0]
            presences += got[1]
            rejections += got[2]
        return readings, presences, rejections

    async def commit_with_retry(
        self, batch: Sequence[Envelope], decoded: Decoded | None = None
    ) -> BatchResult | None:
        """Commit a batch, retrying while the store is unavailable; None if we gave up while stopping."""
        readings, presences, rejections = decoded or self.decode_batch(batch)
        started = time.monotonic()
        for delay in self.backoff.delays():
            try:
                return await self.store.write_batch(readings, presences, rejections, datetime.now(UTC))
            except StoreUnavailableError as exc:
                self.metrics.db_errors += 1
                log.warning("batch.retry", error=str(exc), rows=len(batch), retry_in_s=delay)
            if self.stop.is_set() and time.monotonic() - started > STOP_GIVE_UP_S:
                return None
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the back-off never ends")

    async def commit_isolating(
        self, batch: Sequence[Envelope], decoded: Decoded | None = None
    ) -> BatchResult | None:
        """Commit, splitting the batch around a message the database refuses (never expected)."""
        try:
            return await self.commit_with_retry(batch, decoded)
        except PoisonBatchError as exc:
            self.metrics.db_errors += 1
            if len(batch) == 1:
                return await self.record_poison(batch[0], exc)
            half = len(batch) // 2
            first = await self.commit_isolating(batch[:half])
            second = await self.commit_isolating(batch[half:])
            if first is None or second is None:
                return None
            return first.merge(second)

    async def record_poison(self, item: Envelope, exc: Exception) -> BatchResult | None:
        """Keep a message the database refused as an `unstorable` refusal; it is then acked.

        Validation should make this impossible; if it happens the message must neither block the
        stream nor vanish: its refusal row holds only text that can always be stored.
        """
        log.error("batch.poison", topic=item.topic[:256], error=str(exc))
        refusal = reject(
            item.topic,
            None,
            RejectReason.UNSTORABLE,
            f"the database refused it: {exc}",
            item.payload,
            datetime.fromtimestamp(item.received_at, UTC),
        )
        try:
            return await self.commit_with_retry([item], ([], [], [refusal]))
        except PoisonBatchError:
            log.exception("batch.poison_unrecorded", topic=item.topic[:256])
            self.metrics.unrecorded += 1
            return BatchResult()  # acked and dropped: it would block the stream forever

    def record(self, batch: Sequence[Envelope], result: BatchResult, started: float) -> None:
        """Update metrics after a committed batch."""
        m = self.metrics
        m.batches += 1
        m.accepted += result.accepted
        m.duplicates += result.duplicates
        m.status_changes += result.status_changes
        m.rejected += result.rejected
        m.batch_size.observe(len(batch))
        m.flush_seconds.observe(time.monotonic() - started)
        m.lag_seconds = time.time() - batch[0].received_at
        m.inbox_depth = len(self.inbox)
        m.inbox_bytes = self.inbox.held_bytes

    async def run(self) -> None:
        """Drain the inbox until stopped and empty: one batch commits while the next is decoded."""
        interval = self.settings.flush_interval_s
        in_flight: asyncio.Task[bool] | None = None
        try:
            while True:
                if self.stop.is_set():
                    self.inbox.close()
                batch = await self.inbox.next_batch(interval, self.stop)
                decoded = await self.decode_in_slices(batch) if batch else None
                if in_flight is not None and not await in_flight:
                    return  # gave up while stopping: the rest stays unacked for redelivery
                in_flight = None
                if not batch:
                    if self.stop.is_set():
                        return
                    continue
                in_flight = asyncio.create_task(self._commit_and_ack(batch, decoded))
        finally:
            if in_flight is not None:
                # Still running only if we were cancelled or failed: stop it, its messages stay unacked.
                in_flight.cancel()
                await asyncio.gather(in_flight, return_exceptions=True)

    async def _commit_and_ack(self, batch: list[Envelope], decoded: Decoded | None) -> bool:
        started = time.monotonic()
        try:
            result = await self.commit_isolating(batch, decoded)
            if result is None:
                log.warning("batch.abandoned", rows=len(batch))
                return False
            self.link.ack(batch)
        finally:
            self.inbox.done(batch)  # committed and acked, or left for redelivery: room either way
        self.record(batch, result, started)
        self.availability.update(result.lots)
        if result.rejected:
            log.info("batch.rejected", reasons=dict(result.rejected))
        return True
