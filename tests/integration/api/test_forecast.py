"""Forecast at arrival over HTTP on a real PostgreSQL: past weeks from the 5-minute view, adjusted to now."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
CAPACITY = 20
HORIZON = timedelta(hours=2)
WEEK = timedelta(days=7)


async def put(api: Client, path: str, body: dict[str, Any]) -> None:
    """PUT an admin resource and check it was accepted."""
    resp = await api.put(path, json=body, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()


async def provision(api: Client, lot_id: str, lat: float) -> None:
    """Create an off-street lot of CAPACITY spots."""
    await put(api, "/v1/admin/districts/erqi", {"name": "二七区"})
    spots = [{"spot_id": f"{lot_id}-{n:02}"} for n in range(CAPACITY)]
    body = {
        "name": lot_id,
        "kind": "off_street",
        "district_id": "erqi",
        "lat": lat,
        "lon": 113.66,
        "spots": spots,
    }
    await put(api, f"/v1/admin/lots/{lot_id}", body)


async def history(db: asyncpg.Connection, lot_id: str, now: datetime, at_arrival: list[int]) -> None:
    """Past weeks: 10 free around now's time, *at_arrival[k-1]* free around the arrival's, k weeks back."""
    rows = []
    for k, later in enumerate(at_arrival, start=1):
        t = now - k * WEEK
        for at, free in (
            (t - timedelta(hours=1), 10),
            (t + timedelta(hours=1), later),
            (t + timedelta(hours=3), 10),
        ):
            rows.append((at, lot_id, CAPACITY, free, CAPACITY - free))
    await db.executemany(
        "INSERT INTO lot_occupancy (ts, lot_id, capacity, free, occupied, reserved, unknown, closed)"
        " VALUES ($1, $2, $3, $4, $5, 0, 0, 0)",
        rows,
    )


async def live(db: asyncpg.Connection, lot_id: str, free: int) -> None:
    """Set the lot's live counters (as the gateway keeps them)."""
    await db.execute(
        "UPDATE lots SET free_count = $2, occupied_count = $3, unknown_count = 0, counts_updated_at = now()"
        " WHERE lot_id = $1",
        lot_id,
        free,
        CAPACITY - free,
    )


@pytest.fixture
async def db(database_url: str) -> Any:
    """A connection to this module's database."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def test_a_lots_forecast_is_its_weeks_adjusted_to_today(api: Client, db: asyncpg.Connection) -> None:
    """Weeks: 10 free now, 4, 6, 4, 6 two hours later; today 14: 5 + 4·e^(-2/3) ≈ 7.1, 80 % in 5..9."""
    await provision(api, "FC1", 34.74)
    now = datetime.now(UTC)
    await history(db, "FC1", now, [4, 6, 4, 6])
    await live(db, "FC1", 14)
    arrive = now + HORIZON
    resp = await api.get("/v1/lots/FC1", params={"arrive_at": arrive.isoformat()})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    expected = 5 + 4 * math.exp(-2 / 3)
    half = 1.2816 * math.sqrt(4 / 3)
    forecast = body["forecast"]
    assert datetime.fromisoformat(forecast["arrive_at"]) == arrive
    assert abs(forecast["expected_free"] - expected) <= 0.1  # the request's clock is a moment later
    assert (forecast["low"], forecast["high"]) == (math.floor(expected - half), math.ceil(expected + half))
    assert (forecast["basis"], forecast["weeks"], forecast["interval"]) == ("weeks", 4, 0.8)
    assert "forecast" not in await (await api.get("/v1/lots/FC1")).json()


async def test_vacancies_forecast_and_a_full_lot_that_will_have_room(
    api: Client, db: asyncpg.Connection
) -> None:
    """A lot full now whose weeks free up by arrival is offered with its forecast; one with no
    history stays out, as it does without `arrive_at`.
    """
    await provision(api, "FC2", 34.80)
    await provision(api, "FC3", 34.801)
    now = datetime.now(UTC)
    await history(db, "FC2", now, [12, 12])
    await live(db, "FC2", 0)
    await live(db, "FC3", 0)
    params = {"lat": "34.80", "lon": "113.66", "radius_m": "2000"}
    plain = await (await api.get("/v1/vacancies", params=params)).json()
    assert [i["lot_id"] for i in plain["items"]] == []
    ahead = await api.get("/v1/vacancies", params={**params, "arrive_at": (now + HORIZON).isoformat()})
    assert ahead.status == 200, await ahead.text()
    items = (await ahead.json())["items"]
    assert [i["lot_id"] for i in items] == ["FC2"]
    # weeks: 10 free then, 12 at arrival; today 0: 12 + (0 - 10)·e^(-2/3) ≈ 6.9
    assert abs(items[0]["forecast"]["expected_free"] - (12 - 10 * math.exp(-2 / 3))) <= 0.1
    assert items[0]["forecast"]["weeks"] == 2


@pytest.mark.parametrize(
    "arrive_at",
    [
        (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        (datetime.now(UTC) + timedelta(hours=25)).isoformat(),
        "2026-11-23T08:00:00",
        "soon",
    ],
)
async def test_bad_arrival_times_are_400_naming_arrive_at(api: Client, arrive_at: str) -> None:
    """Past, more than a day ahead, without an offset, or not a time: a problem naming the field."""
    await provision(api, "FC4", 34.70)
    for path, params in (
        ("/v1/lots/FC4", {"arrive_at": arrive_at}),
        ("/v1/vacancies", {"lat": "34.7", "lon": "113.66", "arrive_at": arrive_at}),
    ):
        resp = await api.get(path, params=params)
        assert resp.status == 400, (path, await resp.text())
        assert [e["field"] for e in (await resp.json())["errors"]] == ["arrive_at"]
