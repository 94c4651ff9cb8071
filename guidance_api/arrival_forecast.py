"""Forecasts at arrival for a set of lots: past weeks' time-weighted counts read from the 5-minute view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from guidance_api.history_sql import TIME_WEIGHTED_SERIES
from guidance_api.params import bad_param, time_param
from parking_core.forecast import REFERENCE_WINDOW, Forecast, Reference, forecast_free, reference_offsets
from parking_core.time_weight import is_source_offline

MAX_HORIZON = timedelta(hours=24)  # further ahead, the weekday's average is all there is: say so
LATE_TOLERANCE = timedelta(minutes=5)  # an arrival "now" from a phone whose clock runs behind
FIVE_MINUTES = timedelta(minutes=5)
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)

FORECAST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "free spaces expected at `arrive_at` (same weekday and time of the last 4 weeks,"
    " adjusted to today), with an 80 % interval",
    "properties": {
        "arrive_at": {"type": "string", "format": "date-time"},
        "expected_free": {"type": "number"},
        "low": {"type": "integer"},
        "high": {"type": "integer"},
        "interval": {"type": "number", "const": 0.8},
        "basis": {"enum": ["weeks", "now"]},
        "weeks": {"type": "integer"},
    },
}


@dataclass(frozen=True, slots=True)
class LotNow:
    """What a forecast starts from: the lot, its count now (None while unknown) and its capacity."""

    lot_id: str
    free_now: int | None
    capacity: int


def arrive_at_param(request: web.Request, now: datetime) -> datetime | None:
    """Return `arrive_at` (RFC 3339, within the next 24 hours), or None when it is not asked."""
    if not request.query.get("arrive_at"):
        return None
    arrive_at = time_param(request, "arrive_at", now)
    if arrive_at < now - LATE_TOLERANCE:
        raise bad_param("arrive_at", "is in the past")
    if arrive_at > now + MAX_HORIZON:
        raise bad_param("arrive_at", "is more than 24 hours ahead")
    return arrive_at


def floor_5m(at: datetime) -> datetime:
    """Return the 5-minute boundary at or before *at*."""
    return ORIGIN + ((at - ORIGIN) // FIVE_MINUTES) * FIVE_MINUTES


async def window_free(pool: asyncpg.Pool, lot_ids: list[str], around: datetime) -> dict[str, float]:
    """Return each lot's time-weighted free count over REFERENCE_WINDOW around *around*, where known."""
    start = floor_5m(around - REFERENCE_WINDOW / 2)
    end = start + REFERENCE_WINDOW
    rows = await pool.fetch(TIME_WEIGHTED_SERIES, lot_ids, start, end, REFERENCE_WINDOW, "UTC")
    sums: dict[str, list[float]] = {}
    for row in rows:
        covered = float(row["covered_us"])
        acc = sums.setdefault(row["lot_id"], [0.0, 0.0, 0.0, 0.0])
        acc[0] += float(row["free_avg"]) * covered
        acc[1] += float(row["unknown_avg"]) * covered
        acc[2] += float(row["capacity_avg"]) * covered
        acc[3] += covered
    out = {}
    for lot_id, (free, unknown, capacity, covered) in sums.items():
        span = timedelta(microseconds=covered)
        if not is_source_offline(span, REFERENCE_WINDOW, unknown / covered, capacity / covered):
            out[lot_id] = free / covered
    return out


async def forecasts(
    pool: asyncpg.Pool, lots: list[LotNow], now: datetime, arrive_at: datetime
) -> dict[str, Forecast]:
    """Return the forecast of each of *lots* that has something to forecast from."""
    ids = [lot.lot_id for lot in lots]
    references: dict[str, list[Reference]] = {lot_id: [] for lot_id in ids}
    for back in reference_offsets():
        then = await window_free(pool, ids, now - back)
        later = await window_free(pool, ids, arrive_at - back)
        for lot_id in ids:
            if lot_id in then and lot_id in later:
                references[lot_id].append(Reference(later[lot_id], then[lot_id]))
    out = {}
    for lot in lots:
        got = forecast_free(
            lot.free_now, lot.capacity, references[lot.lot_id], max(arrive_at - now, timedelta(0))
        )
        if got is not None:
            out[lot.lot_id] = got
    return out


def forecast_view(forecast: Forecast, arrive_at: datetime) -> dict[str, Any]:
    """Return the JSON of a forecast."""
    return {
        "arrive_at": arrive_at.isoformat(),
        "expected_free": forecast.expected_free,
        "low": forecast.low,
        "high": forecast.high,
        "interval": 0.8,
        "basis": forecast.basis,
        "weeks": forecast.weeks,
    }
