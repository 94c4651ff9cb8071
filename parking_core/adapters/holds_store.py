"""Store adapter for holds: take, cancel, arrive and release, serialised per lot by its row lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from parking_core.adapters.lot_changes import Connection, record_lot_change
from parking_core.adapters.lot_room_lock import lock_room
from parking_core.errors import HoldStateError, NoRoomError, SpotNotFreeError
from parking_core.ids import LotId, SpotId, ZoneId
from parking_core.lots import LotCounts
from parking_core.occupancy import ChangeCause, ReadingKey, Spot, SpotStatus, SpotStatusChanged, release_spot
from parking_core.reservations import (
    ArrivalEvidence,
    ArrivalWindow,
    Hold,
    HoldPolicy,
    HoldStatus,
    has_room,
    is_late_cancellation,
    new_hold,
)
from parking_core.sharing import public_counts

# Every hold on a lot takes this lock first (the gateway's batches take the same row lock before
# touching spots), so two requests for the last space are decided one after the other. A new hold
# takes the lot's room lock before it (lot_room_lock.py): the gate's entry decisions take that one,
# not this row, so a hold and an entry never take the same last space.
LOCK_LOT = """
SELECT lot_id, status, capacity, free_count, occupied_count, reserved_count, unknown_count, closed_count,
       shared_spaces, tariff_id, counted_by,
       reservation_grace_s, reservation_cutoff_s, reservation_max_lead_s, reservation_max_window_s
FROM lots WHERE lot_id = $1 FOR UPDATE
"""
# The SQL twin of parking_core.reservations.choose_spot (same order: spot ids by code point).
FIRST_FREE_SPOT = """
SELECT spot_id FROM spots
WHERE lot_id = $1 AND status = 'free'
  AND ($2::text IS NULL OR spot_id = $2) AND ($3::text IS NULL OR zone_id = $3)
ORDER BY spot_id COLLATE "C" LIMIT 1
"""
SPOT_FOR_RELEASE = """
SELECT s.spot_id, s.lot_id, s.status, s.since, s.last_reading_ts, s.last_reading_seq, s.occupied,
       d.status IS DISTINCT FROM 'offline' AS sensor_online
