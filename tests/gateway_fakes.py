"""Small fakes of the gateway's collaborators (store, broker link) and a gateway built from them."""

# ruff: noqa: ARG002  (a fake takes every argument of the protocol it stands in for)

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from device_gateway.availability import AvailabilityPublisher
from device_gateway.config import GatewaySettings
from device_gateway.decode import PresenceReport, Rejection, SensorReading
from device_gateway.inbox import Envelope, Inbox
from device_gateway.messages import encode_state
from device_gateway.metrics import Metrics
from device_gateway.ports import PoisonBatchError, StoreError
from device_gateway.results import BatchResult, SweepResult
from device_gateway.service import Gateway
from device_gateway.writer import Backoff, SensorWriter
from parking_core.topics import sensor_topic

PREFIX = "parking/v1"


@dataclass
class FakeStore:
    """A SensorStore in memory: keeps what it was given, refuses or fails as a test scripts."""

    poison_devices: set[str] = field(default_factory=set)  # a batch with one of these is refused
    failures: list[StoreError] = field(default_factory=list)  # raised by the next writes, in order
    sweep_failure: Exception | None = None
    hold: asyncio.Event | None = None  # writes wait for it (a commit that takes its time)
    writing: asyncio.Event = field(default_factory=asyncio.Event)  # set when a write begins
    written: list[SensorReading] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)  # readings per write attempt
    refused: list[Rejection] = field(default_factory=list)
    recounts: int = 0
    recount_hold: asyncio.Event | None = None  # the start-up recount waits for it (a large city)
    sweeps: int = 0
    swept_twice: asyncio.Event = field(default_factory=asyncio.Event)  # set at the second sweep
    closed: bool = False

    async def write_batch(
        self,
        readings: Sequence[SensorReading],
        presences: Sequence[PresenceReport],
        rejections: Sequence[Rejection],
        now: datetime,
    ) -> BatchResult:
        self.attempts.append(len(readings))
        self.writing.set()
        if self.hold is not None:
            await self.hold.wait()
        if self.failures:
            raise self.failures.pop(0)
        if any(r.device_id in self.poison_devices for r in readings):
            raise PoisonBatchError("value out of range")
        self.written.extend(readings)
        self.refused.extend(rejections)
        result = BatchResult(accepted=len(readings), presence=len(presences))
        result.rejected.update(r.reason.value for r in rejections)
        return result

    async def sweep_silent(self, now: datetime) -> SweepResult:
        self.sweeps += 1
        if self.sweeps >= 2:
            self.swept_twice.set()
        if self.sweep_failure is not None:
            raise self.sweep_failure
        return SweepResult()

    async def sample_active_lots(self, now: datetime, every: timedelta) -> int:
        return 0

    async def recount_lots(self, now: datetime) -> list[str]:
        self.recounts += 1
        if self.recount_hold is not None:
            await self.recount_hold.wait()
        return []

    async def prune_refusals(self, older_than: datetime) -> int:
        return 0

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakeLink:
    """A BrokerLink that records acks and publishes instead of talking to a broker."""

    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    started: bool = False
    stopped: bool = False
    acked: list[int] = field(default_factory=list)
    published: list[tuple[str, bytes]] = field(default_factory=list)

    def start(self) -> None:
        self.started = True
        self.subscribed.set()

    def ack(self, envelopes: Iterable[Envelope]) -> int:
        mids = [e.mid for e in envelopes]
        self.acked += mids
        return len(mids)

    def publish(self, topic: str, payload: bytes, *, retain: bool = True) -> None:
        self.published.append((topic, payload))

    def stop(self) -> None:
        self.stopped = True


def settings(**overrides: object) -> GatewaySettings:
    """Return gateway settings that name no real service."""
    values: dict[str, object] = {"mqtt_url": "mqtt://127.0.0.1:1", "database_url": "postgresql://x/y"}
    return GatewaySettings.model_validate(values | {"gateway_flush_interval_ms": 1} | overrides)


def envelope(mid: int, device: str | None = None) -> Envelope:
    """Return a received state message of device *device* (default ``d<mid>``)."""
    payload = encode_state(mid, datetime.now(UTC), mid % 2 == 0)
    return Envelope(sensor_topic(PREFIX, device or f"d{mid}", "state"), payload, mid, 1, time.time(), 0)


def fake_gateway(
    store: FakeStore, link: FakeLink | None = None, **overrides: object
) -> tuple[Gateway, SensorWriter]:
    """Return a gateway of fakes around a real inbox, metrics and availability publisher."""
    link = link or FakeLink()
    config = settings(**overrides)
    stop = asyncio.Event()
    metrics = Metrics()
    availability = AvailabilityPublisher(PREFIX, 0, link.publish)
    inbox = Inbox(asyncio.get_running_loop(), config.gateway_batch_rows)
    writer = SensorWriter(config, inbox, store, link, metrics, availability, stop, Backoff(0, 0))
    return Gateway(config, link, store, metrics, availability, [writer], stop), writer
