"""The city's divisions and how coverage grew month by month as districts and counties joined."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from guidance_api.context import DB_POOL, utc_now
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param
from parking_core.lots import DEFAULT_TIME_ZONE

routes = Routes()

MAX_MONTHS = 120  # ten years of growth on one chart
DEFAULT_MONTHS = 24
CITY_ZONE = ZoneInfo(DEFAULT_TIME_ZONE)  # months are the city's calendar months

DISTRICTS = """
SELECT d.district_id, d.name, d.kind, d.outline_name, d.public_spaces, d.onboarded_on,
       count(l.lot_id) AS lots, coalesce(sum(l.capacity), 0)::bigint AS capacity
FROM districts d LEFT JOIN lots l USING (district_id)
GROUP BY d.district_id ORDER BY d.district_id
"""
# Each lot counts from its district's onboarding day, or its own creation where the district has none.
LOTS = """
SELECT l.lot_id, l.district_id, l.capacity,
       coalesce(d.onboarded_on, (l.created_at AT TIME ZONE $1)::date) AS since,
       (SELECT count(*) FROM devices v WHERE v.lot_id = l.lot_id AND v.kind = 'bay_sensor') AS sensors
FROM lots l JOIN districts d USING (district_id)
"""
# Bay sensors known to be offline at each month's end: their last liveness event before it says so.
OFFLINE = """
SELECT m.month_end, v.lot_id, count(*) AS offline
FROM unnest($1::timestamptz[]) AS m(month_end)
CROSS JOIN devices v
JOIN LATERAL (
    SELECT p.event FROM device_presence_changes p
    WHERE p.device_id = v.device_id AND p.ts < m.month_end ORDER BY p.ts DESC LIMIT 1
) last ON last.event IN ('comms_lost', 'offline')
WHERE v.kind = 'bay_sensor'
GROUP BY 1, 2
"""


@routes.add(RouteDoc("GET", "/v1/districts", "The city's districts and counties", "lots", "public"))
async def get_districts(request: web.Request) -> web.Response:
    """Every district, county and county-level city, with its kind, map outline and lots."""
    rows = await request.app[DB_POOL].fetch(DISTRICTS)
    items = [
        {
            "district_id": r["district_id"],
            "name": r["name"],
            "kind": r["kind"],
            "outline_name": r["outline_name"],
            "public_spaces": r["public_spaces"],
            "onboarded_on": r["onboarded_on"].isoformat() if r["onboarded_on"] else None,
            "lots": r["lots"],
            "capacity": int(r["capacity"]),
        }
        for r in rows
    ]
    return web.json_response({"items": items})


def month_param(request: web.Request, name: str, default: date) -> date:
    """Return a YYYY-MM query parameter as the first day of that month."""
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        return datetime.strptime(raw, "%Y-%m").date()  # noqa: DTZ007 -- a calendar month, no instant
    except ValueError:
        raise bad_param(name, f"{raw!r} is not a month like 2026-11") from None


def next_month(month: date) -> date:
    """Return the first day of the month after *month*."""
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


@dataclass
class Cover:
    """What one district (or the city) covered at one month's end."""

    lots: int = 0
    spaces: int = 0
    sensors: int = 0
    offline: int = 0

    def view(self, public_spaces: int | None) -> dict[str, Any]:
        """Return the JSON of this coverage; the share needs the public spaces it is a share of."""
        return {
            "lots": self.lots,
            "spaces": self.spaces,
            "sensors": self.sensors,
            "sensors_online": self.sensors - self.offline,
            "public_spaces": public_spaces,
            "covered_share": round(self.spaces / public_spaces, 4) if public_spaces else None,
        }


@routes.add(
    RouteDoc(
        "GET",
        "/v1/coverage",
        "Coverage growth by month",
        "lots",
        "public",
        (
            Param("from", schema={"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}, description="YYYY-MM"),
            Param("to", schema={"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}, description="YYYY-MM"),
        ),
    )
)
async def get_coverage(request: web.Request) -> web.Response:
    """Per calendar month (the city's), at its end (or now for the current month): lots, spaces,
    bay sensors and those not known to be offline, and the share of the public spaces covered, for the
    city and per district. Default: the last 24 months.
    """
    now = utc_now()
    this_month = now.astimezone(CITY_ZONE).date().replace(day=1)
    last = month_param(request, "to", this_month)
    first = month_param(request, "from", date(last.year - DEFAULT_MONTHS // 12, last.month, 1))
    months = [first]
    while months[-1] < last:
        months.append(next_month(months[-1]))
        if len(months) > MAX_MONTHS:
            raise bad_param("from", f"at most {MAX_MONTHS} months at once")
    if first > last:
        raise bad_param("from", "must not be after `to`")
    ends = [min(datetime.combine(next_month(m), time(0), CITY_ZONE), now) for m in months]
    pool = request.app[DB_POOL]
    districts = await pool.fetch(DISTRICTS)
    lots = await pool.fetch(LOTS, DEFAULT_TIME_ZONE)
    offline: dict[tuple[datetime, str], int] = {
        (r["month_end"], r["lot_id"]): int(r["offline"]) for r in await pool.fetch(OFFLINE, ends)
    }
    public = {d["district_id"]: d["public_spaces"] for d in districts}
    out = []
    for month, end in zip(months, ends, strict=True):
        per: dict[str, Cover] = defaultdict(Cover)
        for lot in lots:
            if lot["since"] < next_month(month):
                cover = per[lot["district_id"]]
                cover.lots += 1
                cover.spaces += lot["capacity"]
                cover.sensors += int(lot["sensors"])
                cover.offline += offline.get((end, lot["lot_id"]), 0)
        city = Cover()
        for cover in per.values():
            city.lots, city.spaces = city.lots + cover.lots, city.spaces + cover.spaces
            city.sensors, city.offline = city.sensors + cover.sensors, city.offline + cover.offline
        known = [d for d in per if public.get(d)]
        city_view = city.view(sum(public[d] for d in known) or None)
        if known:  # the share is over the districts whose public spaces are known
            covered = sum(per[d].spaces for d in known)
            city_view["covered_share"] = round(covered / city_view["public_spaces"], 4)
        out.append(
            {
                "month": month.strftime("%Y-%m"),
                "at": end.isoformat(),
                "districts_onboarded": len(per),
                **city_view,
                "districts": [
                    {
                        "district_id": d["district_id"],
                        "name": d["name"],
                        **per[d["district_id"]].view(public[d["district_id"]]),
                    }
                    for d in districts
                    if d["district_id"] in per
                ],
            }
        )
    return web.json_response({"time_zone": DEFAULT_TIME_ZONE, "months": out})
