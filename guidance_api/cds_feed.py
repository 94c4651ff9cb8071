"""Open data in the Curb Data Specification (CDS 1.1): curbs (zones, spaces, policies), events, metrics."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from billing import tariff_in_force, to_cds_policies
from guidance_api.auth import Principal, require_operator
from guidance_api.context import DB_POOL, TARIFFS, principal, utc_now
from guidance_api.lot_periods import PERIODS, Periods, lot_tallies, period_starts, zone_of
from guidance_api.open_data import BAY_LENGTH_CM, epoch_ms, outline, point, stable_uuid
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param
from guidance_api.queries import row_status
from guidance_api.scope import SCOPE_FILTER, scope_args
from parking_core.lots import DEFAULT_TIME_ZONE, LotStatus

routes = Routes()

CDS_VERSION = "1.1.0"
CITY_TIME_ZONE = DEFAULT_TIME_ZONE  # the envelope's time_zone: the city's default lot time zone
CURRENCY = "CNY"  # amounts in fen, CDS's "smallest unit"
CSV_TYPE = "application/vnd.cds+csv;version=1.1"  # CDS Metrics answers in CSV
AGGREGATE_COLUMNS = ("curb_place_type", "curb_place_id", "metric_type", "date", "hour", "value")
MAX_METRIC_DAYS = 31  # a month of hourly rows per lot per request

LOTS = """
SELECT lot_id, name, kind, lat, lon, capacity, time_zone, tariff_id, status AS lot_status,
       free_count, occupied_count, reserved_count, unknown_count, closed_count, counts_updated_at,
       created_at, updated_at
FROM lots ORDER BY lot_id
"""
SPOTS = """
SELECT s.spot_id, s.label, s.status, s.since, s.lot_id, l.lat, l.lon, l.capacity, l.created_at, l.updated_at,
       row_number() OVER (PARTITION BY s.lot_id ORDER BY s.spot_id) AS number
FROM spots s JOIN lots l USING (lot_id) ORDER BY s.spot_id
"""
# Sensor events of one UTC hour: a spot going free -> occupied starts a stay, occupied -> free ends
# it (a spot turning unknown is a comms_lost of its sensor, not the end of a stay); comms from liveness.
EVENTS = f"""
SELECT c.ts, c.spot_id, c.lot_id, c.status, c.previous_status, c.device_id, l.lat, l.lon
FROM spot_status_changes c JOIN lots l ON l.lot_id = c.lot_id
WHERE c.ts >= $4 AND c.ts < $5
  AND ((c.status = 'occupied' AND c.previous_status = 'free')
       OR (c.status = 'free' AND c.previous_status = 'occupied'))
  AND {SCOPE_FILTER}
