"""Public guidance routes: nearby vacancies, ranked for the driver, and the list of lots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from billing import VehicleClass
from guidance_api.arrival_forecast import arrive_at_param, forecast_view, forecasts
from guidance_api.auth import bearer
from guidance_api.context import DB_POOL, principal, utc_now
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param, float_param, int_param
from guidance_api.pricing_view import first_hour_price
from guidance_api.queries import VACANCIES, lot_now, lot_view, public_state
from guidance_api.requests import ID_SCHEMA, query_id
from parking_core.lots import LotStatus

routes = Routes()

MAX_RADIUS_M = 50_000  # a city's width: further than this, guidance is not what the driver wants
VEHICLE_CLASSES = tuple(v.value for v in VehicleClass)  # what billing prices

CANDIDATES_PER_RESULT = 3  # fetch more than asked, so that lots of unknown state can go last


def _age_s(updated: datetime | None, now: datetime) -> int | None:
    return None if updated is None else max(0, int((now - updated).total_seconds()))


@routes.add(
    RouteDoc(
        "GET",
        "/v1/vacancies",
        "Lots with free spaces near a point",
        "guidance",
        "public",
        (
            Param("lat", schema={"type": "number", "minimum": -90, "maximum": 90}, required=True),
            Param("lon", schema={"type": "number", "minimum": -180, "maximum": 180}, required=True),
            Param(
                "radius_m", schema={"type": "number", "minimum": 1, "maximum": MAX_RADIUS_M, "default": 1000}
            ),
            Param("limit", schema={"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
            Param("vehicle_class", schema={"enum": list(VEHICLE_CLASSES), "default": "small_car"}),
            Param(
                "arrive_at",
                schema={"type": "string", "format": "date-time"},
                description="RFC 3339, within 24 h: each item gets a `forecast` of free spaces then",
            ),
        ),
    )
)
async def get_vacancies(request: web.Request) -> web.Response:
    """Nearest useful first: lots with a known free count by distance, then lots whose sensors are
    silent (`status` `unknown`, `free` is what was last known) by distance. Closed and full lots are
    left out; `0 ≤ free ≤ capacity` always. With `arrive_at`, each item carries a `forecast` of the
    free spaces at that time (docs/api.md), and a lot full now is offered if it may have room then.
    Held and closed spaces are never counted free; a shared lot shows only its public quota, and
    nothing outside its windows. With a driver token, the driver's held reservations are listed under
    `reservations` and an item of a lot where the driver holds a space names it in `held_spot_id`.
    """
    lat = float_param(request, "lat", -90, 90)
    lon = float_param(request, "lon", -180, 180)
    radius = float_param(request, "radius_m", 1, MAX_RADIUS_M, 1000)
    limit = int_param(request, "limit", 1, 100, 20)
    vehicle_class = request.query.get("vehicle_class", "small_car")
    if vehicle_class not in VEHICLE_CLASSES:
        raise bad_param("vehicle_class", f"must be one of {', '.join(VEHICLE_CLASSES)}")
    now = utc_now()
    arrive_at = arrive_at_param(request, now)
    pool = request.app[DB_POOL]
    rows = await pool.fetch(VACANCIES, lat, lon, radius, limit * CANDIDATES_PER_RESULT, arrive_at is not None)
    expected = await forecasts(pool, [lot_now(r) for r in rows], now, arrive_at) if arrive_at else {}
    known: list[tuple[dict[str, Any], str | None]] = []
    unknown: list[tuple[dict[str, Any], str | None]] = []
    for row in rows:
        public, status = public_state(row)
        forecast = expected.get(row["lot_id"])
        if status is LotStatus.CLOSED or (
            status is LotStatus.FULL and (forecast is None or forecast.high == 0)
        ):
            continue
        item = {
            "lot_id": row["lot_id"],
            "name": row["name"],
            "kind": row["kind"],
            "lat": row["lat"],
            "lon": row["lon"],
            "distance_m": round(row["distance_m"]),
            "free": public.free,
            "capacity": public.capacity,
            "status": status.value,
            "updated_at": row["counts_updated_at"].isoformat() if row["counts_updated_at"] else None,
            "data_age_s": _age_s(row["counts_updated_at"], now),
        }
        if arrive_at is not None and forecast is not None:
            item["forecast"] = forecast_view(forecast, arrive_at)
        (unknown if status is LotStatus.UNKNOWN else known).append((item, row["tariff_id"]))
    held = await driver_holds(request)
    # Price only what is returned, once per tariff: the same hour from the same instant costs the same.
    prices: dict[str | None, int | None] = {}
    items = []
    for item, tariff_id in (known + unknown)[:limit]:
        if tariff_id not in prices:
            prices[tariff_id] = await first_hour_price(request.app, tariff_id, vehicle_class, now)
        item["price_first_hour_fen"] = prices[tariff_id]
        if item["lot_id"] in held:
            item["held_spot_id"] = held[item["lot_id"]]["spot_id"]
        items.append(item)
    body: dict[str, Any] = {"items": items}
    if held:
        body["reservations"] = list(held.values())
    return web.Response(body=orjson.dumps(body), content_type="application/json", charset="utf-8")


async def driver_holds(request: web.Request) -> dict[str, dict[str, Any]]:
    """Return the held reservations of the calling driver by lot (none without a driver token)."""
    if bearer(request) is None:
        return {}
    who = await principal(request)
    if who.role != "driver":
        return {}
    rows = await request.app[DB_POOL].fetch(
        "SELECT reservation_id, lot_id, spot_id, deadline FROM reservations"
        " WHERE plate = ANY($1::text[]) AND status = 'held' ORDER BY deadline",
        sorted(who.plates),
    )
    return {
        r["lot_id"]: {
            "reservation_id": r["reservation_id"],
            "lot_id": r["lot_id"],
            "spot_id": r["spot_id"],
            "deadline": r["deadline"].isoformat(),
        }
        for r in rows
    }


@routes.add(
    RouteDoc(
        "GET",
        "/v1/lots",
        "Every lot with its live counts",
        "lots",
        "public",
        (Param("district_id", schema=ID_SCHEMA),),
    )
)
async def list_lots(request: web.Request) -> web.Response:
    """For maps and city screens; the same fields as one lot."""
    district = query_id(request, "district_id")
    rows = await request.app[DB_POOL].fetch(
        "SELECT lot_id, name, kind, district_id, lat, lon, capacity, status AS lot_status, tariff_id,"
        " free_count, occupied_count, reserved_count, unknown_count, closed_count, counts_updated_at,"
        " shared_spaces FROM lots WHERE ($1::text IS NULL OR district_id = $1) ORDER BY district_id, lot_id",
        district,
    )
    return web.json_response({"items": [lot_view(r) for r in rows]})
