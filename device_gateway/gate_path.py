"""The gate path: plate read → decision → command, on its own connection, never behind a batch."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from device_gateway.availability import AvailabilityPublisher
from device_gateway.config import GatewaySettings
from device_gateway.decode import Rejection, RejectReason, reject
from device_gateway.gate_messages import AckMessage, GateMessage, PassageMessage, PlateMessage, decode_gate
from device_gateway.gate_pricing import StayPricer, price_closed_sessions
from device_gateway.gate_steps import Steps
from device_gateway.gate_store import StoredCommand, decide_read, stored_command
from device_gateway.gate_tracking import (
    Ack,
    GateDevice,
    expire_awaiting,
    find_gate,
    record_ack,
    record_passage,
    resend_or_flag,
)
from device_gateway.inbox import Envelope
from device_gateway.metrics import Metrics
from device_gateway.ports import BrokerLink
from device_gateway.results import LotRow
from device_gateway.store import Conn
from device_gateway.writer import Backoff
from parking_core.errors import SessionAlreadyOpenError
from parking_core.gates import GATE_COMMANDS_CHANNEL, GateEvent, Lane, Passage, PlateRead
from parking_core.topics import Leaf, gate_topic

log = structlog.get_logger("device_gateway.gates")
GATE_PATH_LEAVES = frozenset({Leaf.PLATE, Leaf.PASSAGE, Leaf.ACK})
INSERT_REJECTION = """
INSERT INTO rejected_messages (received_at, topic, device_id, reason, detail, payload)
VALUES ($1, $2, $3, $4, $5, $6)
"""
GATE_LOTS = """
SELECT lot_id, capacity, free_count, occupied_count, reserved_count, unknown_count, closed_count,
       status = 'closed' AS lot_closed, shared_spaces
FROM lots WHERE lot_id = ANY($1::text[]) AND counted_by = 'gates'
"""
# The database refuses the data of the message itself (SQLSTATE classes 22 and 23): kept and acked.
POISON = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
# Worth another try on the same message: the connection went away, or two writers collided.
RETRY = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    TimeoutError,
    SessionAlreadyOpenError,  # a race the lot lock forbids; the next try sees the session
)


class GateQueue:
    """Receiver of gate messages: hands each to the event loop at once (no batching, no polling)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # Each message with the monotonic time it arrived (gate.steps charges the wait to "queue").
        self.queue: asyncio.Queue[tuple[Envelope, float]] = asyncio.Queue()
        self.closed = False

    def put(self, envelope: Envelope) -> None:
        """Take one message on paho's thread."""
        if not self.closed:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, (envelope, time.perf_counter()))


