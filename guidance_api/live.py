"""Live lot counts for operator pages: one database watch per process, fanned out to subscribers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg

from guidance_api.queries import lot_view

WATCH_INTERVAL_S = 1.0  # how soon a change reaches the open operator pages
RECENT_S = 10  # re-read lots changed this recently: a batch that committed late is not missed
QUEUE_LIMIT = 64  # batches waiting for a slow page; the oldest are dropped (the page stays current)

RECENT = f"""
SELECT lot_id, name, kind, district_id, lat, lon, capacity, status AS lot_status, tariff_id,
       free_count, occupied_count, reserved_count, unknown_count, closed_count, counts_updated_at,
       shared_spaces
FROM lots
WHERE counts_updated_at > now() - INTERVAL '{RECENT_S} seconds'
   OR updated_at > now() - INTERVAL '{RECENT_S} seconds'
"""


class LotWatch:
    """Watches the lots table while someone listens and hands each change to every subscriber.

    The gateway writes counters in batches and does not notify; the watch re-reads the lots changed
    in the last few seconds once a second and passes on those whose counts differ from what it last
    passed on, so each page gets every change once, pushed, without polling the API itself.
    """

    def __init__(self) -> None:
        self.pool: asyncpg.Pool | None = None
        self._subscribers: set[asyncio.Queue[list[dict[str, Any]] | None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._sent: dict[str, tuple[Any, ...]] = {}

    def subscribe(self) -> asyncio.Queue[list[dict[str, Any]] | None]:
        """Return a new subscriber's queue of change batches; start watching if nobody did."""
        queue: asyncio.Queue[list[dict[str, Any]] | None] = asyncio.Queue(QUEUE_LIMIT)
        self._subscribers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._watch(), name="lot-watch")
        return queue

    def unsubscribe(self, queue: asyncio.Queue[list[dict[str, Any]] | None]) -> None:
        """Forget a subscriber; stop watching when nobody listens."""
        self._subscribers.discard(queue)
        if not self._subscribers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def close(self) -> None:
        """Stop watching and end every subscriber's stream (application shutdown)."""
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)  # the end of the stream
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        assert self.pool is not None
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            try:
                rows = await self.pool.fetch(RECENT)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                continue  # the database is restarting: the next tick tries again
            changed = []
            for row in rows:
                view = lot_view(row)
                key = tuple(view[k] for k in ("free", "occupied", "reserved", "unknown", "closed", "status"))
                if self._sent.get(view["lot_id"]) != key:
                    self._sent[view["lot_id"]] = key
                    changed.append(view)
            if changed:
                self._publish(changed)

    def _publish(self, changed: list[dict[str, Any]]) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # a slow page loses the oldest batch, not the newest
            queue.put_nowait(changed)
