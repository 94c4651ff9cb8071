"""What the gateway asks of its collaborators: the store, the broker link and the paths it runs.

The composition root (``device_gateway.service.compose``) builds the real ones (asyncpg, paho);
tests hand in small fakes of these protocols instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from device_gateway.decode import PresenceReport, Rejection, SensorReading
from device_gateway.inbox import Envelope
from device_gateway.results import BatchResult, SweepResult


class StoreError(Exception):
    """Base class of the errors a store raises (translated from the database driver's)."""


class PoisonBatchError(StoreError):
    """The database refused the data of the batch itself: retrying the same rows cannot help."""


class StoreUnavailableError(StoreError):
    """The database could not take the work now (gone, busy, full): retry the same work later."""


class SensorStore(Protocol):
    """Where device-derived state lives. Each method is one transaction (the recount a few short ones);
    errors are StoreErrors.
    """

    async def write_batch(
        self,
        readings: Sequence[SensorReading],
        presences: Sequence[PresenceReport],
        rejections: Sequence[Rejection],
        now: datetime,
    ) -> BatchResult:
        """Apply one batch; its messages are acknowledged only after this returns."""

    async def sweep_silent(self, now: datetime) -> SweepResult:
        """Turn sensors that went silent offline and their spots unknown."""

    async def sample_active_lots(self, now: datetime, every: timedelta) -> int:
        """Write occupancy samples of lots with recent activity; return how many."""

    async def recount_lots(self, now: datetime) -> list[str]:
        """Repair lot counters that disagree with their spots; return the lots that were wrong.

        Holds no more than a few lots at a time: sweeps and writers go on meanwhile.
        """

    async def prune_refusals(self, older_than: datetime) -> int:
        """Delete refusals received before *older_than* unless the database does it; return how many."""

    async def close(self) -> None:
        """Release what the store opened itself (not what it was handed)."""


class Receiver(Protocol):
    """Takes the messages of one route. Called on the MQTT client's network thread: it blocks only to
    push back (a full inbox), which stops the client reading until there is room.
    """

    def put(self, envelope: Envelope) -> None:
        """Take one received message."""


class BrokerLink(Protocol):
    """The gateway's MQTT connection: messages in by route, acks after commit, publishes out."""

    subscribed: asyncio.Event  # set once the broker acknowledged the subscriptions of a connection

    def start(self) -> None:
        """Connect in the background and keep reconnecting."""

    def ack(self, envelopes: Iterable[Envelope]) -> int:
        """Acknowledge committed messages (those of the current connection); return how many."""

    def publish(self, topic: str, payload: bytes, *, retain: bool = True) -> None:
        """Publish at QoS 1 (retained unless told otherwise)."""

    def stop(self) -> None:
        """Write what is queued, disconnect and stop (blocking: call it in a thread)."""


class MessagePath(Protocol):
    """One way messages go through the process (the sensor writer; the gate path next to it)."""

    name: str

    async def run(self) -> None:
        """Work until the process stops; return once what was taken is committed and acknowledged."""
