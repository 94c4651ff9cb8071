"""Store adapter for closures: operators close and reopen spaces now or on a schedule, audited."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from parking_core.adapters.holds_store import LOCK_LOT, release_held_spot, write_spot_change
from parking_core.adapters.lot_changes import Connection, record_lot_change
from parking_core.ids import LotId, SpotId
from parking_core.occupancy import ChangeCause, Spot, SpotStatus, close_spot

CLOSURE_COLUMNS = (
    "closure_id, lot_id, spot_ids, reason, starts_at, ends_at, state, closed_by, created_at, reopened_by,"
    " reopened_at"
)


class ClosureError(Exception):
    """Raised when a closure cannot be made; ``field`` names the request field at fault."""

    def __init__(self, message: str, field: str, *, held: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.held = held  # the spot is held by a reservation (else: not a spot of the lot)


@dataclass(frozen=True, slots=True)
class ClosureRequest:
    """What an operator asks for: spaces, why, and when (now if ``starts_at`` is not later)."""

    closure_id: str
    lot_id: str
    spot_ids: Sequence[str]
    reason: str
    starts_at: datetime
    ends_at: datetime | None
    closed_by: str


async def _close_now(conn: Connection, lot_id: str, spot_ids: Sequence[str], now: datetime) -> None:
    """Close the spots (lot locked): held spots refuse (the hold must end or move first)."""
    rows = await conn.fetch(
        "SELECT spot_id, status FROM spots WHERE lot_id = $1 AND spot_id = ANY($2::text[])",
        lot_id,
        list(spot_ids),
    )
    statuses = {r["spot_id"]: SpotStatus(r["status"]) for r in rows}
    for index, spot_id in enumerate(spot_ids):
        if spot_id not in statuses:
            raise ClosureError(f"spot {spot_id!r} is not a spot of lot {lot_id!r}", f"spot_ids[{index}]")
        if statuses[spot_id] is SpotStatus.RESERVED:
            raise ClosureError(f"spot {spot_id!r} is held by a reservation", f"spot_ids[{index}]", held=True)
    for spot_id in spot_ids:
        _, events = close_spot(Spot(SpotId(spot_id), LotId(lot_id), statuses[spot_id]), now)
        for event in events:
            await write_spot_change(conn, event)
    await record_lot_change(conn, [lot_id], now, "closure")


async def create_closure(conn: Connection, request: ClosureRequest, now: datetime) -> dict[str, Any]:
    """Record a closure and apply it now unless it starts later; return its row."""
    async with conn.transaction():
        if await conn.fetchrow(LOCK_LOT, request.lot_id) is None:
            raise ClosureError(f"no lot {request.lot_id!r}", "lot_id")
        active = request.starts_at <= now
        if active:
            await _close_now(conn, request.lot_id, request.spot_ids, now)
        else:
            count = await conn.fetchval(
                "SELECT count(*) FROM spots WHERE lot_id = $1 AND spot_id = ANY($2::text[])",
                request.lot_id,
                list(request.spot_ids),
            )
            if count != len(set(request.spot_ids)):
                raise ClosureError(f"not every spot belongs to lot {request.lot_id!r}", "spot_ids")
        row = await conn.fetchrow(
            "INSERT INTO spot_closures (closure_id, lot_id, spot_ids, reason, starts_at, ends_at, state,"
            " closed_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            f" RETURNING {CLOSURE_COLUMNS}",
            request.closure_id,
            request.lot_id,
            list(request.spot_ids),
            request.reason,
            request.starts_at,
            request.ends_at,
            "active" if active else "scheduled",
            request.closed_by,
            now,
        )
    assert row is not None
    return dict(row)


async def reopen_closure(conn: Connection, closure_id: str, by: str, now: datetime) -> dict[str, Any] | None:
    """End a closure: its spots go back to their sensors unless another active closure keeps them."""
    async with conn.transaction():
        lot_id = await conn.fetchval("SELECT lot_id FROM spot_closures WHERE closure_id = $1", closure_id)
        if lot_id is None:
            return None
        await conn.fetchrow(LOCK_LOT, lot_id)
        row = await conn.fetchrow(
            f"SELECT {CLOSURE_COLUMNS} FROM spot_closures WHERE closure_id = $1 FOR UPDATE", closure_id
        )
        assert row is not None
        if row["state"] == "ended":
            return dict(row)
        kept = await conn.fetchval(
            "SELECT coalesce(array_agg(DISTINCT s), '{}') FROM spot_closures c, unnest(c.spot_ids) s"
            " WHERE c.lot_id = $1 AND c.state = 'active' AND c.closure_id <> $2",
            lot_id,
            closure_id,
        )
        closed = await conn.fetch(
            "SELECT spot_id FROM spots WHERE spot_id = ANY($1::text[]) AND status = 'closed'"
            " AND NOT spot_id = ANY($2::text[])",
            row["spot_ids"],
            kept,
        )  # only closed spots reopen: a spot held meanwhile keeps its hold
        for spot in closed:
            await release_held_spot(conn, spot["spot_id"], now, ChangeCause.ADMIN)
        await record_lot_change(conn, [lot_id], now, "reopen")
        ended = await conn.fetchrow(
            "UPDATE spot_closures SET state = 'ended', reopened_by = $2, reopened_at = $3"
            f" WHERE closure_id = $1 RETURNING {CLOSURE_COLUMNS}",
            closure_id,
            by,
            now,
        )
    assert ended is not None
    return dict(ended)


async def apply_schedules(conn: Connection, now: datetime) -> int:
    """Start scheduled closures whose time came and end those past ``ends_at``; return how many moved."""
    moved = 0
    due = await conn.fetch(
        "SELECT closure_id, lot_id, spot_ids, state FROM spot_closures WHERE state <> 'ended'"
        " AND ((state = 'scheduled' AND starts_at <= $1) OR ends_at <= $1) ORDER BY starts_at LIMIT 200",
        now,
    )
    for closure in due:
        if closure["state"] == "scheduled" and (closure["ends_at"] is None or closure["ends_at"] > now):
            async with conn.transaction():
                await conn.fetchrow(LOCK_LOT, closure["lot_id"])
                free_of_holds = await conn.fetch(
                    "SELECT spot_id FROM spots WHERE spot_id = ANY($1::text[]) AND status <> 'reserved'",
                    closure["spot_ids"],
                )  # a spot held when its closure starts is closed once the hold ends (next sweep)
                await _close_now(conn, closure["lot_id"], [r["spot_id"] for r in free_of_holds], now)
                if len(free_of_holds) == len(closure["spot_ids"]):
                    await conn.execute(
                        "UPDATE spot_closures SET state = 'active' WHERE closure_id = $1",
                        closure["closure_id"],
                    )
        else:
            await reopen_closure(conn, closure["closure_id"], "schedule", now)
        moved += 1
    return moved
