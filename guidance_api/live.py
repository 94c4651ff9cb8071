"""Live lot counts for operator pages: one LISTEN per process, fanned out to every open stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from guidance_api.queries import lot_view

log = structlog.get_logger("guidance_api")

CHANNEL = "lot_counts"  # sql/0086: NOTIFY at commit, the payload the ids of the lots that changed
COALESCE_S = 0.25  # notifications within this long after a read are read together, at most 4 reads/s
RECONNECT_S = (0.5, 1.0, 2.0, 5.0)  # back-off while the listener cannot (re)connect

LOT_COLUMNS = """
SELECT lot_id, name, kind, district_id, lat, lon, capacity, status AS lot_status, tariff_id,
       free_count, occupied_count, reserved_count, unknown_count, closed_count, counts_updated_at,
       shared_spaces
FROM lots
"""
LOTS_BY_ID = LOT_COLUMNS + "WHERE lot_id = ANY($1::text[])"
SHOWN = ("free", "occupied", "reserved", "unknown", "closed", "capacity", "status", "shared_spaces", "name")

LotView = dict[str, Any]
Connect = Callable[[], Awaitable[asyncpg.Connection]]


class Mailbox:
    """What one open stream has yet to send: the newest view of each lot that changed.

    Bounded by the lots the stream may see (one entry a lot, replaced by newer counts): a page that
    reads slowly skips to the newest counts, it never queues a backlog.
    """

    def __init__(self, wanted: Callable[[LotView], bool]) -> None:
        self._wanted = wanted
        self._pending: dict[str, LotView] = {}
        self._ready = asyncio.Event()
        self._closed = False

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, lots: list[LotView]) -> None:
        """Keep the newest view of each of *lots* this stream may see."""
        for lot in lots:
            if self._wanted(lot):
                self._pending[lot["lot_id"]] = lot
        if self._pending:
            self._ready.set()

    def close(self) -> None:
        """End the stream (server shutdown)."""
        self._closed = True
        self._ready.set()

    async def take(self, wait_s: float) -> list[LotView] | None:
        """Wait up to *wait_s*; return the lots changed since the last take (by lot id, maybe none),
        or None once closed.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), wait_s)
        if self._closed:
            return None
        self._ready.clear()
        lots, self._pending = self._pending, {}
        return [lots[lot_id] for lot_id in sorted(lots)]


class LotWatch:
    """LISTENs for changed lots while someone watches, and hands each change to every open stream.

    A trigger on ``lots`` (sql/0086) notifies the lot ids of every statement that changed what a lot
    shows, whoever wrote it (the gateway's batches, gates, holds, the admin). One connection per API
    process listens; a notification makes the watch read those lots once (notifications arriving
    meanwhile are read together) and pass on the ones whose counts differ from what it passed on last.
    Nothing is read while nothing changes, however many pages are open.
    """

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self.connect: Connect | None = None  # opens the listening connection (the app sets it)
        self.reads = 0  # how many times the watch read lots (one per batch of notifications)
        self._boxes: set[Mailbox] = set()
        self._task: asyncio.Task[None] | None = None
        self._sent: dict[str, tuple[Any, ...]] = {}
        self._dirty: set[str] = set()
        self._everything = False  # read every lot: notifications may have been missed
        self._woken = asyncio.Event()
        self._listening = asyncio.Event()

    def subscribe(self, wanted: Callable[[LotView], bool]) -> Mailbox:
        """Return a new stream's mailbox (of the lots *wanted* lets through); start watching if idle."""
        box = Mailbox(wanted)
        self._boxes.add(box)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="lot-watch")
        return box

    def unsubscribe(self, box: Mailbox) -> None:
        """Forget a stream; stop listening when none is left."""
        self._boxes.discard(box)
        if not self._boxes and self._task is not None:
            self._task.cancel()
            self._task = None
            self._sent.clear()  # unheard changes while nobody listens: the next streams start afresh

    async def listening(self, wait_s: float) -> bool:
        """Wait up to *wait_s* until notifications are heard; tell whether they are."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), wait_s)
        return self._listening.is_set()

    async def close(self) -> None:
        """Stop watching and end every stream (application shutdown)."""
        for box in self._boxes:
            box.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if payload:
            self._dirty.update(str(payload).split(","))
        else:
            self._everything = True
        self._woken.set()

    async def _watch(self) -> None:
        if self.connect is None:  # an application without a database URL cannot listen
            log.error("live_cannot_listen", reason="no database URL")
            return
        attempt = 0
        missed = False  # after a lost connection, changes may have gone unheard
        while True:
            try:
                listener = await self.connect()
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("live_listen_failed", error=str(exc))
                await asyncio.sleep(RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)])
                attempt += 1
                continue
            lost = asyncio.Event()

            def on_lost(_conn: object, lost: asyncio.Event = lost) -> None:
                lost.set()
                self._woken.set()

            listener.add_termination_listener(on_lost)
            try:
                await listener.add_listener(CHANNEL, self._notified)
                attempt = 0
                self._everything = self._everything or missed
                missed = True
                self._listening.set()
                self._woken.set()
                await self._follow(lost)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("live_listen_lost", error=str(exc))
            finally:
                self._listening.clear()
                listener.terminate()
            await asyncio.sleep(RECONNECT_S[0])

    async def _follow(self, lost: asyncio.Event) -> None:
        """Read what was notified, until the listening connection is lost."""
        while not lost.is_set():
            await self._woken.wait()
            self._woken.clear()
            if lost.is_set():
                return
            if self._dirty or self._everything:
                await self._read()
                await asyncio.sleep(COALESCE_S)

    async def _read(self) -> None:
        """Read the notified lots (every lot after a gap) and pass on those that changed."""
        assert self.pool is not None
        ids, everything = sorted(self._dirty), self._everything
        self._dirty, self._everything = set(), False
        self.reads += 1
        try:
            rows = await (self.pool.fetch(LOT_COLUMNS) if everything else self.pool.fetch(LOTS_BY_ID, ids))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("live_read_failed", error=str(exc))
            self._dirty.update(ids)  # read them again once the database answers
            self._everything = self._everything or everything
            await asyncio.sleep(RECONNECT_S[-1])
            self._woken.set()
            return
        changed = []
        for row in rows:
            view = lot_view(row)
            key = tuple(view[k] for k in SHOWN)
            if self._sent.get(view["lot_id"]) != key:
                self._sent[view["lot_id"]] = key
                changed.append(view)
        if changed:
            for box in self._boxes:
                box.put(changed)