ORDER BY c.ts, c.spot_id
"""
COMMS = f"""
SELECT p.ts, p.device_id, p.event, d.spot_id, d.lot_id, l.lat, l.lon
FROM device_presence_changes p JOIN devices d USING (device_id) JOIN lots l ON l.lot_id = d.lot_id
WHERE p.ts >= $4 AND p.ts < $5 AND p.event IN ('comms_lost', 'comms_restored') AND {SCOPE_FILTER}
ORDER BY p.ts, p.device_id
"""
SCOPED_LOTS = f"SELECT l.lot_id, l.time_zone FROM lots l WHERE {SCOPE_FILTER} ORDER BY l.lot_id"


def envelope(key: str, items: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """Return the CDS response body around *items*."""
    return {
        "version": CDS_VERSION,
        "time_zone": CITY_TIME_ZONE,
        "last_updated": epoch_ms(now),
        "currency": CURRENCY,
        "data": {key: items},
    }


async def lot_policy_ids(request: web.Request, tariff_id: str | None, now: datetime) -> list[str]:
    """Return the CDS policy ids of the tariff version in force now (none without a tariff)."""
    if tariff_id is None:
        return []
    tariff = tariff_in_force(await request.app[TARIFFS].versions(tariff_id), now)
    return [] if tariff is None else [p["curb_policy_id"] for p in to_cds_policies(tariff)]


async def zone_view(request: web.Request, row: Any, now: datetime) -> dict[str, Any]:
    """Return one lot as a CDS Curb Zone."""
    status = row_status(row)
    zone: dict[str, Any] = {
        "curb_zone_id": stable_uuid("lot", row["lot_id"]),
        "geometry": outline(row["lat"], row["lon"], row["capacity"]),
        "curb_policy_ids": await lot_policy_ids(request, row["tariff_id"], now),
        "published_date": epoch_ms(row["created_at"]),
        "last_updated_date": epoch_ms(row["updated_at"]),
        "start_date": epoch_ms(row["created_at"]),
        "name": row["name"],
        "user_zone_id": row["lot_id"],
        "description": f"{row['kind']}; outline approximate (a square around the lot's point)",
        "num_spaces": row["capacity"],
    }
    if status is not LotStatus.UNKNOWN:  # CDS: leave availability out when it is not known
        zone["available"] = status is not LotStatus.CLOSED
        zone["available_spaces"] = row["free_count"]
        if row["counts_updated_at"] is not None:
            zone["availability_time"] = epoch_ms(row["counts_updated_at"])
    return zone


def space_view(row: Any) -> dict[str, Any]:
    """Return one spot as a CDS Curb Space (its geometry is its lot's outline: spots have no position)."""
    space: dict[str, Any] = {
        "curb_space_id": stable_uuid("spot", row["spot_id"]),
        "geometry": outline(row["lat"], row["lon"], row["capacity"]),
        "name": row["label"] or row["spot_id"],
        "published_date": epoch_ms(row["created_at"]),
        "last_updated_date": epoch_ms(row["updated_at"]),
        "curb_zone_id": stable_uuid("lot", row["lot_id"]),
        "space_number": int(row["number"]),
        "length": BAY_LENGTH_CM,
    }
    if row["status"] != "unknown":
        space["available"] = row["status"] == "free"
        space["availability_time"] = epoch_ms(row["since"])
    return space


@routes.add(
    RouteDoc("GET", "/v1/open-data/cds/curbs/zones", "CDS Curb Zones: every lot", "open-data", "public")
)
async def get_cds_zones(request: web.Request) -> web.Response:
    """Every lot as a Curb Zone with its live availability and the ids of its tariff's policies."""
    now = utc_now()
    rows = await request.app[DB_POOL].fetch(LOTS)
    return web.json_response(envelope("zones", [await zone_view(request, r, now) for r in rows], now))


@routes.add(
    RouteDoc("GET", "/v1/open-data/cds/curbs/spaces", "CDS Curb Spaces: every spot", "open-data", "public")
)
async def get_cds_spaces(request: web.Request) -> web.Response:
    """Every spot as a Curb Space; `available` is left out while the spot is unknown."""
    rows = await request.app[DB_POOL].fetch(SPOTS)
    return web.json_response(envelope("spaces", [space_view(r) for r in rows], utc_now()))


@routes.add(
    RouteDoc(
        "GET", "/v1/open-data/cds/curbs/policies", "CDS Policies: tariffs in force", "open-data", "public"
    )
)
async def get_cds_policies(request: web.Request) -> web.Response:
    """The CDS policies of every tariff in force now, once each (lots share tariffs)."""
    now = utc_now()
    tariff_ids = await request.app[DB_POOL].fetch("SELECT DISTINCT tariff_id FROM tariff_versions ORDER BY 1")
    policies: list[dict[str, Any]] = []
    for row in tariff_ids:
        tariff = tariff_in_force(await request.app[TARIFFS].versions(row["tariff_id"]), now)
        if tariff is not None:
            policies += to_cds_policies(tariff)
    return web.json_response(envelope("policies", policies, now))


def event_hour(request: web.Request, now: datetime) -> tuple[datetime, datetime]:
    """Return the UTC hour of `event_time` (YYYY-MM-DDTHH), or the last 60 minutes."""
    raw = request.query.get("event_time")
    if not raw:
        return now - timedelta(hours=1), now
    try:
        start = datetime.strptime(raw, "%Y-%m-%dT%H").replace(tzinfo=UTC)
    except ValueError:
        raise bad_param("event_time", f"{raw!r} is not a UTC hour like 2026-11-23T08") from None
    return start, start + timedelta(hours=1)


def park_event(row: Any, now: datetime) -> dict[str, Any]:
    """Return a spot change as a CDS park_start or park_end event."""
    kind = "park_start" if row["status"] == "occupied" else "park_end"
    return {
        "event_id": stable_uuid("event", f"{row['spot_id']}/{row['ts'].isoformat()}/{kind}"),
        "event_type": kind,
        "event_purpose": "parking",
        "event_location": point(row["lat"], row["lon"]),
        "event_time": epoch_ms(row["ts"]),
        "event_publication_time": epoch_ms(now),
        "curb_zone_id": stable_uuid("lot", row["lot_id"]),
        "curb_space_id": stable_uuid("spot", row["spot_id"]),
        "data_source_type": "in_ground",
        "data_source_device_id": stable_uuid("device", row["device_id"] or row["spot_id"]),
        "data_source_device_name": row["device_id"] or row["spot_id"],
        "sensor_status_is_online": True,
    }


def comms_event(row: Any, now: datetime) -> dict[str, Any]:
    """Return a liveness change as a CDS comms_lost or comms_restored event."""
    event: dict[str, Any] = {
        "event_id": stable_uuid("event", f"{row['device_id']}/{row['ts'].isoformat()}/{row['event']}"),
        "event_type": row["event"],
        "event_location": point(row["lat"], row["lon"]),
        "event_time": epoch_ms(row["ts"]),
        "event_publication_time": epoch_ms(now),
        "curb_zone_id": stable_uuid("lot", row["lot_id"]),
        "data_source_type": "in_ground",
        "data_source_device_id": stable_uuid("device", row["device_id"]),
        "data_source_device_name": row["device_id"],
        "sensor_status_is_online": row["event"] == "comms_restored",
    }
    if row["spot_id"] is not None:
        event["curb_space_id"] = stable_uuid("spot", row["spot_id"])
    return event


async def operator(request: web.Request) -> Principal:
    """Return the caller, who must hold an operator (or the admin) token."""
    who = await principal(request)
    require_operator(who)
    return who


@routes.add(
    RouteDoc(
        "GET",
        "/v1/open-data/cds/events/events",
        "CDS Events of one UTC hour",
        "open-data",
        "operator",
        (Param("event_time", description="a UTC hour, YYYY-MM-DDTHH; default the last 60 minutes"),),
    )
)
async def get_cds_events(request: web.Request) -> web.Response:
    """Parking starts and ends (from bay sensors) and sensors' comms lost and restored, within scope,
    in the order they happened on the ground.
    """
    who = await operator(request)
    now = utc_now()
    start, end = event_hour(request, now)
    pool = request.app[DB_POOL]
    parks = [park_event(r, now) for r in await pool.fetch(EVENTS, *scope_args(who), start, end)]
    comms = [comms_event(r, now) for r in await pool.fetch(COMMS, *scope_args(who), start, end)]
    events = sorted(parks + comms, key=lambda e: (e["event_time"], e["event_id"]))
    return web.json_response(envelope("events", events, now))


def day_params(request: web.Request, today: date) -> tuple[date, date]:
    """Return [start_time, end_time) as local days (CDS timestamps in ms; default yesterday)."""
    days = []
    for name, default in (("start_time", today - timedelta(days=1)), ("end_time", today)):
        raw = request.query.get(name)
        if not raw:
            days.append(default)
            continue
        if not raw.isdigit() or len(raw) > 15:
            raise bad_param(name, "must be milliseconds since 1970 (CDS timestamp)")
        days.append(datetime.fromtimestamp(int(raw) / 1000, ZoneInfo(CITY_TIME_ZONE)).date())
    first, last = days
    if last <= first:
        last = first + timedelta(days=1)
    if (last - first).days > MAX_METRIC_DAYS:
        raise bad_param("end_time", f"at most {MAX_METRIC_DAYS} days at once")
    return first, last


@routes.add(
    RouteDoc(
        "GET",
        "/v1/open-data/cds/metrics/aggregates",
        "CDS Metrics: hourly occupancy per zone (CSV)",
        "open-data",
        "operator",
        (
            Param("start_time", schema={"type": "integer"}, description="ms; its local day is the first"),
            Param("end_time", schema={"type": "integer"}, description="ms; its local day is not included"),
        ),
    )
)
async def get_cds_aggregates(request: web.Request) -> web.Response:
    """`occupancy_percent` per lot (zone) and local hour, time-weighted, -1 when the source was
    offline for most of the hour; sessions-based metrics come with parking sessions.
    """
    who = await operator(request)
    now = utc_now()
    first, last = day_params(request, now.astimezone(ZoneInfo(CITY_TIME_ZONE)).date())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(AGGREGATE_COLUMNS)
    for row in await request.app[DB_POOL].fetch(SCOPED_LOTS, *scope_args(who)):
        zone = zone_of(row["time_zone"])
        periods = Periods(period_starts(first, last, "hour", zone), PERIODS["hour"], now)
        tallies = (await lot_tallies(request.app[DB_POOL], [row["lot_id"]], zone, periods))[row["lot_id"]]
        for start, tally in tallies.items():
            local = start.astimezone(zone)
            value = tally.percent()
            writer.writerow(
                (
                    "zone",
                    stable_uuid("lot", row["lot_id"]),
                    "occupancy_percent",
                    local.date().isoformat(),
                    local.hour,
                    value,
                )
            )
    return web.Response(body=out.getvalue().encode(), headers={"Content-Type": f"{CSV_TYPE}; charset=utf-8"})
