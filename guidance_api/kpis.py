"""Operator KPIs: time-weighted occupancy per lot, district and city, per hour or day in the lots' zones."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.auth import Principal, require_operator
from guidance_api.context import DB_POOL, principal, utc_now
from guidance_api.lot_periods import (
    DEFAULT_ZONE,
    PERIODS,
    Periods,
    Tally,
    combined,
    lot_tallies,
    period_starts,
    zone_of,
)
from guidance_api.money_kpis import MoneyStats, arrears, money_stats
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param, date_param
from guidance_api.problems import ProblemError
from guidance_api.requests import ID_SCHEMA, path_id
from guidance_api.scope import SCOPE_FILTER, check_lot_scope, scope_args
from guidance_api.session_kpis import SessionStats, session_stats
from parking_core.time_weight import SOURCE_OFFLINE

routes = Routes()

# The longest range per request: a month of hours (744 rows a lot), a year of days. Beyond that a
# chart cannot show it and the request would read too much of the 5-minute view at once.
MAX_DAYS = {"hour": 31, "day": 366}
DEFAULT_DAYS = {"hour": 1, "day": 7}  # today by the hour; the last week by the day

LOTS = f"""
SELECT l.lot_id, l.time_zone, l.capacity FROM lots l
WHERE {SCOPE_FILTER} AND ($4::text IS NULL OR l.district_id = $4) AND ($5::text IS NULL OR l.lot_id = $5)
ORDER BY l.lot_id
"""

SESSION_FIELDS: dict[str, Any] = {
    "sessions": {"type": "integer", "description": "stays that began in the period (parking sessions)"},
    "turnover": {"type": ["number", "null"], "description": "sessions per space (CDS metrics' turnover)"},
    "sessions_ended": {"type": "integer"},
    "dwell_mean_min": {"type": ["number", "null"], "description": "of the stays that ended in the period"},
    "dwell_median_min": {"type": ["number", "null"], "description": "null over the whole range"},
    "invoiced_fen": {"type": "integer", "description": "invoices issued in the period (ledger)"},
    "collected_fen": {"type": "integer", "description": "payments captured less refunds in the period"},
    "written_off_fen": {"type": "integer"},
}
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
        **SESSION_FIELDS,
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
                **SESSION_FIELDS,
                "arrears_fen": {"type": "integer", "description": "owed past due now, on these lots"},
                "plates_in_arrears": {"type": "integer"},
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


def total_stays(stays: Iterable[SessionStats]) -> SessionStats:
    """Return the stays of the whole range (its median is not the median of the periods': none)."""
    total = SessionStats()
    for stats in stays:
        total.add(stats)
    total.median_s = None
    return total


def total_money(moves: Iterable[MoneyStats]) -> MoneyStats:
    """Return the ledger movements of the whole range."""
    total = MoneyStats()
    for moved in moves:
        total.add(moved)
    return total


def date_range(request: web.Request, period: str, today: date) -> tuple[date, date]:
    """Return the local days [from, to) asked for, within the limits of *period*."""
    last = date_param(request, "to", today + timedelta(days=1))
    first = date_param(request, "from", last - timedelta(days=DEFAULT_DAYS[period]))
    if first >= last:
        raise bad_param("from", "must be before `to`")
    if (last - first).days > MAX_DAYS[period]:
        raise bad_param("to", f"at most {MAX_DAYS[period]} days of {period}s at once")
    return first, last


@dataclass
class Rollup:
    """Occupancy, stays and money per local period, added up over groups of lots (one per zone)."""

    capacity: int
    occupancy: dict[str, Tally] = field(default_factory=dict)
    stays: dict[str, SessionStats] = field(default_factory=dict)
    money: dict[str, MoneyStats] = field(default_factory=dict)

    async def add_zone(
        self, pool: asyncpg.Pool, lot_ids: list[str], zone: ZoneInfo, periods: Periods
    ) -> None:
        """Add the lots of one time zone; their periods are keyed by local start."""
        for start, tally in combined(await lot_tallies(pool, lot_ids, zone, periods)).items():
            key = start.replace(tzinfo=None).isoformat()  # lots in other zones add their own local period
            self.occupancy.setdefault(key, Tally(tally.start, tally.end)).add(tally)
        window = (periods.bounds[0], min(periods.bounds[-1], periods.now))
        for local, stats in (await session_stats(pool, lot_ids, window, periods.width, zone.key)).items():
            self.stays.setdefault(local.isoformat(), SessionStats()).add(stats)
        for local, moved in (await money_stats(pool, lot_ids, window, periods.width, zone.key)).items():
            self.money.setdefault(local.isoformat(), MoneyStats()).add(moved)

    def items(self) -> list[dict[str, Any]]:
        """Return the periods' JSON, oldest first."""
        return [
            self.occupancy[key].view()
            | self.stays.get(key, SessionStats()).view(self.capacity)
            | self.money.get(key, MoneyStats()).view()
            for key in sorted(self.occupancy)
        ]

    def summary(self) -> dict[str, Any]:
        """Return the whole range's JSON (arrears are added by the caller: they are of now)."""
        return (
            summary_view([self.occupancy[key] for key in sorted(self.occupancy)])
            | total_stays(self.stays.values()).view(self.capacity)
            | total_money(self.money.values()).view()
        )


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
    first, last = date_range(
        request, period, now.astimezone(ZoneInfo(min(zones, default=DEFAULT_ZONE))).date()
    )
    rollup = Rollup(sum(row["capacity"] for row in lots))
    for zone_name, lot_ids in sorted(zones.items()):
        zone = ZoneInfo(zone_name)
        await rollup.add_zone(
            pool, lot_ids, zone, Periods(period_starts(first, last, period, zone), PERIODS[period], now)
        )
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
        "summary": rollup.summary() | await arrears(pool, [row["lot_id"] for row in lots], now),
        "items": rollup.items(),
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
