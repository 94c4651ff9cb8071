"""KPIs of a lot whose zone is not whole hours off UTC (India, +05:30): read from the 5-minute view."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from guidance_api.history_sql import TIME_WEIGHTED_SERIES
from guidance_api.lot_periods import period_starts, series_for
from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
KOLKATA = ZoneInfo("Asia/Kolkata")
DAY = datetime.now(KOLKATA).date() - timedelta(days=2)


def local(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    """Return a Kolkata time on *day*."""
    return datetime.combine(day, time(0), KOLKATA) + timedelta(hours=hour, minutes=minute)


@pytest.fixture
async def kolkata_api(api: Client, database_url: str) -> Client:
    """Lot IN1 (10 spaces, Asia/Kolkata): 4 occupied from local midnight, 8 from 12:00."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("INSERT INTO districts (district_id, name) VALUES ('in', 'in')")
        await conn.execute(
            "INSERT INTO lots (lot_id, district_id, name, kind, lat, lon, capacity, time_zone)"
            " VALUES ('IN1', 'in', 'IN1', 'off_street', 28.6, 77.2, 10, 'Asia/Kolkata')"
        )
        await conn.executemany(
            "INSERT INTO lot_occupancy (ts, lot_id, capacity, free, occupied, reserved, unknown, closed)"
            " VALUES ($1, 'IN1', 10, 10 - $2::int, $2, 0, 0, 0)",
            [(local(0), 4), (local(12), 8)],
        )
    finally:
        await conn.close()
    return api


async def test_local_hours_and_days_half_an_hour_off_utc(kolkata_api: Client) -> None:
    """Hours 00-11 read 40 %, 12-23 read 80 %, the day 60 %: hours that start at :30 UTC are whole
    local hours, which the hourly roll-up (UTC hours) cannot give, so the 5-minute view serves them.
    """
    assert series_for(period_starts(DAY, DAY + timedelta(days=1), "hour", KOLKATA)) == TIME_WEIGHTED_SERIES
    query = {"from": DAY.isoformat(), "to": (DAY + timedelta(days=1)).isoformat()}
    path = "/v1/operator/lots/IN1/kpis"
    resp = await kolkata_api.get(path, params=query | {"period": "hour"}, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["time_zones"] == ["Asia/Kolkata"]
    assert [i["start"] for i in body["items"][:2]] == [local(0).isoformat(), local(1).isoformat()]
    assert [i["occupancy_percent"] for i in body["items"]] == [40] * 12 + [80] * 12
    resp = await kolkata_api.get(path, params=query | {"period": "day"}, headers=ADMIN)
    [day] = (await resp.json())["items"]
    assert (day["start"], day["occupancy_percent"], day["samples"]) == (local(0).isoformat(), 60, 2)
