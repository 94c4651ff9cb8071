"""The gateway's composition root: builds the parts of one process and runs them in one task group."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from device_gateway.availability import AvailabilityPublisher
from device_gateway.config import GatewayPaths, GatewaySettings
from device_gateway.decode import SENSOR_PATH_LEAVES
from device_gateway.gate_path import GATE_PATH_LEAVES, GatePath, GateQueue
from device_gateway.inbox import Inbox
from device_gateway.lot_changes import POLL_S, follow_lot_changes
from device_gateway.metrics import Metrics, serving_metrics
from device_gateway.mqtt import GatewayMqtt
from device_gateway.pg_store import PgSensorStore, hold_client_id, open_pool
from device_gateway.ports import BrokerLink, MessagePath, SensorStore
from device_gateway.writer import Backoff, SensorWriter

log = structlog.get_logger("device_gateway")
AVAILABILITY_TICK_S = 0.1  # how often lots whose rate-limit interval passed are published
PRUNE_INTERVAL_S = 600.0  # refusals past their retention are deleted this often (plain mode)
Job = Callable[[], Awaitable[None]]


@dataclass
class Gateway:
    """One gateway process's moving parts, handed in by :func:`compose`: it builds nothing itself."""

    settings: GatewaySettings
    link: BrokerLink
    store: SensorStore
    metrics: Metrics
    availability: AvailabilityPublisher
    paths: Sequence[MessagePath]
    stop: asyncio.Event
    follow_changes: Job | None = None  # the lot_changes outbox follower (device_gateway.lot_changes)

    async def run(self) -> None:
        """Run until ``stop`` is set, then let every path drain, commit and ack, and disconnect.

        The liveness sweep starts first, on its own connection, and runs through the start-up
        recount: a silent sensor turns offline on time even while a large city is being checked.
        Then the link connects and the paths and the other periodic jobs start. Every path and
        periodic job runs in one task group: cancelling ``run`` cancels them all, and a path that
        fails takes the others down with it (the process exits; nothing is acked that was not
        committed).
        """
        began = time.monotonic()
        started = False
        try:
            async with asyncio.TaskGroup() as tasks:
                liveness = self.settings.gateway_liveness_interval_s
                tasks.create_task(self.every(liveness, self.sweep, "liveness"), name="liveness")
                log.info("liveness.started", interval_s=liveness)
                repaired = await self.store.recount_lots(datetime.now(UTC))
                log.info("lots.recounted", lots=len(repaired), took_s=round(time.monotonic() - began, 3))
                self.link.start()
                started = True
                log.info(
                    "gateway.started",
                    client_id=self.settings.gateway_client_id,
                    prefix=self.settings.topic_prefix,
                    paths=[p.name for p in self.paths],
                )
                for path in self.paths:
                    tasks.create_task(path.run(), name=path.name)
                for name, seconds, job in self.periodic_jobs():
                    tasks.create_task(self.every(seconds, job, name), name=name)
            self.metrics.availability_published += self.availability.flush_due(time.monotonic(), force=True)
        finally:
            if started:
                await asyncio.to_thread(self.link.stop)
            await self.store.close()
        log.info(
            "gateway.stopped", accepted=self.metrics.accepted, rejected=sum(self.metrics.rejected.values())
        )

    def periodic_jobs(self) -> list[tuple[str, float, Job]]:
        """Return (name, interval in seconds, job) of the work done on a timer once the link is up."""
        s = self.settings
        return [  # the liveness sweep is started before these (run)
            ("sampler", s.gateway_occupancy_sample_interval_s, self.sample),
            ("availability", AVAILABILITY_TICK_S, self.publish_availability),
            *([("lot_changes", POLL_S, self.follow_changes)] if self.follow_changes else []),
            ("retention", PRUNE_INTERVAL_S, self.prune),
        ]

    async def every(self, seconds: float, job: Job, name: str) -> None:
        """Run *job* every *seconds* until ``stop`` is set; a failure is logged with its traceback."""
        while not self.stop.is_set():
            try:
                await job()
            except Exception:
                log.exception("task.failed", task=name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), seconds)

    async def sweep(self) -> None:
        """Turn silent sensors offline (liveness)."""
        result = await self.store.sweep_silent(datetime.now(UTC))
        if result.devices_offline:
            log.info("liveness.comms_lost", devices=result.devices_offline, spots=result.spots_unknown)
        self.metrics.devices_offline += result.devices_offline
        self.availability.update(result.lots)

    async def sample(self) -> None:
        """Write periodic occupancy samples of active lots."""
        every = timedelta(seconds=self.settings.gateway_occupancy_sample_interval_s)
        await self.store.sample_active_lots(datetime.now(UTC), every)

    async def prune(self) -> None:
        """Delete refusals past their retention (plain mode; in TimescaleDB mode a policy does it)."""
        keep = timedelta(days=self.settings.gateway_rejected_retention_days)
        deleted = await self.store.prune_refusals(datetime.now(UTC) - keep)
        if deleted:
            log.info("refusals.pruned", rows=deleted)

    async def publish_availability(self) -> None:
        """Publish lots whose rate-limit interval has passed."""
        self.metrics.availability_published += self.availability.flush_due(time.monotonic())


