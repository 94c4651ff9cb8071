"""Who overstayed a shared lot's window: the owner's list, with the surcharge each stay owes."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.auth import require_operator
from guidance_api.context import CLOCK, DB_POOL, principal
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param, time_param
from guidance_api.problems import ProblemError
from guidance_api.requests import ID_SCHEMA, path_id
from guidance_api.reservation_sweep import day_types_of, rules_of, tariff_in_force
from guidance_api.scope import check_lot_scope
from parking_core.sharing import overstay_fee, window_end_after

routes = Routes()
MAX_SPAN = timedelta(days=31)
MAX_STAYS = 5000  # stays looked at per request; a month of a big shared car park

PUBLIC_STAYS = """
SELECT session_id::text, plate, started_at, ended_at, state FROM sessions
WHERE lot_id = $1 AND started_at >= $2 AND started_at < $3 AND state <> 'cancelled'
  AND NOT coalesce(plate = ANY($4::text[]), false)
ORDER BY started_at LIMIT $5
"""


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/lots/{lot_id}/sharing/overstays",
        "Who stayed past a sharing window",
        "spaces",
        "operator",
        (
            Param("lot_id", "path", ID_SCHEMA),
            Param("from", schema={"type": "string", "format": "date-time"}, required=True),
            Param("to", schema={"type": "string", "format": "date-time"}, required=True),
        ),
    )
)
async def get_overstays(request: web.Request) -> web.Response:
    """The public's stays that began in [from, to) (at most 31 days) inside a sharing window and
    ended after it, or are still inside past it: `window_end`, `overstay_min` and `surcharge_fen`
    (every started overstay unit after the end costs the owner's `overstay_unit_fee_fen`).
    """
    who = await principal(request)
    require_operator(who)
    lot_id = path_id(request, "lot_id")
    await check_lot_scope(request, who, lot_id)
    now = request.app[CLOCK]()
    start, end = time_param(request, "from", now), time_param(request, "to", now)
    if not start < end <= start + MAX_SPAN:
        raise bad_param("to", "must be after from, at most 31 days later")
    pool = request.app[DB_POOL]
    row = await pool.fetchrow(
        "SELECT s.rules, s.members, s.overstay_unit_min, s.overstay_unit_fee_fen, l.tariff_id, l.time_zone"
        " FROM lot_sharing s JOIN lots l USING (lot_id) WHERE lot_id = $1",
        lot_id,
    )
    if row is None:
        raise ProblemError(pt.NOT_SHARED, f"lot {lot_id!r} publishes no sharing windows")
    async with pool.acquire() as conn:
        tariff = await tariff_in_force(conn, row["tariff_id"], start)
        stays = await conn.fetch(PUBLIC_STAYS, lot_id, start, end, list(row["members"]), MAX_STAYS)
    day_type = day_types_of(tariff)
    rules, tz = rules_of(json.loads(row["rules"])), ZoneInfo(row["time_zone"])
    unit = timedelta(minutes=row["overstay_unit_min"])
    items: list[dict[str, Any]] = []
    for stay in stays:
        window_end = window_end_after(rules, stay["started_at"], tz, day_type)
        left = stay["ended_at"] or now
        if window_end is None or left <= window_end:
            continue  # began outside every window (not a shared stay), or left in time
        items.append(
            {
                "session_id": stay["session_id"],
                "plate": stay["plate"],
                "started_at": stay["started_at"].isoformat(),
                "ended_at": None if stay["ended_at"] is None else stay["ended_at"].isoformat(),
                "window_end": window_end.isoformat(),
                "overstay_min": int((left - window_end).total_seconds() // 60),
                "surcharge_fen": overstay_fee(window_end, left, unit, row["overstay_unit_fee_fen"]),
            }
        )
    return web.json_response({"lot_id": lot_id, "items": items})
