"""Reservation routes: drivers hold, read and cancel spaces; operators see the holds of their lots."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.auth import Principal, require_operator
from guidance_api.context import CLOCK, DB_POOL, principal
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import int_param
from guidance_api.problems import ProblemError, field_error
from guidance_api.requests import ID_SCHEMA, parse_body, path_id
from guidance_api.schemas import ReservationBody
from guidance_api.scope import check_lot_scope
from parking_core.adapters.holds_store import RESERVATION_COLUMNS, HoldRequest, cancel_hold, create_hold
from parking_core.reservations import ArrivalWindow, HoldStatus

routes = Routes()
STATUSES = tuple(s.value for s in HoldStatus)
MAX_PAGE, DEFAULT_PAGE = 1000, 100
RESERVATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reservation_id": {"type": "string"},
        "lot_id": {"type": "string"},
        "spot_id": {"type": ["string", "null"], "description": "the held spot (null: a lot without spots)"},
        "zone_id": {"type": ["string", "null"]},
        "plate": {"type": "string"},
        "status": {"enum": list(STATUSES)},
        "arrival_from": {"type": "string", "format": "date-time"},
        "arrival_to": {"type": "string", "format": "date-time"},
        "deadline": {"type": "string", "format": "date-time"},
        "evidence": {"enum": ["gate", "sensor", None]},
        "moved_from": {"type": "array", "items": {"type": "string"}},
        "late_cancellation": {"type": "boolean"},
        "fees": {"type": "array", "items": {"type": "object"}},
    },
}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


PUBLIC_FIELDS = (
    *("reservation_id", "lot_id", "spot_id", "zone_id", "plate", "status", "evidence"),
    *("session_id", "late_cancellation"),
)
TIMES = ("arrival_from", "arrival_to", "deadline", "created_at", "ended_at")


def reservation_view(row: Any, fees: Sequence[Any] = ()) -> dict[str, Any]:
    """Return the JSON of a reservation row (and its fees, once priced)."""
    view = {k: row[k] for k in PUBLIC_FIELDS} | {k: _iso(row[k]) for k in TIMES}
    view["moved_from"] = list(row["moved_from"])
    view["fees"] = [{"kind": f["kind"], "amount_fen": f["amount_fen"]} for f in fees]
    return view


def _require_driver_plate(who: Principal, plate: str) -> None:
    if who.role != "driver":
        raise ProblemError(pt.FORBIDDEN, "reservations are made with a driver token")
    if plate not in who.plates:
        raise ProblemError(
            pt.FORBIDDEN,
            f"plate {plate} is not bound to this token",
            errors=[field_error("plate", "not bound to this token", "forbidden")],
        )


async def _fees(pool: asyncpg.Pool, reservation_id: str) -> list[Any]:
    return list(
        await pool.fetch(
            "SELECT kind, amount_fen FROM reservation_charges WHERE reservation_id = $1 ORDER BY charge_id",
            reservation_id,
        )
    )


@routes.add(
    RouteDoc(
        "POST",
        "/v1/reservations",
        "Hold a space for a plate",
        "reservations",
        "driver",
        body=ReservationBody,
        response=RESERVATION_SCHEMA,
        status=201,
    )
)
async def post_reservation(request: web.Request) -> web.Response:
    """The hold takes one free space at once (a spot of the zone, or the spot, if asked) and keeps it
    until the vehicle arrives (gate or bay sensor), the driver cancels, or `deadline` (window end plus
    the lot's grace) passes: then it is released as a no-show and the tariff's fees are charged.
    409 `no_room` when nothing is free; 409 `lot_not_public` for a closed lot or a shared lot outside
    its windows; 422 naming `arrival_from`/`arrival_to` for windows the lot's policy refuses.
    """
    who = await principal(request)
    if who.role != "driver":
        raise ProblemError(pt.FORBIDDEN, "reservations are made with a driver token")
    body = await parse_body(request, ReservationBody)  # the plate it names is checked next
    _require_driver_plate(who, body.plate)
    window = ArrivalWindow(body.arrival_from, body.arrival_to)
    hold = HoldRequest(
        f"res_{secrets.token_hex(8)}",
        body.lot_id,
        body.plate,
        window,
        body.spot_id,
        body.zone_id,
        who.token_id,
    )
    async with request.app[DB_POOL].acquire() as conn:
        row = await create_hold(conn, hold, request.app[CLOCK]())
    return web.json_response(reservation_view(row), status=201)


async def _visible(request: web.Request, reservation_id: str) -> tuple[Principal, Any]:
    """Return the caller and the reservation, or 404 when it is not theirs to see."""
    who = await principal(request)
    pool = request.app[DB_POOL]
    row = await pool.fetchrow(
        "SELECT r.*, l.district_id FROM reservations r JOIN lots l USING (lot_id) WHERE reservation_id = $1",
        reservation_id,
    )
    visible = row is not None and (
        (who.role == "driver" and row["plate"] in who.plates)
        or who.may_see_lot(row["lot_id"], row["district_id"])
    )
    if not visible:
        raise ProblemError(pt.UNKNOWN_RESERVATION, f"no reservation {reservation_id!r}")
    return who, row


ONE = (Param("reservation_id", "path", ID_SCHEMA),)


@routes.add(
    RouteDoc(
        "GET",
        "/v1/reservations/{reservation_id}",
        "A reservation",
        "reservations",
        "driver",
        ONE,
        response=RESERVATION_SCHEMA,
    )
)
async def get_reservation_route(request: web.Request) -> web.Response:
    """The driver whose token holds the plate, or an operator of the lot; `fees` once it is priced."""
    reservation_id = path_id(request, "reservation_id")
    _, row = await _visible(request, reservation_id)
    return web.json_response(reservation_view(row, await _fees(request.app[DB_POOL], reservation_id)))


@routes.add(
    RouteDoc(
        "DELETE",
        "/v1/reservations/{reservation_id}",
        "Cancel a reservation",
        "reservations",
        "driver",
        ONE,
        response=RESERVATION_SCHEMA,
    )
)
async def delete_reservation(request: web.Request) -> web.Response:
    """Free before the lot's cut-off (`late_cancellation` false); later, the reservation fee is due.
    409 `not_held` once it arrived, was cancelled or released.
    """
    reservation_id = path_id(request, "reservation_id")
    who, _ = await _visible(request, reservation_id)
    if who.role != "driver" and not who.is_admin:
        raise ProblemError(pt.FORBIDDEN, "only the driver (or the admin) cancels a reservation")
    async with request.app[DB_POOL].acquire() as conn:
        row = await cancel_hold(conn, reservation_id, request.app[CLOCK]())
    return web.json_response(reservation_view(row))


def _status_param(request: web.Request) -> str | None:
    status = request.query.get("status")
    if status is not None and status not in STATUSES:
        raise ProblemError(
            pt.VALIDATION,
            f"status must be one of {', '.join(STATUSES)}",
            status=400,
            errors=[field_error("status", "unknown status", "enum")],
        )
    return status


LIST_PARAMS = (
    Param("status", schema={"enum": list(STATUSES)}),
    Param("limit", schema={"type": "integer", "minimum": 1, "maximum": 1000}),
)


@routes.add(
    RouteDoc("GET", "/v1/reservations", "The driver's reservations", "reservations", "driver", LIST_PARAMS)
)
async def list_reservations(request: web.Request) -> web.Response:
    """Reservations of the token's plates, newest first."""
    who = await principal(request)
    if who.role != "driver":
        raise ProblemError(pt.FORBIDDEN, "this route needs a driver token")
    rows = await request.app[DB_POOL].fetch(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE plate = ANY($1::text[])"
        " AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, reservation_id LIMIT $3",
        sorted(who.plates),
        _status_param(request),
        int_param(request, "limit", 1, MAX_PAGE, DEFAULT_PAGE),
    )
    return web.json_response({"items": [reservation_view(r) for r in rows]})


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/lots/{lot_id}/reservations",
        "Holds of a lot",
        "operator",
        "operator",
        (Param("lot_id", "path", ID_SCHEMA), *LIST_PARAMS),
    )
)
async def lot_reservations(request: web.Request) -> web.Response:
    """Newest first; `status=held` lists what the lot keeps for drivers now."""
    who = await principal(request)
    require_operator(who)
    lot_id = path_id(request, "lot_id")
    await check_lot_scope(request, who, lot_id)
    rows = await request.app[DB_POOL].fetch(
        f"SELECT {RESERVATION_COLUMNS} FROM reservations WHERE lot_id = $1"
        " AND ($2::text IS NULL OR status = $2) ORDER BY created_at DESC, reservation_id LIMIT $3",
        lot_id,
        _status_param(request),
        int_param(request, "limit", 1, MAX_PAGE, DEFAULT_PAGE),
    )
    return web.json_response({"items": [reservation_view(r) for r in rows]})
