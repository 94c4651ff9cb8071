"""The lot_changes outbox: every API-side change to a lot's status or counts, for the signs' topic."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

Connection = asyncpg.Connection | PoolConnectionProxy
CHANNEL = "lot_changes"  # LISTEN/NOTIFY channel; the payload is empty, the rows are the news
KEEP_ROWS_S = 7 * 24 * 3600  # rows older than this are pruned: a gateway down longer republishes all


async def record_lot_change(conn: Connection, lot_ids: Iterable[str], now: datetime, reason: str) -> None:
    """Record that *lot_ids* changed, in the caller's transaction; the NOTIFY goes out at commit."""
    lots = sorted(set(lot_ids))
    if not lots:
        return
    await conn.execute(
        "INSERT INTO lot_changes (lot_id, changed_at, reason) SELECT unnest($1::text[]), $2, $3",
        lots,
        now,
        reason,
    )
    await conn.execute("SELECT pg_notify($1, '')", CHANNEL)


async def changes_after(conn: Connection, cursor: int, limit: int = 1000) -> tuple[int, list[str]]:
    """Return the newest change id read and the lots changed after *cursor* (at most *limit* rows)."""
    rows = await conn.fetch(
        "SELECT change_id, lot_id FROM lot_changes WHERE change_id > $1 ORDER BY change_id LIMIT $2",
        cursor,
        limit,
    )
    if not rows:
        return cursor, []
    return rows[-1]["change_id"], sorted({r["lot_id"] for r in rows})


async def latest_change(conn: Connection) -> int:
    """Return the newest change id (0 when none)."""
    return int(await conn.fetchval("SELECT coalesce(max(change_id), 0) FROM lot_changes"))


async def prune_changes(conn: Connection, now: datetime) -> int:
    """Delete rows older than the retention; return how many."""
    status = await conn.execute(
        "DELETE FROM lot_changes WHERE changed_at < $1::timestamptz - make_interval(secs => $2)",
        now,
        KEEP_ROWS_S,
    )
    return int(status.rsplit(" ", 1)[-1])
