"""Operator routes for spaces: close and reopen them, and publish a lot's sharing windows (错时停车)."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any

from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.auth import Principal, require_operator
from guidance_api.context import CLOCK, DB_POOL, principal
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param, int_param, time_param
from guidance_api.problems import ProblemError
from guidance_api.requests import ID_SCHEMA, parse_body, path_id
from guidance_api.reservation_sweep import refresh_sharing
from guidance_api.schemas import ClosureBody, SharingBody
from guidance_api.scope import check_lot_scope
from guidance_api.sharing_terms import shared_lot
from parking_core.adapters.closures_store import (
    CLOSURE_COLUMNS,
    ClosureRequest,
    create_closure,
    reopen_closure,
)
from parking_core.adapters.lot_changes import record_lot_change
from parking_core.sharing import owner_split

routes = Routes()
LOT = Param("lot_id", "path", ID_SCHEMA)
MAX_WINDOW_SPAN = timedelta(days=31)


def _who_id(who: Principal) -> str:
    return who.token_id or who.role


def _closure_view(row: Any) -> dict[str, Any]:
    view = dict(row)
    for key in ("starts_at", "ends_at", "created_at", "reopened_at"):
        view[key] = None if row[key] is None else row[key].isoformat()
    view["spot_ids"] = list(row["spot_ids"])
    return view


async def _operator_of_lot(request: web.Request) -> tuple[Principal, str]:
    who = await principal(request)
    require_operator(who)
    lot_id = path_id(request, "lot_id")
    await check_lot_scope(request, who, lot_id)
    return who, lot_id


@routes.add(
    RouteDoc(
        "POST",
        "/v1/operator/lots/{lot_id}/closures",
        "Close spaces",
        "spaces",
        "operator",
        (LOT,),
        ClosureBody,
        status=201,
    )
)
async def post_closure(request: web.Request) -> web.Response:
    """Closes the spots now (or from `starts_at`, until `ends_at` if given) with a reason; the row is the
    audit (who, when, why). A closed spot leaves availability like a held one and a lot whose spaces are
    all closed reads `closed`, never `full`. 409 naming `spot_ids[i]` for a spot held by a reservation.
    """
    who, lot_id = await _operator_of_lot(request)
    body = await parse_body(request, ClosureBody)
    now = request.app[CLOCK]()
    spec = ClosureRequest(
        f"clo_{secrets.token_hex(8)}",
        lot_id,
        body.spot_ids,
        body.reason,
        body.starts_at or now,
        body.ends_at,
        _who_id(who),
    )
    async with request.app[DB_POOL].acquire() as conn:
        row = await create_closure(conn, spec, now)
    return web.json_response(_closure_view(row), status=201)


@routes.add(
    RouteDoc(
        "POST",
        "/v1/operator/closures/{closure_id}/reopen",
        "Reopen closed spaces",
        "spaces",
        "operator",
        (Param("closure_id", "path", ID_SCHEMA),),
    )
)
async def post_reopen(request: web.Request) -> web.Response:
    """The spots go back to their sensors' last reading (unknown if silent) unless another active closure
    keeps them; reopening twice changes nothing.
    """
    who = await principal(request)
    require_operator(who)
    closure_id = path_id(request, "closure_id")
    lot_id = await request.app[DB_POOL].fetchval(
        "SELECT lot_id FROM spot_closures WHERE closure_id = $1", closure_id
    )
    if lot_id is None:
        raise ProblemError(pt.UNKNOWN_CLOSURE, f"no closure {closure_id!r}")
    await check_lot_scope(request, who, lot_id)
    async with request.app[DB_POOL].acquire() as conn:
        row = await reopen_closure(conn, closure_id, _who_id(who), request.app[CLOCK]())
    return web.json_response(_closure_view(row))


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/lots/{lot_id}/closures",
        "Closures of a lot",
        "spaces",
        "operator",
        (LOT, Param("limit", schema={"type": "integer", "minimum": 1, "maximum": 1000})),
    )
)
async def get_closures(request: web.Request) -> web.Response:
    """Newest first, with who closed and who reopened."""
    _, lot_id = await _operator_of_lot(request)
    rows = await request.app[DB_POOL].fetch(
        f"SELECT {CLOSURE_COLUMNS} FROM spot_closures WHERE lot_id = $1 ORDER BY created_at DESC LIMIT $2",
        lot_id,
        int_param(request, "limit", 1, 1000, 100),
    )
    return web.json_response({"items": [_closure_view(r) for r in rows]})


def _sharing_view(row: Any, shared_spaces: int | None) -> dict[str, Any]:
    view = dict(row)
    view["rules"] = json.loads(row["rules"])
    view["members"] = list(row["members"])
    view["updated_at"] = row["updated_at"].isoformat()
    view["shared_spaces_now"] = shared_spaces
    return view


SHARING_COLUMNS = (
    "lot_id, owner_name, owner_share_percent, rules, members, reminder_before_min, overstay_unit_min,"
    " overstay_unit_fee_fen, updated_by, updated_at"
)
PUT_SHARING = f"""
INSERT INTO lot_sharing ({SHARING_COLUMNS})
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10)
ON CONFLICT (lot_id) DO UPDATE SET
    owner_name = EXCLUDED.owner_name, owner_share_percent = EXCLUDED.owner_share_percent,
    rules = EXCLUDED.rules, members = EXCLUDED.members, reminder_before_min = EXCLUDED.reminder_before_min,
    overstay_unit_min = EXCLUDED.overstay_unit_min, overstay_unit_fee_fen = EXCLUDED.overstay_unit_fee_fen,
    updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at
