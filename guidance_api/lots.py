"""Public lot routes: a lot's live counts and its spots."""

from __future__ import annotations

from typing import Any, get_args

from aiohttp import web

from guidance_api.arrival_forecast import FORECAST_SCHEMA, LotNow, arrive_at_param, forecast_view, forecasts
from guidance_api.context import DB_POOL, utc_now
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.queries import LOT_DETAIL, LOT_SPOTS, lot_view
from guidance_api.requests import ID_SCHEMA, path_id, unknown_lot
from guidance_api.schemas import LotPlacement
from parking_core.lots import LotStatus
from parking_core.occupancy import SpotStatus

routes = Routes()

LOT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "lot_id": {"type": "string"},
        "name": {"type": "string"},
        "kind": {"enum": list(get_args(LotPlacement))},
        "district_id": {"type": "string"},
        "lat": {"type": "number"},
        "lon": {"type": "number"},
        "capacity": {"type": "integer"},
        "free": {"type": "integer"},
        "occupied": {"type": "integer"},
        "reserved": {"type": "integer"},
        "unknown": {"type": "integer"},
        "closed": {"type": "integer"},
        "status": {"enum": [s.value for s in LotStatus]},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "tariff_id": {"type": ["string", "null"]},
        "forecast": FORECAST_SCHEMA,
        "shared_spaces": {
            "type": ["integer", "null"],
            "description": "null: a public lot; else a shared lot's public quota now (counts show only it)",
        },
    },
}


@routes.add(
    RouteDoc(
        "GET",
        "/v1/lots/{lot_id}",
        "A lot's live counts",
        "lots",
        "public",
        (
            Param("lot_id", "path", ID_SCHEMA),
            Param(
                "arrive_at",
                schema={"type": "string", "format": "date-time"},
                description="RFC 3339, within 24 h: adds a `forecast` of free spaces then",
            ),
        ),
        response=LOT_SCHEMA,
    )
)
async def get_lot(request: web.Request) -> web.Response:
    """Counts never exceed capacity; a lot whose sensors went quiet says `unknown`, not a guess.
    With `arrive_at`, a `forecast` of the free spaces at that time (absent when nothing is known).
    """
    lot_id = path_id(request, "lot_id")
    now = utc_now()
    arrive_at = arrive_at_param(request, now)
    pool = request.app[DB_POOL]
    row = await pool.fetchrow(LOT_DETAIL, lot_id)
    if row is None:
        raise unknown_lot(lot_id)
    view = lot_view(row)
    if arrive_at is not None:
        free_now = None if view["status"] == "unknown" else row["free_count"]
        found = await forecasts(pool, [LotNow(lot_id, free_now, row["capacity"])], now, arrive_at)
        if lot_id in found:
            view["forecast"] = forecast_view(found[lot_id], arrive_at)
    return web.json_response(view)


@routes.add(
    RouteDoc(
        "GET",
        "/v1/lots/{lot_id}/spots",
        "A lot's spots and their status",
        "lots",
        "public",
        (Param("lot_id", "path", ID_SCHEMA),),
        response={
            "type": "object",
            "properties": {
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "spot_id": {"type": "string"},
                            "zone_id": {"type": ["string", "null"]},
                            "status": {"enum": [s.value for s in SpotStatus]},
                            "since": {"type": "string", "format": "date-time"},
                        },
                    },
                }
            },
        },
    )
)
async def get_lot_spots(request: web.Request) -> web.Response:
    """`since` is when the spot took its current status."""
    lot_id = path_id(request, "lot_id")
    pool = request.app[DB_POOL]
    rows = await pool.fetch(LOT_SPOTS, lot_id)
    if not rows and await pool.fetchval("SELECT 1 FROM lots WHERE lot_id = $1", lot_id) is None:
        raise unknown_lot(lot_id)
    items = [
        {
            "spot_id": r["spot_id"],
            "zone_id": r["zone_id"],
            "status": r["status"],
            "since": r["since"].isoformat(),
        }
        for r in rows
    ]
    return web.json_response({"items": items})
