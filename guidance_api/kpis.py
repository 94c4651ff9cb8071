"""Operator KPIs: time-weighted occupancy per lot, district and city, per hour or day in the lots' zones."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.auth import Principal, require_operator
from guidance_api.context import DB_POOL, principal, utc_now
from guidance_api.history_sql import TIME_WEIGHTED_SERIES
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param
from guidance_api.problems import ProblemError
from guidance_api.requests import ID_SCHEMA, path_id
from guidance_api.scope import SCOPE_FILTER, check_lot_scope, scope_args
from parking_core.lots import DEFAULT_TIME_ZONE
from parking_core.time_weight import SOURCE_OFFLINE, is_source_offline

routes = Routes()

PERIODS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# The longest range per request: a month of hours (744 rows a lot), a year of days. Beyond that a
# chart cannot show it and the request would read too much of the 5-minute view at once.
MAX_DAYS = {"hour": 31, "day": 366}
DEFAULT_DAYS = {"hour": 1, "day": 7}  # today by the hour; the last week by the day
DEFAULT_ZONE = DEFAULT_TIME_ZONE  # CONTRACT.md: the lot time zone when none is set
MICROS = 1_000_000

LOTS = f"""
SELECT l.lot_id, l.time_zone FROM lots l
WHERE {SCOPE_FILTER} AND ($4::text IS NULL OR l.district_id = $4) AND ($5::text IS NULL OR l.lot_id = $5)
ORDER BY l.lot_id
"""

ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "start": {"type": "string", "format": "date-time", "description": "local start, with its offset"},
        "end": {"type": "string", "format": "date-time"},
        "occupancy_percent": {
            "type": "number",
            "description": "100 × occupied time / capacity time of the reporting lots; -1 when none"
            " reported (CDS metrics: source offline)",
        },
        "source_offline": {"type": "boolean"},
        "occupied_avg": {"type": "number", "description": "occupied spots of the reporting lots, over time"},
        "capacity_avg": {"type": "number"},
        "lots_reporting": {"type": "integer"},
        "lots_offline": {"type": "integer", "description": "lots whose state was unknown most of the period"},
        "samples": {"type": "integer"},
    },
}
KPI_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "scope": {"enum": ["city", "district", "lot"]},
        "district_id": {"type": "string"},
        "lot_id": {"type": "string"},
        "period": {"enum": list(PERIODS)},
        "from": {"type": "string", "format": "date"},
        "to": {"type": "string", "format": "date"},
        "time_zones": {"type": "array", "items": {"type": "string"}},
        "lots": {"type": "integer"},
        "summary": {
            "type": "object",
            "properties": {
                "occupancy_percent": {"type": "number"},
                "source_offline": {"type": "boolean"},
                "periods": {"type": "integer"},
                "periods_offline": {"type": "integer"},
            },
        },
        "items": {"type": "array", "items": ITEM_SCHEMA},
    },
}
PARAMS = (
    Param("period", schema={"enum": list(PERIODS), "default": "hour"}),
    Param(
        "from",
        schema={"type": "string", "format": "date"},
        description="first local day; default today (hour) or six days before `to` (day)",
    ),
    Param("to", schema={"type": "string", "format": "date"}, description="the local day after the last one"),
)


@dataclass
class Tally:
    """Sums of one period over the lots that reported in it."""

    start: datetime
    end: datetime
    occupied_us: float = 0.0  # occupied spots × microseconds
    capacity_us: float = 0.0  # capacity × microseconds
    occupied: float = 0.0  # the lots' time-weighted occupied spots, summed
    capacity: float = 0.0
    reporting: int = 0
    offline: int = 0
    samples: int = 0

    def add_lot(self, row: Any) -> None:
        """Count one lot's row of TIME_WEIGHTED_SERIES."""
        occupied, capacity, covered = (
            float(row["occupied_avg"]),
            float(row["capacity_avg"]),
            row["covered_us"],
        )
        self.occupied_us += occupied * covered
        self.capacity_us += capacity * covered
        self.occupied += occupied
        self.capacity += capacity
        self.reporting += 1
        self.samples += int(row["samples"])

    def add(self, other: Tally) -> None:
        """Add *other*'s sums into this tally (the same period of lots in another zone)."""
        self.occupied_us += other.occupied_us
        self.capacity_us += other.capacity_us
        self.occupied += other.occupied
        self.capacity += other.capacity
        self.reporting += other.reporting
        self.offline += other.offline
        self.samples += other.samples

    @property
    def online(self) -> bool:
        """Tell whether any lot reported in this period."""
        return self.reporting > 0 and self.capacity_us > 0

    def percent(self) -> float:
        """Return occupied time over capacity time in percent, or -1 when no lot reported."""
        return round(100 * self.occupied_us / self.capacity_us, 1) if self.online else SOURCE_OFFLINE

    def view(self) -> dict[str, Any]:
        """Return the JSON of this period."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "occupancy_percent": self.percent(),
            "source_offline": not self.online,
            "occupied_avg": round(self.occupied, 2),
            "capacity_avg": round(self.capacity, 2),
            "lots_reporting": self.reporting,
            "lots_offline": self.offline,
            "samples": self.samples,
        }


def summary_view(tallies: list[Tally]) -> dict[str, Any]:
    """Return the whole range's occupancy: capacity time of every reporting lot-period weighs."""
    total = Tally(tallies[0].start, tallies[-1].end) if tallies else None
    for tally in tallies:
        assert total is not None
        total.add(tally)
    return {
        "occupancy_percent": total.percent() if total else SOURCE_OFFLINE,
        "source_offline": not (total and total.online),
        "periods": len(tallies),
        "periods_offline": sum(not t.online for t in tallies),
    }


