"""Simulated city → broker → gateway → database → API: vacancies agree with the simulator's truth."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from guidance_api.app import create_app
from parking_core.adapters.settings import Settings
from simulators.city import CENTRE_LAT, CENTRE_LON, generate_city
from simulators.provision import provision_city
from simulators.publisher import mqtt_client, run_simulation
from simulators.sensors import CitySimulator, Faults
from tests.integration.gateway.helpers import eventually, gateway_settings, running_gateway

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
EARTH_RADIUS_M = 6_378_168  # earthdistance's earth() sphere


def great_circle_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the haversine distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def night_start(now: datetime) -> datetime:
    """Return the latest 02:00 Beijing time whose next 4 hours are past: few arrivals, free spaces left."""
    local = now.astimezone(ZoneInfo("Asia/Shanghai"))
    start = local.replace(hour=2, minute=0, second=0, microsecond=0)
    if start + timedelta(hours=4) > local:
        start -= timedelta(days=1)
    return start.astimezone(UTC)


async def test_vacancies_match_the_ground_truth_and_the_distance_order(
    app_settings: Settings,
    db: asyncpg.Connection,
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]],
) -> None:
    """Every offered lot's free count is the truth's; nearer lots come first; full lots are absent."""
    assert app_settings.database_url is not None
    city = generate_city(2, 4, 10, prefix="vg")
    sim = CitySimulator(
        city,
        app_settings.topic_prefix,
        night_start(datetime.now(UTC)),
        seed=11,
        faults=Faults(duplicate=0.1, reorder=0.1, garbage=0.0, skew=0.0, silent_devices=0),
        heartbeat_interval_s=900,
        rate_scale=1.0,
    )
    await provision_city(app_settings.database_url, city, heartbeat_interval_s=900, stale_after_s=3 * 3600)
    async with (
        running_gateway(gateway_settings(app_settings)),
        mqtt_client(app_settings.mqtt_endpoint()) as pub,
    ):
        await run_simulation(sim, pub, virtual_s=4 * 3600, step_s=300, speed=None)
        truth = sim.truth

        async def settled() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM sensor_readings") == len(truth.readings))

        await eventually(settled, timeout_s=60, state={})
    occupied = truth.occupied()
    free_truth = {lot.lot_id: sum(not occupied[s.spot_id] for s in lot.spots) for lot in city.lots}
    api = await aiohttp_client(create_app(app_settings))
    resp = await api.get(
        "/v1/vacancies", params={"lat": CENTRE_LAT, "lon": CENTRE_LON, "radius_m": 20000, "limit": 100}
    )
    assert resp.status == 200
    items = (await resp.json())["items"]
    assert len(items) >= 2, "the simulation should leave several lots with free spaces"
    offered = {item["lot_id"] for item in items}
    assert offered == {lot_id for lot_id, free in free_truth.items() if free > 0}
    for item in items:
        assert item["free"] == free_truth[item["lot_id"]]
        assert 0 <= item["free"] <= item["capacity"]
        assert item["status"] in {"open", "almost_full"}
        assert abs(item["distance_m"] - great_circle_m(CENTRE_LAT, CENTRE_LON, item["lat"], item["lon"])) < 2
    distances = [item["distance_m"] for item in items]
    assert distances == sorted(distances)
    for lot in city.lots:
        detail = await (await api.get(f"/v1/lots/{lot.lot_id}")).json()
        want = Counter("occupied" if occupied[s.spot_id] else "free" for s in lot.spots)
        assert (detail["free"], detail["occupied"], detail["unknown"]) == (want["free"], want["occupied"], 0)
