"""The gateway's store on PostgreSQL: one asyncpg pool, driver errors translated by SQLSTATE class."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime, timedelta

import asyncpg
import structlog

from device_gateway.config import GatewaySettings
from device_gateway.decode import PresenceReport, Rejection, SensorReading
from device_gateway.ports import PoisonBatchError, StoreUnavailableError
from device_gateway.results import BatchResult, SweepResult
from device_gateway.store import write_batch
from device_gateway.sweeps import (
    prune_refusals,
    recount_lots,
    refusals_need_pruning,
    sample_active_lots,
    sweep_silent,
)

log = structlog.get_logger("device_gateway")

# Only data errors (SQLSTATE classes 22 and 23) mean the rows themselves are refused: the writer
# then splits the batch to isolate the one message. Every other database error is the environment
# (connection lost, deadlock, serialization, shutdown, disk full, permissions…): the same work is
# retried, because dropping messages for it would lose good data.
POISON = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
# The database went away or is not there yet: the only errors start-up waits out (a wrong password
# or a missing database stop the process instead of looping).
TRANSIENT = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)
# asyncpg's InternalClientError ("cannot switch to state …") comes from a connection the server
# closed in the middle of an operation (a database shutdown): the environment too, never the data.
UNAVAILABLE = (*TRANSIENT, asyncpg.PostgresError, asyncpg.InternalClientError)
# The writer, the sampler, the lot_changes follower, gate sweeps, pruning and the start-up recount;
# the liveness sweep has a connection of its own (OwnConnection), so none of them can hold it up.
POOL_SIZE = (2, 3)
CLOSE_TIMEOUT_S = 5.0  # closing the sweep's own connection at shutdown waits at most this long


# Advisory-lock class of gateway client ids (two-key form: its own key space, apart from the
# single-key locks of sweeps.py). Key 2 is hashtext(client id).
CLIENT_ID_LOCK_CLASS = 7272
HOLD_CLIENT_ID = "SELECT pg_try_advisory_lock($1, hashtext($2))"
CLIENT_ID_TRIES = 5  # one a second: outlasts the cleanup of a killed predecessor's connection


async def hold_client_id(settings: GatewaySettings) -> asyncpg.Connection | None:
    """Take the database lock of our MQTT client id on a connection of its own; None if taken.

    Two processes with one client id would take the broker session from each other in a loop
    (Mosquitto 2.0 just drops the older connection, with no reason a client could act on). Every
    gateway shares the database, so a session-level advisory lock tells the second one at start.
    The lock lives as long as the returned connection (outside the pool: a pool's reset on release
    would drop it).
    """
    conn = await asyncpg.connect(settings.database_url)
    for attempt in range(CLIENT_ID_TRIES):
        if await conn.fetchval(HOLD_CLIENT_ID, CLIENT_ID_LOCK_CLASS, settings.gateway_client_id):
            return conn
        if attempt + 1 < CLIENT_ID_TRIES:
            # A process killed a moment ago holds it until its server process notices the hang-up.
            await asyncio.sleep(1.0)
    await conn.close()
    return None


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Turn asyncpg's errors into the store errors of ``device_gateway.ports``."""
    try:
        yield
    except POISON as exc:
        raise PoisonBatchError(repr(exc)) from exc
    except UNAVAILABLE as exc:
        raise StoreUnavailableError(repr(exc)) from exc


async def open_pool(settings: GatewaySettings, stop: asyncio.Event) -> asyncpg.Pool | None:
    """Connect to PostgreSQL, retrying with exponential back-off until it answers or we stop."""
    delay = 0.5
    while not stop.is_set():
        try:
            return await asyncpg.create_pool(
                settings.database_url, min_size=POOL_SIZE[0], max_size=POOL_SIZE[1]
            )
        except TRANSIENT as exc:
            log.warning("db.unavailable", error=str(exc), retry_in_s=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, settings.gateway_reconnect_max_s)
    return None


class OwnConnection:
    """One connection outside the pool, for a job that must never wait for a pooled one.

    Connected at first use; after any error it is dropped and the next use connects afresh (a
    statement cut off by a cancel or a lost server leaves a connection in no state to trust).
    """

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None

    @contextlib.asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        """Yield the connection, connecting first if there is none."""
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn)
        try:
            yield self._conn
        except BaseException:
            conn, self._conn = self._conn, None
            conn.terminate()
            raise

    async def close(self) -> None:
        """Close the connection, if there is one."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(*UNAVAILABLE):
                await asyncio.wait_for(conn.close(), CLOSE_TIMEOUT_S)


class PgSensorStore:
    """The :class:`~device_gateway.ports.SensorStore` of the SQL in ``store.py`` and ``sweeps.py``.

    Everything runs on the pool except the liveness sweep, which has a connection of its own: a
    busy pool (a long sample, a recount, a writer retrying) can then never make a silent sensor late.
    """

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self._pool = pool
        self._liveness = OwnConnection(dsn)
        self._prunes: bool | None = None  # plain mode: we delete old refusals (asked once)

    async def write_batch(
        self,
        readings: Sequence[SensorReading],
        presences: Sequence[PresenceReport],
        rejections: Sequence[Rejection],
        now: datetime,
    ) -> BatchResult:
        """Apply one batch in one transaction."""
        with translated():
            async with self._pool.acquire() as conn:
                return await write_batch(conn, readings, presences, rejections, now)

    async def sweep_silent(self, now: datetime) -> SweepResult:
        """Turn silent sensors offline and their spots unknown (on the sweep's own connection)."""
        with translated():
            async with self._liveness.acquire() as conn:
                return await sweep_silent(conn, now)

    async def sample_active_lots(self, now: datetime, every: timedelta) -> int:
        """Sample the occupancy of lots with recent activity."""
        with translated():
            async with self._pool.acquire() as conn:
                return await sample_active_lots(conn, now, every)

    async def recount_lots(self, now: datetime) -> list[str]:
        """Repair lot counters that disagree with their spots (a few lots per transaction)."""
        with translated():
            async with self._pool.acquire() as conn:
                return await recount_lots(conn, now)

    async def prune_refusals(self, older_than: datetime) -> int:
        """Delete old refusals in plain mode; TimescaleDB mode drops them by its retention policy."""
        with translated():
            async with self._pool.acquire() as conn:
                if self._prunes is None:
                    self._prunes = await refusals_need_pruning(conn)
                return await prune_refusals(conn, older_than) if self._prunes else 0

    async def close(self) -> None:
        """Close the sweep's own connection (the pool is its opener's to close)."""
        await self._liveness.close()
