"""Who overstayed a shared lot's window: the owner's list, with the surcharge each stay owes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from guidance_api.auth import require_operator
from guidance_api.context import CLOCK, DB_POOL, principal
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param, time_param
from guidance_api.requests import ID_SCHEMA, path_id
from guidance_api.scope import check_lot_scope
from guidance_api.sharing_terms import shared_lot
from parking_core.sharing import overstay_fee, stretch_at

routes = Routes()
MAX_SPAN = timedelta(days=31)
MAX_STAYS = 5000  # stays looked at per request; a month of a big shared car park

# With the reminder each was sent and the surcharge charged once it left (guidance_api.sharing_ends).
PUBLIC_STAYS = """
SELECT s.session_id::text, s.plate, s.started_at, s.ended_at, s.state, n.created_at AS reminded_at,
       c.amount_fen AS charged_fen, c.invoice_id
FROM sessions s
LEFT JOIN LATERAL (SELECT min(created_at) AS created_at FROM driver_notifications d
                   WHERE d.session_id = s.session_id AND d.kind = 'sharing_window_ending') n ON true
LEFT JOIN overstay_charges c ON c.session_id = s.session_id
WHERE s.lot_id = $1 AND s.started_at >= $2 AND s.started_at < $3 AND s.state <> 'cancelled'
  AND NOT coalesce(s.plate = ANY($4::text[]), false)
ORDER BY s.started_at LIMIT $5
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
    (every started overstay unit after the end costs the owner's `overstay_unit_fee_fen`), when the
    driver was reminded (`reminded_at`), and once the stay is priced what was charged
    (`charged_fen`, on the invoice `invoice_id`; null before).
    """
    who = await principal(request)
    require_operator(who)
    lot_id = path_id(request, "lot_id")
    await check_lot_scope(request, who, lot_id)
    now = request.app[CLOCK]()
    start, end = time_param(request, "from", now), time_param(request, "to", now)
    if not start < end <= start + MAX_SPAN:
        raise bad_param("to", "must be after from, at most 31 days later")
    async with request.app[DB_POOL].acquire() as conn:
        lot = await shared_lot(conn, lot_id, start)
        stays = await conn.fetch(PUBLIC_STAYS, lot_id, start, end, sorted(lot.members), MAX_STAYS)
    chained = lot.stretches(start, end)
    terms = lot.terms
    items: list[dict[str, Any]] = []
    for stay in stays:
        stretch = stretch_at(chained, stay["started_at"])
        left = stay["ended_at"] or now
        if stretch is None or left <= stretch.end:
            continue  # began outside every window (not a shared stay), or left in time
        window_end = stretch.end
        items.append(
            {
                "session_id": stay["session_id"],
                "plate": stay["plate"],
                "started_at": stay["started_at"].isoformat(),
                "ended_at": None if stay["ended_at"] is None else stay["ended_at"].isoformat(),
                "window_end": window_end.isoformat(),
                "overstay_min": int((left - window_end).total_seconds() // 60),
                "surcharge_fen": overstay_fee(
                    window_end, left, terms.overstay_unit, terms.overstay_unit_fee_fen
                ),
                "reminded_at": None if stay["reminded_at"] is None else stay["reminded_at"].isoformat(),
                "charged_fen": stay["charged_fen"],
                "invoice_id": stay["invoice_id"],
            }
        )
    return web.json_response({"lot_id": lot_id, "items": items})
