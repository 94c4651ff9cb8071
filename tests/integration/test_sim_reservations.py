"""parking-sim's reserving drivers against the real API, gateway, PostgreSQL and Mosquitto: a kept hold
arrives by the bay's sensor, a cancelled one is cancelled, a missed one is still held for its deadline."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from guidance_api.app import create_app
from parking_core.adapters.settings import Settings
from simulators.city import generate_city
from simulators.provision import provision_city
from simulators.publisher import mqtt_client, publish_all
from simulators.reservations import Booking, Plan, ReservationDrivers
from simulators.sensors import CitySimulator, Publication
from tests.integration.gateway.helpers import eventually, gateway_settings, running_gateway

pytestmark = [pytest.mark.db, pytest.mark.slow]
Client = TestClient[Any, Any]
CITY = generate_city(1, 1, 6, prefix="simres")
(LOT,) = CITY.lots


def booking(plan: Plan, plate: str, act_s: float) -> Booking:
    return Booking(
        0.0,
        LOT.lot_id,
        plate,
        lead=timedelta(seconds=2),
        window=timedelta(minutes=2),
        plan=plan,
        act_after=timedelta(seconds=act_s),
        dwell=timedelta(minutes=30),
    )


async def test_simulated_drivers_keep_cancel_and_miss_their_holds(
    app_settings: Settings, aiohttp_client: Callable[[web.Application], Awaitable[Client]]
) -> None:
    """Through the API's routes, its real sweep and the gateway's reading of the held bay."""
    assert app_settings.database_url is not None
    await provision_city(app_settings.database_url, CITY, heartbeat_interval_s=86_400)
    api = await aiohttp_client(create_app(app_settings))  # sweeps on, real clock
    base = str(api.make_url("")).rstrip("/")
    assert app_settings.admin_token is not None
    token = app_settings.admin_token.get_secret_value()
    sim = CitySimulator(
        CITY, app_settings.topic_prefix, datetime.now(UTC), seed=2, heartbeat_interval_s=86_400
    )
    for sensor in sim.sensors:
        sensor.occupied = False  # every bay free at first, so each driver gets one
    db = await asyncpg.connect(app_settings.database_url)
    try:
        async with (
            running_gateway(gateway_settings(app_settings)),
            mqtt_client(app_settings.mqtt_endpoint()) as client,
        ):
            await publish_all(client, sim.advance(0.5))

            async def all_free() -> bool:
                free = await db.fetchval("SELECT free_count FROM lots WHERE lot_id = $1", LOT.lot_id)
                return bool(free == len(LOT.spots))

            await eventually(all_free, 60.0, "the bays' first readings")

            async def publish(publications: Sequence[Publication]) -> None:
                await publish_all(client, publications)

            drivers = ReservationDrivers(base, token, sim, publish)
            plans = [
                booking(Plan.KEEP, "豫S00001", 1.0),
                booking(Plan.CANCEL, "豫S00002", 0.5),
                booking(Plan.NO_SHOW, "豫S00003", 0.0),
            ]
            truth = await drivers.run(plans)
            assert (truth.arrived, truth.cancelled, sum(truth.booked.values())) == (1, 1, 3)

            async def outcomes() -> dict[str, str]:
                rows = await db.fetch("SELECT plate, status FROM reservations WHERE lot_id = $1", LOT.lot_id)
                return {r["plate"]: r["status"] for r in rows}

            async def kept_arrived() -> bool:
                return (await outcomes()).get("豫S00001") == "arrived"

            await eventually(kept_arrived, 60.0, "the kept hold's arrival by the sensor")
            assert await outcomes() == {"豫S00001": "arrived", "豫S00002": "cancelled", "豫S00003": "held"}
            evidence = await db.fetchval("SELECT evidence FROM reservations WHERE plate = '豫S00001'")
            assert evidence == "sensor"
    finally:
        await db.close()
