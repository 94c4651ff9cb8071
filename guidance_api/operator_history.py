"""Operator occupancy history: a lot's time series, weighted by time, from the 5-minute view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from guidance_api.auth import require_operator
from guidance_api.context import DB_POOL, principal, utc_now
from guidance_api.history_sql import TIME_WEIGHTED_SERIES
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param, duration_param, time_param
from guidance_api.requests import ID_SCHEMA, path_id
from guidance_api.scope import check_lot_scope
from parking_core.lots import is_mostly_unknown
from parking_core.time_weight import SOURCE_OFFLINE

routes = Routes()

VIEW_STEP = timedelta(minutes=5)  # the width of lot_occupancy_5m: every bucket is a multiple of it
DEFAULT_WINDOW = timedelta(hours=24)  # what an operator opening the chart wants first: the last day
DEFAULT_BUCKET = timedelta(minutes=15)  # 96 points a day: smooth enough, small enough for a phone
MAX_BUCKETS = 2000  # a year of days, a week of 5 minutes: beyond this a chart cannot show it anyway
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)  # the buckets' origin, as in the SQL's date_bin

SERIES_ITEM: dict[str, Any] = {
    "type": "object",
    "properties": {
        "bucket_start": {"type": "string", "format": "date-time"},
        "occupied_avg": {"type": "number", "description": "occupied spots, averaged over time"},
        "occupied_max": {"type": "integer"},
        "free_min": {"type": "integer"},
        "free_avg": {"type": "number"},
        "unknown_avg": {"type": "number"},
        "capacity": {"type": "integer"},
        "samples": {"type": "integer", "description": "samples written in the bucket (state changes)"},
        "covered_s": {"type": "number", "description": "seconds of the bucket whose state is known"},
        "occupancy_percent": {
            "type": "number",
            "description": "100 × occupied time / capacity time; -1 when most spots were unknown"
            " (source offline)",
        },
        "source_offline": {"type": "boolean"},
    },
}
SERIES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "lot_id": {"type": "string"},
        "bucket": {"type": "string"},
        "bucket_s": {"type": "integer"},
        "from": {"type": "string", "format": "date-time"},
        "to": {"type": "string", "format": "date-time"},
        "mode": {"enum": ["plain", "timescale"]},
        "items": {"type": "array", "items": SERIES_ITEM},
    },
}


def occupancy_percent(occupied_avg: float, unknown_avg: float, capacity_avg: float) -> float:
    """Return the bucket's occupancy in percent, or -1 when its source was mostly offline."""
    if is_mostly_unknown(unknown_avg, capacity_avg):
        return SOURCE_OFFLINE
    return round(100 * occupied_avg / capacity_avg, 1)


def series_item(row: Any) -> dict[str, Any]:
    """Return the JSON of one bucket row of TIME_WEIGHTED_SERIES."""
    occupied, unknown = float(row["occupied_avg"]), float(row["unknown_avg"])
    percent = occupancy_percent(occupied, unknown, float(row["capacity_avg"]))
    return {
        "bucket_start": row["bucket_start"].isoformat(),
        "occupied_avg": round(occupied, 2),
        "occupied_max": int(row["occupied_max"]),
        "free_min": int(row["free_min"]),
        "free_avg": round(float(row["free_avg"]), 2),
        "unknown_avg": round(unknown, 2),
        "capacity": int(row["capacity"]),
        "samples": int(row["samples"]),
        "covered_s": row["covered_us"] / 1_000_000,
        "occupancy_percent": percent,
        "source_offline": percent == SOURCE_OFFLINE,
    }


def window(start: datetime, end: datetime, now: datetime) -> tuple[datetime, datetime]:
    """Return the time the series covers: 5-minute buckets that begin in [start, end), up to now."""
    return ceil_to(start, VIEW_STEP), min(ceil_to(end, VIEW_STEP), now)


def ceil_to(at: datetime, step: timedelta) -> datetime:
    """Return the first multiple of *step* since 2000-01-01 UTC at or after *at*."""
    return ORIGIN + -((ORIGIN - at) // step) * step


def bucket_label(bucket: timedelta) -> str:
    """Return a bucket width as the shortest of ``5m``, ``1h`` or ``1d``."""
    minutes = int(bucket.total_seconds() // 60)
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/lots/{lot_id}/occupancy",
        "A lot's occupancy over time",
        "operator",
        "operator",
        (
            Param("lot_id", "path", ID_SCHEMA),
            Param(
                "from",
                schema={"type": "string", "format": "date-time"},
                description="RFC 3339 with an offset; default `to` − 24 h",
            ),
            Param(
                "to", schema={"type": "string", "format": "date-time"}, description="RFC 3339; default now"
            ),
            Param(
                "bucket",
                schema={"type": "string", "pattern": "^[0-9]{1,4}[mhd]$", "default": "15m"},
                description=f"a multiple of 5 minutes (5m, 15m, 1h, 1d); at most {MAX_BUCKETS} buckets",
            ),
        ),
        response=SERIES_SCHEMA,
    )
)
async def get_lot_occupancy(request: web.Request) -> web.Response:
    """Buckets are aligned to whole multiples of their width since 2000-01-01T00:00Z (so `1d` buckets
    are UTC days) and cover the 5-minute periods that begin in [`from`, `to`), up to now. Averages are
    weighted by time: each sample's state counts for as long as it lasted, and the state before the
    window is carried into it; a bucket with no known state is left out. `occupancy_percent` is -1
    (CDS "source offline") when more than half the spots were unknown on average.
    """
    who = await principal(request)
    require_operator(who)
    lot_id = path_id(request, "lot_id")
    bucket = duration_param(request, "bucket", DEFAULT_BUCKET, VIEW_STEP)
    now = utc_now()
    end = time_param(request, "to", now)
    start = time_param(request, "from", end - DEFAULT_WINDOW)
    if start >= end:
        raise bad_param("from", "must be before `to`")
    if (end - start) / bucket > MAX_BUCKETS:
        raise bad_param(
            "bucket", f"more than {MAX_BUCKETS} buckets: choose a wider bucket or a shorter range"
        )
    await check_lot_scope(request, who, lot_id)
    pool = request.app[DB_POOL]
    rows = await pool.fetch(TIME_WEIGHTED_SERIES, [lot_id], *window(start, end, now), bucket, "UTC")
    mode = await pool.fetchval("SELECT mode FROM schema_info")
    return web.json_response(
        {
            "lot_id": lot_id,
            "bucket": bucket_label(bucket),
            "bucket_s": int(bucket.total_seconds()),
            "from": start.isoformat(),
            "to": end.isoformat(),
            "mode": mode,
            "items": [series_item(r) for r in rows],
        }
    )