RETURNING {SHARING_COLUMNS}
"""


@routes.add(
    RouteDoc(
        "PUT",
        "/v1/operator/lots/{lot_id}/sharing",
        "Publish a lot's sharing windows",
        "spaces",
        "operator",
        (LOT,),
        SharingBody,
    )
)
async def put_sharing(request: web.Request) -> web.Response:
    """The owner (an operator scoped to the lot) opens it to the public in recurring windows: outside
    them the lot is `closed` to the public (members keep access at the gate); inside, it shows at most
    the window's `spaces` under the lot's tariff. Holidays and make-up working days follow the lot
    tariff's calendar. Takes effect at once (lot counts, vacancies, the availability topic).
    """
    who, lot_id = await _operator_of_lot(request)
    body = await parse_body(request, SharingBody)
    now = request.app[CLOCK]()
    rules = [r.model_dump() for r in body.rules]
    pool = request.app[DB_POOL]
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            PUT_SHARING,
            lot_id,
            body.owner_name,
            body.owner_share_percent,
            json.dumps(rules),
            body.members,
            body.reminder_before_min,
            body.overstay_unit_min,
            body.overstay_unit_fee_fen,
            _who_id(who),
            now,
        )
        await conn.execute(
            "UPDATE lots SET shared_spaces = coalesce(shared_spaces, 0) WHERE lot_id = $1", lot_id
        )
        await record_lot_change(conn, [lot_id], now, "sharing")
        await refresh_sharing(conn, now, lot_id)
    shared = await pool.fetchval("SELECT shared_spaces FROM lots WHERE lot_id = $1", lot_id)
    return web.json_response(_sharing_view(row, shared))


@routes.add(
    RouteDoc("GET", "/v1/operator/lots/{lot_id}/sharing", "A lot's sharing", "spaces", "operator", (LOT,))
)
async def get_sharing(request: web.Request) -> web.Response:
    """404 for a lot that shares nothing (a public lot)."""
    _, lot_id = await _operator_of_lot(request)
    pool = request.app[DB_POOL]
    row = await pool.fetchrow(f"SELECT {SHARING_COLUMNS} FROM lot_sharing WHERE lot_id = $1", lot_id)
    if row is None:
        raise ProblemError(pt.NOT_SHARED, f"lot {lot_id!r} publishes no sharing windows")
    shared = await pool.fetchval("SELECT shared_spaces FROM lots WHERE lot_id = $1", lot_id)
    return web.json_response(_sharing_view(row, shared))


@routes.add(
    RouteDoc(
        "DELETE",
        "/v1/operator/lots/{lot_id}/sharing",
        "Stop sharing: the lot is public",
        "spaces",
        "operator",
        (LOT,),
    )
)
async def delete_sharing(request: web.Request) -> web.Response:
    """The lot becomes an ordinary public lot again (all its spaces, all the time)."""
    _, lot_id = await _operator_of_lot(request)
    now = request.app[CLOCK]()
    async with request.app[DB_POOL].acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM lot_sharing WHERE lot_id = $1", lot_id)
        await conn.execute("UPDATE lots SET shared_spaces = NULL WHERE lot_id = $1", lot_id)
        await record_lot_change(conn, [lot_id], now, "sharing")
    return web.json_response({"lot_id": lot_id, "shared_spaces": None})


@routes.add(
    RouteDoc(
        "GET",
        "/v1/lots/{lot_id}/sharing/windows",
        "When a shared lot is open to the public",
        "lots",
        "public",
        (
            LOT,
            Param("from", schema={"type": "string", "format": "date-time"}),
            Param("to", schema={"type": "string", "format": "date-time"}),
        ),
    )
)
async def get_windows(request: web.Request) -> web.Response:
    """The rules evaluated over [from, to) (default: the next 7 days, at most 31), holidays and make-up
    working days included: `[{"start","end","spaces"}]`.
    """
    lot_id = path_id(request, "lot_id")
    now = request.app[CLOCK]()
    start = time_param(request, "from", now)
    end = time_param(request, "to", start + timedelta(days=7))
    if not start < end <= start + MAX_WINDOW_SPAN:
        raise bad_param("to", "must be after from, at most 31 days later")
    async with request.app[DB_POOL].acquire() as conn:
        windows = (await shared_lot(conn, lot_id, start)).windows(start, end)
    items = [{"start": w.start.isoformat(), "end": w.end.isoformat(), "spaces": w.spaces} for w in windows]
    return web.json_response({"lot_id": lot_id, "items": items})


# Stays of the public (not members) that began inside the shared windows given as two arrays of
# bounds (disjoint, so no stay counts twice), and the reservation fees and overstay surcharges charged
# at the lot meanwhile.
SHARED_REVENUE = """
SELECT (SELECT count(*) FROM sessions s, unnest($2::timestamptz[], $3::timestamptz[]) w(a, b)
        WHERE s.lot_id = $1 AND s.amount_fen IS NOT NULL AND s.started_at >= w.a AND s.started_at < w.b
          AND NOT coalesce(s.plate = ANY($4::text[]), false)) AS stays,
       (SELECT coalesce(sum(s.amount_fen), 0) FROM sessions s,
               unnest($2::timestamptz[], $3::timestamptz[]) w(a, b)
        WHERE s.lot_id = $1 AND s.amount_fen IS NOT NULL AND s.started_at >= w.a AND s.started_at < w.b
          AND NOT coalesce(s.plate = ANY($4::text[]), false))::bigint AS stays_fen,
       (SELECT coalesce(sum(amount_fen), 0) FROM reservation_charges
        WHERE lot_id = $1 AND charged_at >= $5 AND charged_at < $6)::bigint AS reservation_fees_fen,
       (SELECT coalesce(sum(amount_fen), 0) FROM overstay_charges
        WHERE lot_id = $1 AND charged_at >= $5 AND charged_at < $6)::bigint AS overstay_fees_fen
