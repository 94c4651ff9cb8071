"""Store adapter for how holds end on their own: sensor arrivals, another plate in the bay, no-shows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from parking_core.adapters.holds_store import (
    FIRST_FREE_SPOT,
    RESERVATION_COLUMNS,
    end_hold,
    hold_of,
    lock_held,
    release_held_spot,
    reserve_change,
    write_spot_change,
)
from parking_core.adapters.lot_changes import Connection, record_lot_change
from parking_core.errors import HoldStateError
from parking_core.occupancy import ChangeCause
from parking_core.reservations import ArrivalEvidence, HoldStatus, SensorVerdict, sensor_verdict

# A hold whose spot another plate took moves to *other*, or (none free) ends cancelled free of charge.
MOVE_HOLD = f"""
UPDATE reservations SET spot_id = coalesce($2, spot_id), moved_from = moved_from || $3::text,
       status = CASE WHEN $2::text IS NULL THEN 'cancelled' ELSE status END,
       ended_at = CASE WHEN $2::text IS NULL THEN $4::timestamptz END
WHERE reservation_id = $1 RETURNING {RESERVATION_COLUMNS}
"""


async def sensor_arrivals(conn: Connection, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
    """End as arrived every hold whose held bay turned occupied after the hold was made."""
    ids = [
        r["reservation_id"]
        for r in await conn.fetch(
            "SELECT r.reservation_id FROM reservations r JOIN spots s ON s.spot_id = r.spot_id"
            " WHERE r.status = 'held' AND s.status = 'reserved' AND s.occupied"
            " AND s.last_reading_ts >= r.created_at ORDER BY r.reservation_id LIMIT $1",
            limit,
        )
    ]
    return [row for rid in ids if (row := await report_plate_in_spot(conn, rid, None, now)) is not None]


async def report_plate_in_spot(
    conn: Connection, reservation_id: str, plate: str | None, now: datetime
) -> dict[str, Any] | None:
    """Judge a held bay found occupied (by *plate* when known): arrival, or another plate took it.

    When another plate took the held bay, the hold moves to another free spot of the same lot (its
    zone if it asked for one) and the taken spot goes back to its sensor; with no free spot left the
    hold ends as cancelled, free of charge. Returns the reservation as it is now.
    """
    async with conn.transaction():
        try:
            held = await lock_held(conn, reservation_id, "arrive")
        except HoldStateError:
            return None
        if held is None:
            return None
        verdict = sensor_verdict(hold_of(held), plate)
        if verdict is SensorVerdict.ARRIVED:
            return await end_hold(conn, held, HoldStatus.ARRIVED, now, ArrivalEvidence.SENSOR)
        taken = held["spot_id"]
        await release_held_spot(conn, taken, now, ChangeCause.RESERVATION, plate)  # its stay begins
        other = await conn.fetchval(FIRST_FREE_SPOT, held["lot_id"], None, held["zone_id"])
        if other is not None:
            await write_spot_change(conn, reserve_change(other, held["lot_id"], now))
        row = await conn.fetchrow(MOVE_HOLD, reservation_id, other, taken, now)
        await record_lot_change(conn, [held["lot_id"]], now, "reservation_moved")
        assert row is not None
        return dict(row)


async def release_no_shows(conn: Connection, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
    """Release every hold past its deadline as a no-show; return them."""
    ids = [
        r["reservation_id"]
        for r in await conn.fetch(
            "SELECT reservation_id FROM reservations WHERE status = 'held' AND deadline <= $1"
            " ORDER BY deadline LIMIT $2",
            now,
            limit,
        )
    ]
    released = []
    for reservation_id in ids:
        async with conn.transaction():
            try:
                held = await lock_held(conn, reservation_id, "expire")
            except HoldStateError:
                continue  # arrived or cancelled meanwhile
            if held is not None:
                hold_of(held).expire(now)  # the pure rule: never before its deadline
                released.append(await end_hold(conn, held, HoldStatus.NO_SHOW, now))
    return released
