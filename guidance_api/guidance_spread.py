"""Guidance that spreads drivers: `POST /v1/guidance` ranks lots and remembers where it sent the driver."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from guidance_api.arrival_forecast import MAX_HORIZON, forecast_view, forecasts
from guidance_api.context import DB_POOL, utc_now
from guidance_api.openapi import RouteDoc, Routes
from guidance_api.params import bad_param
from guidance_api.pricing_view import first_hour_price
from guidance_api.queries import VACANCIES, lot_now, row_status
from guidance_api.requests import parse_body
from parking_core.forecast import Forecast
from parking_core.guidance_rank import Candidate, Ranked, rank

routes = Routes()

DEFAULT_TRIP = timedelta(minutes=10)  # when the app does not say when the driver arrives
LATE_GRACE = timedelta(minutes=5)  # a sent driver still counts as on the way this long after arrival
KEEP_SENDS = timedelta(hours=1)  # rows older than this after arrival are deleted as new ones come
CANDIDATES = 60  # nearest lots considered before ranking: a district's worth

PENDING = """
SELECT lot_id, count(*) AS pending FROM guidance_sends
WHERE lot_id = ANY($1::text[]) AND arrive_at > $2
GROUP BY lot_id
"""
RECORD = """
WITH old AS (DELETE FROM guidance_sends WHERE arrive_at < $4)
INSERT INTO guidance_sends (lot_id, sent_at, arrive_at) VALUES ($1, $2, $3) RETURNING send_id
"""


class GuidanceBody(BaseModel):
    """``POST /v1/guidance``: where the driver is going and when they expect to get there."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    radius_m: Annotated[float, Field(ge=1, le=50_000)] = 2000
    limit: Annotated[int, Field(ge=1, le=20)] = 5
    vehicle_class: Literal["small_car", "large_car", "new_energy", "motorcycle"] = "small_car"
    arrive_at: AwareDatetime | None = None


def item_view(row: Any, ranked: Ranked, forecast: Forecast, arrive_at: datetime) -> dict[str, Any]:
    """Return one ranked lot."""
    return {
        "lot_id": row["lot_id"],
        "name": row["name"],
        "kind": row["kind"],
        "lat": row["lat"],
        "lon": row["lon"],
        "distance_m": round(row["distance_m"]),
        "free": row["free_count"],
        "capacity": row["capacity"],
        "status": row_status(row).value,
        "price_first_hour_fen": ranked.candidate.price_first_hour_fen,
        "forecast": forecast_view(forecast, arrive_at),
        "pending": ranked.candidate.pending,
        "space_probability": round(ranked.space_probability, 3),
        "cost_m": round(ranked.cost_m),
    }


@routes.add(
    RouteDoc(
        "POST",
        "/v1/guidance",
        "Send a driver to a lot, spreading drivers",
        "guidance",
        "public",
        body=GuidanceBody,
    )
)
async def post_guidance(request: web.Request) -> web.Response:
    """Lots near the destination ranked by expected cost: distance, price, and the chance of a space
    at arrival given the forecast and the drivers already sent there (docs/api.md). The first lot is
    recorded as where this driver goes, so the next driver is not sent into the same queue.
    """
    body = await parse_body(request, GuidanceBody)
    now = utc_now()
    arrive_at = body.arrive_at or now + DEFAULT_TRIP
    if not now - LATE_GRACE <= arrive_at <= now + MAX_HORIZON:
        raise bad_param("arrive_at", "must be from now to 24 hours ahead")
    pool = request.app[DB_POOL]
    rows = [
        r
        for r in await pool.fetch(VACANCIES, body.lat, body.lon, body.radius_m, CANDIDATES, True)
        if row_status(r).value != "closed"
    ]
    expected = await forecasts(pool, [lot_now(r) for r in rows], now, arrive_at)
    pending = {
        r["lot_id"]: r["pending"]
        for r in await pool.fetch(PENDING, [r["lot_id"] for r in rows], now - LATE_GRACE)
    }
    prices: dict[str | None, int | None] = {}
    candidates = []
    for row in rows:
        forecast = expected.get(row["lot_id"])
        if forecast is None:
            continue  # nothing known of the lot: no chance to weigh
        if row["tariff_id"] not in prices:
            prices[row["tariff_id"]] = await first_hour_price(
                request.app, row["tariff_id"], body.vehicle_class, now
            )
        candidates.append(
            Candidate(
                row["lot_id"],
                row["distance_m"],
                prices[row["tariff_id"]],
                forecast.expected_free,
                forecast.low,
                forecast.high,
                pending.get(row["lot_id"], 0),
            )
        )
    ranked = rank(candidates)[: body.limit]
    by_id = {r["lot_id"]: r for r in rows}
    items = [item_view(by_id[r.candidate.lot_id], r, expected[r.candidate.lot_id], arrive_at) for r in ranked]
    sent = None
    if ranked:
        lot_id = ranked[0].candidate.lot_id
        await pool.fetchval(RECORD, lot_id, now, arrive_at, now - KEEP_SENDS)
        sent = {"lot_id": lot_id, "arrive_at": arrive_at.isoformat()}
    return web.json_response({"sent": sent, "items": items})