@dataclass
class GatePath:
    """Decides plate reads, records passages and acks, re-sends and expires commands."""

    settings: GatewaySettings
    inbox: GateQueue
    link: BrokerLink
    pool: asyncpg.Pool
    metrics: Metrics
    availability: AvailabilityPublisher
    stop: asyncio.Event
    backoff: Backoff = field(default_factory=Backoff)
    pricer: StayPricer = field(default_factory=StayPricer)
    name: str = "gate-path"
    # Lots whose counts the gates changed: read and handed to availability by a task of their own
    # (_lots_loop), not between a command and the next read (availability publishes a lot at most
    # once per interval anyway).
    _changed: set[str] = field(default_factory=set)
    _lots_changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        """Handle gate messages one by one on a connection of their own, and sweep, until stopped."""
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._handle_all(), name="gate-messages")
            tasks.create_task(self._sweep_loop(), name="gate-sweeps")
            tasks.create_task(self._lots_loop(), name="gate-lots")
        await self._publish_changed()  # what the last messages changed

    async def _connect(self) -> asyncpg.Connection | None:
        for delay in self.backoff.delays():
            if self.stop.is_set():
                return None
            try:
                return await asyncpg.connect(self.settings.database_url)
            except RETRY as exc:
                log.warning("gate.db_unavailable", error=repr(exc), retry_in_s=delay)
                await self._pause(delay)
        return None  # pragma: no cover - delays() never ends

    async def _woken_or_stopped(self, woken: asyncio.Event, timeout_s: float | None = None) -> None:
        """Return when *woken* or ``stop`` is set, or after *timeout_s*."""
        waits = {asyncio.ensure_future(woken.wait()), asyncio.ensure_future(self.stop.wait())}
        try:
            await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def _next(self) -> tuple[Envelope, float] | None:
        getting = asyncio.ensure_future(self.inbox.queue.get())
        stopping = asyncio.ensure_future(self.stop.wait())
        try:
            await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not getting.done():
                getting.cancel()
        return getting.result() if getting.done() and not getting.cancelled() else None

    async def _handle_all(self) -> None:
        conn = await self._connect()
        try:
            while conn is not None:
                queued = await self._next()
                if queued is None:
                    self.inbox.closed = True  # later messages stay unacked: the broker keeps them
                    return
                conn = await self._handle_with_retry(conn, *queued)
        finally:
            if conn is not None:
                await conn.close()

    async def _handle_with_retry(
        self, conn: asyncpg.Connection, envelope: Envelope, arrived: float
    ) -> asyncpg.Connection | None:
        delays: Iterator[float] = self.backoff.delays()
        steps = Steps(began=arrived)
        while True:
            try:
                await self.handle(conn, envelope, steps)
            except POISON as exc:  # the database refuses the message itself: retrying cannot help
                self.metrics.db_errors += 1
                log.warning("gate.refused", error=repr(exc), topic=envelope.topic[:200])
                await self._refused(conn, envelope, exc)
                return conn
            except RETRY as exc:
                self.metrics.db_errors += 1
                delay = next(delays)
                log.warning("gate.retry", error=repr(exc), topic=envelope.topic[:200], retry_in_s=delay)
                await self._pause(delay)
                if self.stop.is_set():
                    await conn.close()
                    return None  # unacked: redelivered to whichever gateway runs next
                if conn.is_closed():
                    await conn.close()
                    new = await self._connect()
                    if new is None:
                        return None
                    conn = new
            else:
                return conn

    async def _refused(self, conn: Conn, envelope: Envelope, exc: asyncpg.PostgresError) -> None:
        """Keep a message the database refused (SQLSTATE class 22 or 23) for operators, and ack it."""
        received = datetime.fromtimestamp(envelope.received_at, UTC)
        device = envelope.topic.rsplit("/", 2)[-2] if envelope.topic.count("/") >= 2 else None
        detail = f"refused by the database ({exc.sqlstate}): {exc}"
        await self._reject(
            conn, reject(envelope.topic, device, RejectReason.SCHEMA, detail, envelope.payload, received)
        )
        self.link.ack([envelope])

    async def handle(self, conn: Conn, envelope: Envelope, steps: Steps | None = None) -> None:
        """Decode, decide or record, commit, publish what is due, then acknowledge the message.

        *steps* gets a lap per step (from the message's arrival when the queue stamped it); the
        laps are logged at debug level as ``gate.steps`` (docs/gates.md, "Latency").
        """
        steps = steps if steps is not None else Steps()
        steps.lap("queue")
        received = datetime.fromtimestamp(envelope.received_at, UTC)
        decoded = decode_gate(
            envelope.topic, envelope.payload, self.settings.topic_prefix, received, self.settings.limits()
        )
        steps.lap("decode")
        kind = "refused"
        if isinstance(decoded, Rejection):
            await self._reject(conn, decoded)
        else:
            self.metrics.received[decoded.leaf.value] += 1
            gate = await find_gate(conn, decoded.device_id, received)
            steps.lap("find_gate")
            if gate is None:
                await self._refuse(conn, decoded, "not a provisioned gate", RejectReason.UNKNOWN_DEVICE)
            elif isinstance(decoded.body, PlateMessage):
                kind = decoded.body.lane
                await self._plate(conn, gate, decoded, decoded.body, steps)
            elif isinstance(decoded.body, PassageMessage):
                kind = "passage"
                await self._passage(conn, gate, decoded, decoded.body)
            else:
                kind = "ack"
                await self._ack(conn, decoded, decoded.body)
        self.link.ack([envelope])
        steps.lap("ack")
        log.debug("gate.steps", kind=kind, total_ms=round(steps.seconds() * 1000, 3), **steps.millis())

    def _lane(self, gate: GateDevice, lane: str) -> Lane | None:
        return Lane(lane) if gate.lane in {"both", lane} else None

    async def _plate(
        self,
        conn: Conn,
        gate: GateDevice,
        message: GateMessage,
        body: PlateMessage,
        steps: Steps,
    ) -> None:
        lane = self._lane(gate, body.lane)
        plate = message.plate or ""
        if lane is None or not plate:
            detail = "lane does not match the gate's" if lane is None else "plate: empty after normalising"
            await self._refuse(conn, message, detail)
            return
        read = PlateRead(
            gate.device_id,
            gate.lot_id,
            body.seq,
            body.ts,
            lane,
            plate,
            body.plate_color or "blue",
            body.confidence,
        )
        received = message.received_at
        stored = await decide_read(conn, read, body.plate_color, received, self.pricer, steps=steps)
        self.send(stored)
        steps.lap("publish")
        self.metrics.gate_decide_seconds.observe(steps.seconds() - steps.laps["queue"])
        if stored.duplicate:
            self.metrics.duplicates += 1
            return
        self.metrics.gate_commands[stored.command.reason.value] += 1
        log.info(
            "gate.command",
            device_id=gate.device_id,
            lot_id=gate.lot_id,
            lane=lane.value,
            action=stored.command.action.value,
            reason=stored.command.reason.value,
            amount_fen=stored.command.amount_fen,
        )
        self._lot_changed(gate.lot_id)

    def send(self, stored: StoredCommand) -> None:
        """Publish a command to its gate (QoS 1, not retained: a stale command must not replay)."""
        topic = gate_topic(self.settings.topic_prefix, stored.device_id, Leaf.COMMAND)
        self.link.publish(topic, stored.payload(), retain=False)

    async def _passage(
        self, conn: Conn, gate: GateDevice, message: GateMessage, body: PassageMessage
    ) -> None:
        lane = self._lane(gate, body.lane)
        if lane is None:
            await self._refuse(conn, message, "lane does not match the gate's")
            return
        passage = Passage(gate.device_id, gate.lot_id, body.seq, body.ts, lane, message.plate)
        self._count(await record_passage(conn, passage, message.received_at))
        self._lot_changed(gate.lot_id)

    async def _ack(self, conn: Conn, message: GateMessage, body: AckMessage) -> None:
        ack = Ack(message.device_id, uuid.UUID(body.command_id), body.ok, body.ts)
        if not await record_ack(conn, ack, message.received_at):
            await self._refuse(conn, message, "command_id: no such command of this gate")

    async def _refuse(
        self, conn: Conn, message: GateMessage, detail: str, reason: RejectReason = RejectReason.SCHEMA
    ) -> None:
        """Keep a decoded gate message that cannot be acted on, with *reason* and *detail*."""
        await self._reject(
            conn,
            reject(message.topic, message.device_id, reason, detail, message.raw, message.received_at),
        )

    async def _reject(self, conn: Conn, r: Rejection) -> None:
        self.metrics.rejected[r.reason.value] += 1
        await conn.execute(
            INSERT_REJECTION, r.received_at, r.topic, r.device_id, r.reason.value, r.detail, r.payload
        )

    def _lot_changed(self, lot_id: str) -> None:
        self._changed.add(lot_id)
        self._lots_changed.set()

    async def _lots_loop(self) -> None:
        """Hand the counts of lots the gates changed to availability, until stopped."""
        while not self.stop.is_set():
            await self._woken_or_stopped(self._lots_changed)
            try:
                await self._publish_changed()
            except Exception:
                log.exception("task.failed", task="gate-lots")
                await self._pause(1.0)

    async def _publish_changed(self) -> None:
        """Read the lots changed since the last call (one statement) and update their availability."""
        self._lots_changed.clear()
        lots, self._changed = sorted(self._changed), set()
        if not lots:
            return
        try:
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(GATE_LOTS, lots)
        except BaseException:
            self._changed.update(lots)  # read again next time
            raise
        now = datetime.now(UTC)
        self.availability.update(
            LotRow(
                row["lot_id"],
                row["capacity"],
                row["free_count"],
                row["occupied_count"],
                row["reserved_count"],
                row["unknown_count"],
                row["closed_count"],
                row["lot_closed"],
                now,
                row["shared_spaces"],
            )
            for row in rows
        )

    def _count(self, events: list[GateEvent]) -> None:
        for event in events:
            self.metrics.gate_events[event.kind.value] += 1
            log.info(
                "gate.event",
                kind=event.kind.value,
                device_id=event.device_id,
                lot_id=event.lot_id,
                plate=event.plate,
            )

    async def _sweep_loop(self) -> None:
        """Sweep every interval, and at once when the API queues a command (a manual release)."""
        woken = asyncio.Event()
        listener = await self._connect()
        if listener is None:
            return
        try:
            await listener.add_listener(GATE_COMMANDS_CHANNEL, lambda *_: woken.set())
            while not self.stop.is_set():
                woken.clear()
                try:
                    await self.sweep(datetime.now(UTC))
                except Exception:
                    log.exception("task.failed", task="gate-sweeps")
                await self._woken_or_stopped(woken, self.settings.gateway_gate_sweep_interval_s)
        finally:
            await listener.close()

    async def sweep(self, now: datetime) -> None:
        """Expire missing passages, re-send or flag unacked commands, price stays ended elsewhere."""
        quiet = now - timedelta(seconds=self.settings.gateway_gate_resend_after_s)
        async with self.pool.acquire() as conn:
            expired = await expire_awaiting(conn, now)
            again, flagged = await resend_or_flag(conn, now, quiet, self.settings.gateway_gate_max_sends)
            await price_closed_sessions(conn, self.pricer)
        for lot_id in {e.lot_id for e in expired}:
            self._lot_changed(lot_id)
        for row in again:
            self.send(stored_command(row, row["device_id"]))
        self._count(expired + flagged)
