"""Lot counters: the gateway's lock order, the deltas a transaction applies, the rows availability reads."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from device_gateway.results import LotRow
from parking_core.occupancy import SpotStatus

Conn = asyncpg.Connection | PoolConnectionProxy  # a plain connection or one from the pool

# The lock order of the gateway (docs/gateway.md, "Lock order"): a transaction that writes rows of a
# lot (its spots, its devices, its counters) first locks every such lot, in lot_id order, in one
# statement; rows under a lot are written only by the holder of its lock. The writer's batch and the
# liveness sweep lock with this statement (the start-up recount takes every lot in the same order).
# NO KEY UPDATE, the lock its counter updates take anyway: writers, the liveness sweep and holds (FOR
# UPDATE) still wait for each other, but a row that only refers to the lot (a gate's session: its
# foreign key takes KEY SHARE) does not wait for the batch (docs/gates.md, "Latency").
LOCK_LOTS = "SELECT lot_id FROM lots WHERE lot_id = ANY($1::text[]) ORDER BY lot_id FOR NO KEY UPDATE"

# A lot's counters as availability publishes them (LotRow): what the writer's and the sweep's updates
# return, and what lot_rows() reads for lots changed elsewhere (the API's lot_changes outbox).
LOT_ROW_COLUMNS = (
    "lot_id",
    "capacity",
    "free_count",
    "occupied_count",
    "reserved_count",
    "unknown_count",
    "closed_count",
    "status",
    "shared_spaces",
)
READ_LOT_ROWS = (
    f"SELECT {', '.join(LOT_ROW_COLUMNS)} FROM lots WHERE lot_id = ANY($1::text[]) ORDER BY lot_id"
)

APPLY_LOT_DELTAS = f"""
WITH d AS (
    SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::int[], $6::int[])
        AS d(lot_id, free, occupied, reserved, unknown, closed)
), upd AS (
    UPDATE lots l SET free_count = l.free_count + d.free,
                      occupied_count = l.occupied_count + d.occupied,
                      reserved_count = l.reserved_count + d.reserved,
                      unknown_count = l.unknown_count + d.unknown,
                      closed_count = l.closed_count + d.closed,
                      counts_updated_at = $7
    FROM d WHERE l.lot_id = d.lot_id
    RETURNING {", ".join(f"l.{column}" for column in LOT_ROW_COLUMNS)}
), sample AS (
    INSERT INTO lot_occupancy (ts, lot_id, capacity, free, occupied, reserved, unknown, closed)
    SELECT $7, lot_id, capacity, free_count, occupied_count, reserved_count, unknown_count,
           closed_count FROM upd
)
SELECT * FROM upd
"""


def lot_deltas(changes: Iterable[Sequence[str]]) -> dict[str, dict[str, int]]:
    """Sum (lot_id, status, previous_status) changes into per-lot deltas of lots that moved."""
    deltas: dict[str, dict[str, int]] = {}
    for lot, status, previous in changes:
        counts = deltas.setdefault(lot, dict.fromkeys(SpotStatus, 0))
        counts[SpotStatus(previous)] -= 1
        counts[SpotStatus(status)] += 1
    return {lot: d for lot, d in deltas.items() if any(d.values())}


async def apply_lot_deltas(conn: Conn, deltas: dict[str, dict[str, int]], now: datetime) -> list[LotRow]:
    """Move the lots' counters by *deltas*, sample lot_occupancy, and return the new counts."""
    if not deltas:
        return []
    lots = sorted(deltas)
    columns = [
        [deltas[lot][s] for lot in lots]
        for s in (
            SpotStatus.FREE,
            SpotStatus.OCCUPIED,
            SpotStatus.RESERVED,
            SpotStatus.UNKNOWN,
            SpotStatus.CLOSED,
        )
    ]
    return [lot_row(r, now) for r in await conn.fetch(APPLY_LOT_DELTAS, lots, *columns, now)]


def lot_row(row: asyncpg.Record, now: datetime) -> LotRow:
    """Return the LotRow of a row of LOT_ROW_COLUMNS read at *now*."""
    return LotRow(
        row["lot_id"],
        row["capacity"],
        row["free_count"],
        row["occupied_count"],
        row["reserved_count"],
        row["unknown_count"],
        row["closed_count"],
        row["status"] == "closed",
        now,
        row["shared_spaces"],
    )


async def lot_rows(conn: Conn, lot_ids: Sequence[str], now: datetime) -> list[LotRow]:
    """Return the current counters of *lot_ids* (lots gone since are left out)."""
    return [lot_row(r, now) for r in await conn.fetch(READ_LOT_ROWS, sorted(lot_ids))]
