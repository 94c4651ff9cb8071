"""Changes made through the API reach the retained availability topic: closing a lot, holding a space."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiomqtt
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from parking_core.adapters.settings import Settings
from parking_core.topics import availability_topic
from tests.integration.api.conftest import ADMIN
from tests.integration.api.test_tariffs_and_vacancies import put_lot, set_spots
from tests.integration.gateway.helpers import gateway_settings, running_gateway

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
Client = TestClient[Any, Any]
WAIT_S = 30.0  # generous: nothing here measures time


async def next_availability(sub: aiomqtt.Client, wanted: dict[str, Any]) -> dict[str, Any]:
    """Return the first availability message that has every field of *wanted*."""

    async def scan() -> dict[str, Any]:
        async for message in sub.messages:
            body: dict[str, Any] = json.loads(bytes(message.payload))
            if all(body.get(k) == v for k, v in wanted.items()):
                return body
        raise AssertionError("subscription ended")

    return await asyncio.wait_for(scan(), WAIT_S)


async def test_closing_a_lot_and_holding_a_space_reach_the_signs(
    api: Client, app_settings: Settings, db: asyncpg.Connection
) -> None:
    """A lot closed through the admin API is published `closed`; a hold lowers `free` at once."""
    await put_lot(api, "sign-a", 34.9, 113.9, 2, kind="off_street")
    await set_spots(db, "sign-a", 2, 0, 0)
    settings = gateway_settings(app_settings)
    endpoint = app_settings.mqtt_endpoint()
    password = endpoint.password.get_secret_value() if endpoint.password else None
    topic = availability_topic(settings.topic_prefix, "sign-a")
    async with (
        running_gateway(settings),
        aiomqtt.Client(endpoint.host, endpoint.port, username=endpoint.username, password=password) as sub,
    ):
        await sub.subscribe(topic, qos=1)
        resp = await api.post(
            "/v1/admin/tokens", json={"role": "driver", "plates": ["豫E50001"]}, headers=ADMIN
        )
        driver = {"Authorization": f"Bearer {(await resp.json())['token']}"}
        start = datetime.now(UTC) + timedelta(minutes=10)
        window = {
            "arrival_from": start.isoformat(),
            "arrival_to": (start + timedelta(minutes=20)).isoformat(),
        }
        made = await api.post(
            "/v1/reservations", json={"lot_id": "sign-a", "plate": "豫E50001"} | window, headers=driver
        )
        assert made.status == 201
        held = await next_availability(sub, {"free": 1, "capacity": 2})
        assert held["status"] == "open"
        await put_lot(api, "sign-a", 34.9, 113.9, 2, kind="off_street", status="closed")
        closed = await next_availability(sub, {"status": "closed"})
        assert closed["capacity"] == 2