def date_param(request: web.Request, name: str, default: date) -> date:
    """Return a YYYY-MM-DD query parameter."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise bad_param(name, f"{raw!r} is not a date like 2026-11-23") from None


def period_starts(first: date, last: date, period: str, zone: ZoneInfo) -> list[datetime]:
    """Return the local starts of the periods of days [first, last), and the end, in *zone*."""
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    if period == "day":
        return [datetime.combine(d, time(0), zone) for d in days]
    hours = [datetime.combine(d, time(h), zone) for d in days[:-1] for h in range(24)]
    return [*hours, datetime.combine(last, time(0), zone)]


def zone_of(name: str) -> ZoneInfo:
    """Return the lot's zone; an unknown name (not accepted at provisioning) falls back to the default."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


@dataclass(frozen=True)
class Periods:
    """The periods asked for, on one zone's clock: their bounds (starts and the end), up to now."""

    bounds: list[datetime]
    width: timedelta
    now: datetime


async def lot_tallies(
    pool: asyncpg.Pool, lot_ids: list[str], zone: ZoneInfo, periods: Periods
) -> dict[datetime, Tally]:
    """Return the tallies of *lot_ids* (all in *zone*) per period."""
    bounds, now = periods.bounds, periods.now
    rows = await pool.fetch(
        TIME_WEIGHTED_SERIES, lot_ids, bounds[0], min(bounds[-1], now), periods.width, zone.key
    )
    found = {(r["lot_id"], r["bucket_start"]): r for r in rows}
    tallies: dict[datetime, Tally] = {}
    for start, stop in pairwise(bounds):
        if start >= now:
            break
        tally = tallies[start] = Tally(start, stop)
        span = min(stop, now) - start
        for lot_id in lot_ids:
            row = found.get((lot_id, start))
            covered = timedelta(microseconds=row["covered_us"]) if row else timedelta(0)
            unknown = float(row["unknown_avg"]) if row else 0.0
            capacity = float(row["capacity_avg"]) if row else 0.0
            if row is None or is_source_offline(covered, span, unknown, capacity):
                tally.offline += 1
                continue
            tally.add_lot(row)
    return tallies


