"""Follow the lot_changes outbox: lots the API closed, reserved or shared reach the signs' topic at once."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import asyncpg

from device_gateway.lot_counts import Conn, lot_rows
from device_gateway.results import LotRow
from parking_core.adapters.lot_changes import CHANNEL, changes_after

POLL_S = 1.0  # without a notification (or with one lost), look again this often
REPLAY = timedelta(hours=24)  # on start, republish lots changed while the gateway may have been away


async def start_cursor(conn: Conn, now: datetime) -> int:
    """Return the change id to follow from: the last one older than the replay window."""
    return int(
        await conn.fetchval(
            "SELECT coalesce(max(change_id), 0) FROM lot_changes WHERE changed_at < $1", now - REPLAY
        )
    )


async def changed_lots(conn: Conn, cursor: int, now: datetime) -> tuple[int, list[LotRow]]:
    """Return the new cursor and the current rows of lots changed after *cursor*."""
    cursor, lots = await changes_after(conn, cursor)
    return cursor, await lot_rows(conn, lots, now) if lots else []


async def follow_lot_changes(
    dsn: str, pool: asyncpg.Pool, update: Callable[[Iterable[LotRow]], None], stop: asyncio.Event
) -> None:
    """LISTEN on the outbox's channel and hand every changed lot to *update* until *stop*."""
    woken = asyncio.Event()
    listener = await asyncpg.connect(dsn)
    try:
        await listener.add_listener(CHANNEL, lambda *_: woken.set())
        async with pool.acquire() as conn:
            cursor = await start_cursor(conn, datetime.now(UTC))
        while not stop.is_set():
            woken.clear()
            async with pool.acquire() as conn:
                while True:  # catch up in pages
                    cursor, rows = await changed_lots(conn, cursor, datetime.now(UTC))
                    if not rows:
                        break
                    update(rows)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), POLL_S)
    finally:
        await listener.close()