FROM spots s LEFT JOIN devices d ON d.spot_id = s.spot_id AND d.kind = 'bay_sensor'
WHERE s.spot_id = $1
"""
RESERVATION_COLUMNS = """
reservation_id, lot_id, spot_id, zone_id, plate, token_id, status, arrival_from, arrival_to, deadline,
created_at, ended_at, evidence, session_id, moved_from, late_cancellation, tariff_id, tariff_version
"""
# The bay session of a spot released occupied; a conflict (the spot or the plate already has a
# session inside) leaves the existing one alone.
OPEN_BAY_SESSION = """
INSERT INTO sessions (session_id, lot_id, kind, state, spot_id, plate, started_at)
VALUES (gen_random_uuid(), $1, 'bay', 'open', $2, $3, $4)
ON CONFLICT DO NOTHING
RETURNING session_id::text
"""
COUNT_COLUMNS = {status: f"{status.value}_count" for status in SpotStatus}


class LotNotFoundError(LookupError):
    """Raised when a hold names a lot that does not exist."""


class LotNotPublicError(NoRoomError):
    """Raised when a lot is closed, or shared and outside its windows: no hold for the public."""

    def __init__(self, lot_id: str) -> None:
        super().__init__(lot_id)
        self.args = (f"lot {lot_id!r} is closed to the public now",)


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """What a driver asks for."""

    reservation_id: str
    lot_id: str
    plate: str
    window: ArrivalWindow
    spot_id: str | None = None
    zone_id: str | None = None
    token_id: str | None = None


def policy_of(lot: Any) -> HoldPolicy:
    """Return the reservation policy of a ``lots`` row."""
    return HoldPolicy(
        grace=timedelta(seconds=lot["reservation_grace_s"]),
        cancel_cutoff=timedelta(seconds=lot["reservation_cutoff_s"]),
        max_lead=timedelta(seconds=lot["reservation_max_lead_s"]),
        max_window=timedelta(seconds=lot["reservation_max_window_s"]),
    )


def counts_of(lot: Any) -> LotCounts:
    """Return the live counts of a locked ``lots`` row."""
    return LotCounts(
        lot["capacity"],
        lot["free_count"],
        lot["occupied_count"],
        lot["reserved_count"],
        lot["unknown_count"],
        lot["closed_count"],
    )


async def move_count(
    conn: Connection, lot_id: str, previous: SpotStatus, status: SpotStatus, now: datetime
) -> None:
    """Move one space of *lot_id* from *previous* to *status* in its counters."""
    if previous is status:
        return
    await conn.execute(
        f"UPDATE lots SET {COUNT_COLUMNS[previous]} = {COUNT_COLUMNS[previous]} - 1,"
        f" {COUNT_COLUMNS[status]} = {COUNT_COLUMNS[status]} + 1, counts_updated_at = $2 WHERE lot_id = $1",
        lot_id,
        now,
    )


async def write_spot_change(conn: Connection, change: SpotStatusChanged) -> None:
    """Write a spot's new status, its history row and the lot's counters (lot already locked)."""
    if change.previous is change.status:
        return
    await conn.execute(
        "UPDATE spots SET status = $2, since = $3 WHERE spot_id = $1",
        change.spot_id,
        change.status.value,
        change.ts,
    )
    await conn.execute(
        "INSERT INTO spot_status_changes (ts, spot_id, lot_id, status, previous_status, cause)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        change.ts,
        change.spot_id,
        change.lot_id,
        change.status.value,
        change.previous.value,
        change.cause.value,
    )
    await move_count(conn, change.lot_id, change.previous, change.status, change.ts)


def reserve_change(spot_id: str, lot_id: str, now: datetime) -> SpotStatusChanged:
    """Return the change of a free spot taken by a hold."""
    return SpotStatusChanged(
        SpotId(spot_id), LotId(lot_id), now, SpotStatus.RESERVED, SpotStatus.FREE, ChangeCause.RESERVATION
    )


async def release_held_spot(
    conn: Connection, spot_id: str, now: datetime, cause: ChangeCause, plate: str | None = None
) -> str | None:
    """Give a held or closed spot back to its sensor (parking_core.occupancy.release_spot).

    A spot that comes back occupied gets its bay session, as a reading turning it occupied would
    (device_gateway.store's OPEN_BAY_SESSIONS): from the reading's time, with *plate* when known.
    Returns that session's id, if one opened.
    """
    row = await conn.fetchrow(SPOT_FOR_RELEASE, spot_id)
    if row is None:
        return None
    key = (
        None
        if row["last_reading_ts"] is None
        else ReadingKey(row["last_reading_ts"], row["last_reading_seq"] or 0)
    )
    spot = Spot(
        SpotId(spot_id), LotId(row["lot_id"]), SpotStatus(row["status"]), row["since"], key, row["occupied"]
    )
    after, events = release_spot(spot, now, sensor_online=row["sensor_online"], cause=cause)
    for event in events:
        await write_spot_change(conn, event)
    if not events or after.status is not SpotStatus.OCCUPIED:
        return None
    started = min(row["last_reading_ts"] or now, now)
    opened: str | None = await conn.fetchval(OPEN_BAY_SESSION, row["lot_id"], spot_id, plate, started)
    return opened


async def _tariff_version(conn: Connection, tariff_id: str | None, now: datetime) -> int | None:
    if tariff_id is None:
        return None
    version: int | None = await conn.fetchval(
        "SELECT version FROM tariff_versions WHERE tariff_id = $1 AND valid_from <= $2::timestamptz::date"
        " AND (valid_to IS NULL OR valid_to > $2::timestamptz::date) ORDER BY valid_from DESC, version DESC"
        " LIMIT 1",
        tariff_id,
        now,
    )
    return version


async def create_hold(conn: Connection, request: HoldRequest, now: datetime) -> dict[str, Any]:
    """Take a free space for *request* (its spot or zone if asked) and return the reservation row.

    Raises LotNotFoundError, HoldRequestError (policy), LotNotPublicError, NoRoomError, or asyncpg's
    UniqueViolationError when the plate already holds a space at the lot.
    """
    async with conn.transaction():
        await lock_room(conn, request.lot_id)
        lot = await conn.fetchrow(LOCK_LOT, request.lot_id)
        if lot is None:
            raise LotNotFoundError(f"no lot {request.lot_id!r}")
        hold = new_hold(
            request.reservation_id,
            LotId(request.lot_id),
            request.plate,
            request.window,
            now=now,
            policy=policy_of(lot),
            spot_id=SpotId(request.spot_id) if request.spot_id else None,
            zone_id=ZoneId(request.zone_id) if request.zone_id else None,
        )
        public, closed_to_public = public_counts(counts_of(lot), lot["shared_spaces"])
        if lot["status"] == "closed" or closed_to_public:
            raise LotNotPublicError(request.lot_id)
        spot_id = await _take_space(conn, lot, hold, public, now)
        row = await conn.fetchrow(
            "INSERT INTO reservations (reservation_id, lot_id, spot_id, zone_id, plate, token_id,"
            " arrival_from, arrival_to, deadline, created_at, tariff_id, tariff_version)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING {RESERVATION_COLUMNS}",
            hold.reservation_id,
            hold.lot_id,
            spot_id,
            hold.zone_id,
            hold.plate,
            request.token_id,
            hold.window.start,
            hold.window.end,
            hold.deadline,
            now,
            lot["tariff_id"],
            await _tariff_version(conn, lot["tariff_id"], now),
        )
        await recount_gate_lot(conn, request.lot_id)
        await record_lot_change(conn, [request.lot_id], now, "reservation")
    assert row is not None
    return dict(row)


async def recount_gate_lot(conn: Connection, lot_id: str) -> None:
    """Recount a lot counted at its gates (inside sessions and holds); other lots are left alone."""
    await conn.execute("SELECT gate_lot_recount($1)", lot_id)


async def _take_space(conn: Connection, lot: Any, hold: Hold, public: LotCounts, now: datetime) -> str | None:
    """Move one free space of the locked lot to reserved: a spot if the lot has spots."""
    if not has_room(public):
        raise NoRoomError(hold.lot_id, hold.zone_id)
    has_spots = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM spots WHERE lot_id = $1)", hold.lot_id)
    if not has_spots:
        if lot["counted_by"] != "gates":  # a gate-counted lot recounts once the hold is written
            await move_count(conn, hold.lot_id, SpotStatus.FREE, SpotStatus.RESERVED, now)
        return None
    spot_id: str | None = await conn.fetchval(FIRST_FREE_SPOT, hold.lot_id, hold.spot_id, hold.zone_id)
    if spot_id is None:
        if hold.spot_id is not None:
            status = await conn.fetchval("SELECT status FROM spots WHERE spot_id = $1", hold.spot_id)
            raise SpotNotFreeError(hold.spot_id, status or "unknown to this lot")
        raise NoRoomError(hold.lot_id, hold.zone_id)
    await write_spot_change(conn, reserve_change(spot_id, lot["lot_id"], now))
    return spot_id


async def lock_held(conn: Connection, reservation_id: str, action: str) -> dict[str, Any] | None:
    """Lock the reservation's lot, then the reservation; raise HoldStateError unless it is held."""
    lot_id = await conn.fetchval("SELECT lot_id FROM reservations WHERE reservation_id = $1", reservation_id)
    if lot_id is None:
        return None
    await conn.fetchrow(LOCK_LOT, lot_id)
    row = await conn.fetchrow(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE reservation_id = $1 FOR UPDATE", reservation_id
    )
    assert row is not None
    if row["status"] != HoldStatus.HELD.value:
        raise HoldStateError(reservation_id, row["status"], action)
    return dict(row)


async def end_hold(  # noqa: PLR0913 - how a hold ends has this many parts
    conn: Connection,
    held: dict[str, Any],
    status: HoldStatus,
    now: datetime,
    evidence: ArrivalEvidence | None = None,
    *,
    late: bool = False,
    session_id: str | None = None,
) -> dict[str, Any]:
    """End a locked hold and give its space back (to the sensor's reading, or to free)."""
    gate_counted = await conn.fetchval(
        "SELECT counted_by = 'gates' FROM lots WHERE lot_id = $1", held["lot_id"]
    )
    if held["spot_id"] is not None:
        plate = held["plate"] if status is HoldStatus.ARRIVED else None  # the holder is in the bay
        opened = await release_held_spot(conn, held["spot_id"], now, ChangeCause.RESERVATION, plate)
        session_id = session_id or opened
    elif not gate_counted:
        back = SpotStatus.OCCUPIED if status is HoldStatus.ARRIVED else SpotStatus.FREE
        await move_count(conn, held["lot_id"], SpotStatus.RESERVED, back, now)
    row = await conn.fetchrow(
        "UPDATE reservations SET status = $2, ended_at = $3, evidence = $4, late_cancellation = $5,"
        f" session_id = coalesce($6, session_id) WHERE reservation_id = $1 RETURNING {RESERVATION_COLUMNS}",
        held["reservation_id"],
        status.value,
        now,
        None if evidence is None else evidence.value,
        late,
        session_id,
    )
    if gate_counted:
        await recount_gate_lot(conn, held["lot_id"])
    await record_lot_change(conn, [held["lot_id"]], now, f"reservation_{status.value}")
    assert row is not None
    return dict(row)


async def cancel_hold(conn: Connection, reservation_id: str, now: datetime) -> dict[str, Any] | None:
    """Cancel a held reservation (None if unknown; HoldStateError if it already ended)."""
    async with conn.transaction():
        held = await lock_held(conn, reservation_id, "cancel")
        if held is None:
            return None
        lot = await conn.fetchrow(LOCK_LOT, held["lot_id"])
        late = is_late_cancellation(hold_of(held), now, policy_of(lot))
        return await end_hold(conn, held, HoldStatus.CANCELLED, now, late=late)


def hold_of(row: dict[str, Any]) -> Hold:
    """Return the pure hold of a ``reservations`` row."""
    return Hold(
        row["reservation_id"],
        LotId(row["lot_id"]),
        row["plate"],
        ArrivalWindow(row["arrival_from"], row["arrival_to"]),
        row["deadline"],
        row["created_at"],
        row["spot_id"],
        row["zone_id"],
        HoldStatus(row["status"]),
    )


async def arrive_by_gate(
    conn: Connection, lot_id: str, plate: str, now: datetime, session_id: str | None = None
) -> dict[str, Any] | None:
    """The held plate entered at a gate: end its hold as arrived (the gate opens with `reserved`).

    Returns the reservation, or None when the plate holds nothing at the lot. Call it in the gate's
    entry transaction; the caller links *session_id*.
    """
    async with conn.transaction():
        reservation_id = await conn.fetchval(
            "SELECT reservation_id FROM reservations WHERE lot_id = $1 AND plate = $2 AND status = 'held'",
            lot_id,
            plate,
        )
        if reservation_id is None:
            return None
        held = await lock_held(conn, reservation_id, "arrive")
        assert held is not None
        return await end_hold(
            conn, held, HoldStatus.ARRIVED, now, ArrivalEvidence.GATE, session_id=session_id
        )


async def get_reservation(conn: Connection, reservation_id: str) -> dict[str, Any] | None:
    """Return one reservation row."""
    row = await conn.fetchrow(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE reservation_id = $1", reservation_id
    )
    return None if row is None else dict(row)