async def kpi_response(
    request: web.Request,
    who: Principal,
    scope: str,
    *,
    district_id: str | None = None,
    lot_id: str | None = None,
) -> web.Response:
    """Compute the KPIs of the lots of *scope* that *who* may see."""
    period = request.query.get("period", "hour")
    if period not in PERIODS:
        raise bad_param("period", f"must be one of {sorted(PERIODS)}")
    pool = request.app[DB_POOL]
    lots = await pool.fetch(LOTS, *scope_args(who), district_id, lot_id)
    zones: dict[str, list[str]] = defaultdict(list)
    for row in lots:
        zones[zone_of(row["time_zone"]).key].append(row["lot_id"])
    now = utc_now()
    today = now.astimezone(ZoneInfo(min(zones, default=DEFAULT_ZONE))).date()
    last = date_param(request, "to", today + timedelta(days=1))
    first = date_param(request, "from", last - timedelta(days=DEFAULT_DAYS[period]))
    if first >= last:
        raise bad_param("from", "must be before `to`")
    if (last - first).days > MAX_DAYS[period]:
        raise bad_param("to", f"at most {MAX_DAYS[period]} days of {period}s at once")
    rollup: dict[str, Tally] = {}
    for zone_name, lot_ids in sorted(zones.items()):
        zone = ZoneInfo(zone_name)
        periods = Periods(period_starts(first, last, period, zone), PERIODS[period], now)
        tallies = await lot_tallies(pool, lot_ids, zone, periods)
        for start, tally in tallies.items():
            key = start.replace(tzinfo=None).isoformat()  # lots in other zones add their own local period
            rollup.setdefault(key, Tally(tally.start, tally.end)).add(tally)
    body: dict[str, Any] = {"scope": scope}
    if district_id is not None:
        body["district_id"] = district_id
    if lot_id is not None:
        body["lot_id"] = lot_id
    body |= {
        "period": period,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "time_zones": sorted(zones),
        "lots": len(lots),
        "summary": summary_view([rollup[key] for key in sorted(rollup)]),
        "items": [rollup[key].view() for key in sorted(rollup)],
    }
    return web.json_response(body)


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/kpis",
        "City KPIs per hour or day",
        "operator",
        "operator",
        PARAMS,
        response=KPI_SCHEMA,
    )
)
async def get_city_kpis(request: web.Request) -> web.Response:
    """Every lot in the token's scope, rolled up per period (see docs/api.md, KPIs)."""
    who = await principal(request)
    require_operator(who)
    return await kpi_response(request, who, "city")


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/districts/{district_id}/kpis",
        "A district's KPIs per hour or day",
        "operator",
        "operator",
        (Param("district_id", "path", ID_SCHEMA), *PARAMS),
        response=KPI_SCHEMA,
    )
)
async def get_district_kpis(request: web.Request) -> web.Response:
    """The district's lots in the token's scope (a lot token: its own lots there)."""
    who = await principal(request)
    require_operator(who)
    district_id = path_id(request, "district_id")
    pool = request.app[DB_POOL]
    if not await pool.fetchval("SELECT true FROM districts WHERE district_id = $1", district_id):
        raise ProblemError(pt.UNKNOWN_DISTRICT, f"no district {district_id!r}", district_id=district_id)
    visible = await pool.fetchval(
        f"SELECT count(*) FROM lots l WHERE {SCOPE_FILTER} AND l.district_id = $4",
        *scope_args(who),
        district_id,
    )
    if not (who.is_admin or district_id in who.district_ids or visible):
        raise ProblemError(pt.FORBIDDEN, f"district {district_id!r} is outside this token's scope")
    return await kpi_response(request, who, "district", district_id=district_id)


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/lots/{lot_id}/kpis",
        "A lot's KPIs per hour or day",
        "operator",
        "operator",
        (Param("lot_id", "path", ID_SCHEMA), *PARAMS),
        response=KPI_SCHEMA,
    )
)
async def get_lot_kpis(request: web.Request) -> web.Response:
    """Hours and days on the lot's own clock."""
    who = await principal(request)
    require_operator(who)
    lot_id = path_id(request, "lot_id")
    await check_lot_scope(request, who, lot_id)
    return await kpi_response(request, who, "lot", lot_id=lot_id)