"""
MAX_REVENUE_SPAN = timedelta(days=92)


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/lots/{lot_id}/sharing/revenue",
        "What a shared lot earned for its owner",
        "spaces",
        "operator",
        (
            LOT,
            Param("from", schema={"type": "string", "format": "date-time"}, required=True),
            Param("to", schema={"type": "string", "format": "date-time"}, required=True),
        ),
    )
)
async def get_revenue(request: web.Request) -> web.Response:
    """The public's priced stays that began inside the sharing windows of [from, to) (at most 92
    days; members' stays excluded), the reservation fees and the overstay surcharges charged at the
    lot, in fen, split by the owner's configured share (half a fen rounds to the owner; the parts add
    up to the total).
    """
    _, lot_id = await _operator_of_lot(request)
    now = request.app[CLOCK]()
    start = time_param(request, "from", now)
    end = time_param(request, "to", now)
    if not start < end <= start + MAX_REVENUE_SPAN:
        raise bad_param("to", "must be after from, at most 92 days later")
    async with request.app[DB_POOL].acquire() as conn:
        lot = await shared_lot(conn, lot_id, start)
        windows = lot.windows(start, end)
        bounds = ([w.start for w in windows], [w.end for w in windows])
        sums = await conn.fetchrow(SHARED_REVENUE, lot_id, *bounds, sorted(lot.members), start, end)
    assert sums is not None
    total = sums["stays_fen"] + sums["reservation_fees_fen"] + sums["overstay_fees_fen"]
    owner, operator = owner_split(total, lot.owner_share_percent)
    return web.json_response(
        {
            "lot_id": lot_id,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "owner_name": lot.owner_name,
            "owner_share_percent": lot.owner_share_percent,
            "shared_hours": round(sum((w.end - w.start).total_seconds() for w in windows) / 3600, 2),
            "stays": sums["stays"],
            "stays_fen": sums["stays_fen"],
            "reservation_fees_fen": sums["reservation_fees_fen"],
            "overstay_fees_fen": sums["overstay_fees_fen"],
            "total_fen": total,
            "owner_share_fen": owner,
            "operator_share_fen": operator,
        }
    )
