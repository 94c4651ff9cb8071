"""The gateway's composition root: MQTT in, batches to PostgreSQL, acks after commit, sweeps."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from device_gateway.availability import AvailabilityPublisher
from device_gateway.config import GatewaySettings
from device_gateway.decode import PresenceReport, Rejection, SensorReading, decode
from device_gateway.inbox import Envelope, Inbox
from device_gateway.metrics import Metrics, start_metrics_server
from device_gateway.mqtt import GatewayMqtt
from device_gateway.store import BatchResult, prepare_connection, write_batch
from device_gateway.sweeps import recount_lots, sample_active_lots, sweep_silent

log = structlog.get_logger("device_gateway")
Decoded = tuple[list[SensorReading], list[PresenceReport], list[Rejection]]

# Errors after which the same batch is simply tried again: the database went away or two
# writers collided. Only data errors (SQLSTATE classes 22 and 23) mean a poison message: then the
# batch is split to isolate it. Any other database error (disk full, permissions…) is retried
# too: dropping messages because of the environment would lose good data.
POISON = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
TRANSIENT = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    TimeoutError,
)
STOP_GIVE_UP_S = 10.0  # on SIGTERM with the database down, leave the rest unacked for redelivery
AVAILABILITY_TICK_S = 0.1


async def open_pool(settings: GatewaySettings, stop: asyncio.Event) -> asyncpg.Pool | None:
    """Connect to PostgreSQL, retrying with exponential back-off until it answers or we stop."""
    delay = 0.5
    while not stop.is_set():
        try:
            return await asyncpg.create_pool(
                settings.database_url, min_size=2, max_size=3, init=prepare_connection
            )
        except TRANSIENT as exc:
            log.warning("db.unavailable", error=str(exc), retry_in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, settings.gateway_reconnect_max_s)
    return None


class Gateway:
    """One gateway process's moving parts."""

    def __init__(self, settings: GatewaySettings, pool: asyncpg.Pool, stop: asyncio.Event) -> None:
        self.settings = settings
        self.pool = pool
        self.stop = stop
        self.metrics = Metrics()
        self.loop = asyncio.get_running_loop()
        self.inbox = Inbox(self.loop, settings.gateway_batch_rows)
        self.mqtt = GatewayMqtt(settings, self.inbox, self.loop)
        self.availability = AvailabilityPublisher(
            settings.topic_prefix, settings.gateway_availability_interval_s, self._publish
        )
        self.limits = settings.limits()

    def _publish(self, topic: str, payload: bytes) -> None:
        self.mqtt.publish(topic, payload)
        self.metrics.availability_published += 1

    def decode_batch(
        self, batch: Sequence[Envelope]
    ) -> tuple[list[SensorReading], list[PresenceReport], list[Rejection]]:
        """Decode a batch; refusals are values, never exceptions."""
        readings: list[SensorReading] = []
        presences: list[PresenceReport] = []
        rejections: list[Rejection] = []
        prefix, limits, received = self.settings.topic_prefix, self.limits, self.metrics.received
        for item in batch:
            got = decode(
                item.topic, item.payload, prefix, datetime.fromtimestamp(item.received_at, UTC), limits
            )
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

    async def _commit(self, batch: Sequence[Envelope], decoded: Decoded | None) -> BatchResult:
        readings, presences, rejections = decoded or self.decode_batch(batch)
        async with self.pool.acquire() as conn:
            return await write_batch(conn, readings, presences, rejections, datetime.now(UTC))

    async def commit_with_retry(
        self,
        batch: Sequence[Envelope],
        decoded: Decoded | None = None,
    ) -> BatchResult | None:
        """Commit a batch, retrying transient failures; None if we gave up while stopping."""
        delay, started = 0.2, time.monotonic()
        while True:
            try:
                return await self._commit(batch, decoded)
            except POISON:
                raise
            except (*TRANSIENT, asyncpg.PostgresError) as exc:
                self.metrics.db_errors += 1
                log.warning("batch.retry", error=repr(exc), rows=len(batch), retry_in_s=delay)
            if self.stop.is_set() and time.monotonic() - started > STOP_GIVE_UP_S:
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.gateway_reconnect_max_s)

    async def commit_isolating(
        self,
        batch: Sequence[Envelope],
        decoded: Decoded | None = None,
    ) -> BatchResult | None:
        """Commit, splitting the batch around a message the database refuses (never expected)."""
        try:
            return await self.commit_with_retry(batch, decoded)
        except POISON as exc:
            self.metrics.db_errors += 1
            if len(batch) == 1:
                log.exception("batch.poison", topic=batch[0].topic, error=repr(exc))
                return BatchResult()  # acked and dropped: it would block the stream forever
            half = len(batch) // 2
            first = await self.commit_isolating(batch[:half])
            second = await self.commit_isolating(batch[half:])
            if first is None or second is None:
                return None
            first.accepted += second.accepted
            first.duplicates += second.duplicates
            first.status_changes += second.status_changes
            first.rejected += second.rejected
            first.lots += second.lots
            return first

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

    async def run_writer(self) -> None:
        """Drain the inbox until stopped and empty: one batch commits while the next is decoded."""
        interval = self.settings.flush_interval_s
        in_flight: asyncio.Task[bool] | None = None
        try:
            while True:
                batch = await self.inbox.next_batch(interval, self.stop)
                decoded = self.decode_batch(batch) if batch else None
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
                await in_flight

    async def _commit_and_ack(self, batch: list[Envelope], decoded: Decoded | None) -> bool:
        started = time.monotonic()
        result = await self.commit_isolating(batch, decoded)
        if result is None:
            log.warning("batch.abandoned", rows=len(batch))
            return False
        self.mqtt.ack(batch)
        self.record(batch, result, started)
        self.availability.update(result.lots)
        if result.rejected:
            log.info("batch.rejected", reasons=dict(result.rejected))
        return True

    async def every(self, seconds: float, job: Callable[[], Awaitable[None]], name: str) -> None:
        """Run *job* every *seconds* until cancelled; a failure is logged, never fatal."""
        while True:
            try:
                await job()
            except Exception as exc:
                log.warning("task.failed", task=name, error=repr(exc))
            await asyncio.sleep(seconds)

    async def sweep(self) -> None:
        """Turn silent sensors offline (liveness)."""
        async with self.pool.acquire() as conn:
            result = await sweep_silent(conn, datetime.now(UTC))
        if result.devices_offline:
            log.info("liveness.comms_lost", devices=result.devices_offline, spots=result.spots_unknown)
        self.metrics.devices_offline += result.devices_offline
        self.availability.update(result.lots)

    async def sample(self) -> None:
        """Write periodic occupancy samples of active lots."""
        every = timedelta(seconds=self.settings.gateway_occupancy_sample_interval_s)
        async with self.pool.acquire() as conn:
            await sample_active_lots(conn, datetime.now(UTC), every)

    async def publish_availability(self) -> None:
        """Publish lots whose rate-limit interval has passed."""
        self.availability.flush_due(time.monotonic())

    async def run(self) -> None:
        """Run until ``stop`` is set, then drain, commit, ack and disconnect."""
        async with self.pool.acquire() as conn:
            repaired = await recount_lots(conn, datetime.now(UTC))
        if repaired:
            log.info("lots.recounted", lots=len(repaired))
        runner = None
        if self.settings.gateway_metrics_port:
            runner = await start_metrics_server(
                self.metrics, self.settings.gateway_metrics_host, self.settings.gateway_metrics_port
            )
        self.mqtt.start()
        background = [
            asyncio.create_task(
                self.every(self.settings.gateway_liveness_interval_s, self.sweep, "liveness")
            ),
            asyncio.create_task(
                self.every(self.settings.gateway_occupancy_sample_interval_s, self.sample, "sampler")
            ),
            asyncio.create_task(self.every(AVAILABILITY_TICK_S, self.publish_availability, "availability")),
        ]
        log.info(
            "gateway.started", client_id=self.settings.gateway_client_id, prefix=self.settings.topic_prefix
        )
        try:
            writer = asyncio.create_task(self.run_writer())
            stopping = asyncio.create_task(self.stop.wait())
            await asyncio.wait({writer, stopping}, return_when=asyncio.FIRST_COMPLETED)
            self.inbox.closed = True  # stop taking messages: the broker keeps the rest for us
            await writer
            self.availability.flush_due(time.monotonic(), force=True)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await asyncio.to_thread(self.mqtt.stop)
            if runner is not None:
                await runner.cleanup()
        log.info(
            "gateway.stopped", accepted=self.metrics.accepted, rejected=sum(self.metrics.rejected.values())
        )


async def run_gateway(settings: GatewaySettings, stop: asyncio.Event) -> None:
    """Connect to the database (with back-off) and run the gateway until *stop* is set."""
    pool = await open_pool(settings, stop)
    if pool is None:
        return
    try:
        await Gateway(settings, pool, stop).run()
    finally:
        await pool.close()