class ClientIdInUseError(RuntimeError):
    """Another process holds this gateway's MQTT client id (its persistent session)."""


def compose(
    settings: GatewaySettings,
    pool: asyncpg.Pool,
    stop: asyncio.Event,
    on_fatal: Callable[[str], None] | None = None,
) -> Gateway:
    """Build one gateway process around *pool*: the only place its parts are chosen and wired.

    Each path registers the topic leaves it takes on the MQTT link and runs as one task. A path
    that must not wait behind sensor batches (the gate path: plate read → decision → command)
    gets its own receiver (``link.route``), its own database connection and its own entry in
    ``paths``, next to the sensor writer. See docs/gateway.md, "Composition".
    """
    loop = asyncio.get_running_loop()
    metrics = Metrics()
    link = GatewayMqtt(settings, loop, on_fatal)
    assert settings.database_url is not None, "the gateway runs only with a database URL"
    store = PgSensorStore(pool, settings.database_url)
    availability = AvailabilityPublisher(
        settings.topic_prefix, settings.gateway_availability_interval_s, link.publish
    )
    inbox = Inbox(
        loop,
        settings.gateway_batch_rows,
        max_messages=settings.gateway_receive_maximum,
        max_bytes=settings.gateway_inbox_max_bytes,
        max_payload_bytes=settings.gateway_max_payload_bytes,
    )
    # Every process can handle every message: --paths chooses what it subscribes to, and a message
    # still queued in its session from a subscription it has since dropped is handled, not stuck.
    link.route(SENSOR_PATH_LEAVES, inbox, subscribe=settings.gateway_paths is not GatewayPaths.GATES)
    backoff = Backoff(max_s=settings.gateway_reconnect_max_s)
    writer = SensorWriter(settings, inbox, store, link, metrics, availability, stop, backoff)
    gate_queue = GateQueue(loop)
    link.route(GATE_PATH_LEAVES, gate_queue, subscribe=settings.gateway_paths is not GatewayPaths.SENSORS)
    gates = GatePath(settings, gate_queue, link, pool, metrics, availability, stop, backoff)

    async def follow_changes() -> None:
        assert settings.database_url is not None, "the gateway runs only with a database URL"
        await follow_lot_changes(settings.database_url, pool, availability.update, stop)

    return Gateway(settings, link, store, metrics, availability, [writer, gates], stop, follow_changes)


async def run_gateway(settings: GatewaySettings, stop: asyncio.Event) -> None:
    """Connect to the database (with back-off), compose the gateway and run it until *stop* is set.

    Raises :class:`ClientIdInUseError` after a graceful stop when another process holds our client id.
    """
    pool = await open_pool(settings, stop)
    if pool is None:
        return
    holder = await hold_client_id(settings)
    if holder is None:
        await pool.close()
        message = (
            f"MQTT client id {settings.gateway_client_id!r} is held by another gateway process "
            "(two processes with one --slot or --client-id?); give each process its own slot"
        )
        log.error("mqtt.client_id_in_use", client_id=settings.gateway_client_id, detail=message)
        raise ClientIdInUseError(message)
    fatal: list[str] = []

    def give_up(reason: str) -> None:
        fatal.append(reason)
        stop.set()

    try:
        gateway = compose(settings, pool, stop, give_up)
        async with serving_metrics(
            gateway.metrics, settings.gateway_metrics_host, settings.gateway_metrics_port
        ):
            await gateway.run()
    finally:
        await pool.close()
        await holder.close()
    if fatal:
        raise ClientIdInUseError(fatal[0])
