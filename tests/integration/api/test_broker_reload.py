"""Provisioning answers once the real Mosquitto has loaded the new files, even if it lost the signal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from paho.mqtt.client import MQTTv311

from guidance_api.broker import BrokerSync, accepts
from parking_core.adapters.broker_files import RELOAD_CHECK_USER, BrokerCredentials, reload_broker
from parking_core.adapters.settings import Settings
from parking_core.devtools.harness import ServiceHarness
from tests.integration.api.conftest import ADMIN
from tests.mqtt_helpers import connect

pytestmark = [pytest.mark.db, pytest.mark.mqtt]


@pytest.fixture
def own_broker(harness: ServiceHarness) -> ServiceHarness:
    """Skip when the broker is someone else's: its users are not ours to write."""
    if harness.broker is None:
        pytest.skip("PARKING_MQTT_URL names an external broker; file-mode identities need the harness broker")
    return harness


def refused(url: str, username: str, password: str) -> bool:
    """Tell whether the broker refuses *username* with *password* (MQTT 3.1.1, as devices connect)."""
    client = connect(url, username, password, client_id=f"probe-{username}", protocol=MQTTv311)
    try:
        assert client.connect_reason is not None
        return bool(client.connect_reason.is_failure)
    finally:
        client.close()


async def sensor(api: TestClient[Any, Any], device_id: str, spot_id: str) -> str:
    """Provision a bay sensor through the API; return its password."""
    resp = await api.put(
        f"/v1/admin/devices/{device_id}", headers=ADMIN, json={"kind": "bay_sensor", "spot_id": spot_id}
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["broker"] == {"auth": "file", "updated": True}
    return str(body["mqtt"]["password"])


async def test_a_reload_signal_the_broker_lost_is_sent_again(
    api: TestClient[Any, Any], own_broker: ServiceHarness, app_settings: Settings, database_url: str
) -> None:
    """Mosquitto drops a SIGHUP that lands during a reload; the sync notices and signals again."""
    spots = [{"spot_id": f"RL-{i}"} for i in range(3)]
    await api.put("/v1/admin/districts/rl", json={"name": "RL"}, headers=ADMIN)
    lot = {"name": "RL", "kind": "on_street", "district_id": "rl", "lat": 34.7, "lon": 113.6, "spots": spots}
    assert (await api.put("/v1/admin/lots/RL", json=lot, headers=ADMIN)).ok
    first = await sensor(api, "RL-S0", "RL-0")
    assert own_broker.mqtt_url is not None
    assert not refused(own_broker.mqtt_url, "RL-S0", first)  # answered after the broker loaded it

    signals: list[Path | None] = []

    def lost_once(pid_file: Path | None) -> bool:
        """Send SIGHUP, except the first time: as if it had landed during another reload."""
        signals.append(pid_file)
        return True if len(signals) == 1 else reload_broker(pid_file)

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        second = await sensor(api, "RL-S1", "RL-1")
        assert not refused(own_broker.mqtt_url, "RL-S1", second)  # loaded before the answer came
        await pool.execute("DELETE FROM devices WHERE device_id = 'RL-S0'")
        assert await BrokerSync(app_settings, signal=lost_once).sync(pool) is True
    finally:
        await pool.close()
    assert refused(own_broker.mqtt_url, "RL-S0", first)  # the broker loaded the files without RL-S0
    assert not refused(own_broker.mqtt_url, "RL-S1", second)
    assert len(signals) >= 2  # because the lost signal was sent again


async def test_the_check_user_cannot_connect_with_a_guess(own_broker: ServiceHarness) -> None:
    """The check user's password is derived from files only the broker reads; a guess is refused."""
    assert own_broker.mqtt_url is not None
    endpoint = Settings(mqtt_url=own_broker.mqtt_url).mqtt_endpoint()
    assert await accepts(endpoint, BrokerCredentials(RELOAD_CHECK_USER, "guess")) is False
