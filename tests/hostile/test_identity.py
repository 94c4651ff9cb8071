"""Identity on the real broker: no id gives a device the backend's or another device's identity, and
rotated credentials and revoked tokens stop working at once."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from paho.mqtt.client import MQTTv311

from parking_core.adapters.broker_files import hash_password
from parking_core.devtools.harness import ServiceHarness
from tests.integration.api.conftest import ADMIN
from tests.mqtt_helpers import Collector, connect, wait_until

pytestmark = [pytest.mark.hostile, pytest.mark.db, pytest.mark.mqtt]
Client = TestClient[Any, Any]
BACKEND = "parking-backend"


@pytest.fixture
def own_broker(harness: ServiceHarness) -> ServiceHarness:
    """Skip when the broker is someone else's: its users are not ours to write."""
    if harness.broker is None:
        pytest.skip("PARKING_MQTT_URL names an external broker; file-mode identities need the harness broker")
    return harness


async def provision(api: Client, spots: int = 6) -> None:
    assert (await api.put("/v1/admin/districts/idn", json={"name": "IDN"}, headers=ADMIN)).ok
    lot = {
        "name": "IDN",
        "kind": "on_street",
        "district_id": "idn",
        "lat": 34.7,
        "lon": 113.6,
        "spots": [{"spot_id": f"IDN-{i}"} for i in range(spots)],
    }
    assert (await api.put("/v1/admin/lots/IDN", json=lot, headers=ADMIN)).ok


async def sensor(api: Client, device_id: str, spot: int, *, rotate: bool = False) -> str:
    """Provision a bay sensor (or rotate its credentials); return its password."""
    resp = await api.put(
        f"/v1/admin/devices/{device_id}",
        params={"rotate_credentials": "true"} if rotate else None,
        headers=ADMIN,
        json={"kind": "bay_sensor", "spot_id": f"IDN-{spot}"},
    )
    assert resp.status in {200, 201}, await resp.text()
    body = await resp.json()
    assert body["broker"]["updated"] is True
    return str(body["mqtt"]["password"])


def refused(url: str, username: str, password: str) -> bool:
    """Tell whether the broker refuses *username* with *password* (MQTT 3.1.1, as devices connect)."""
    client: Collector = connect(
        url, username, password, client_id=f"probe-{username}"[:60], protocol=MQTTv311
    )
    try:
        assert client.connect_reason is not None
        return bool(client.connect_reason.is_failure)
    finally:
        client.close()


@pytest.mark.parametrize("device_id", [BACKEND, "Parking-Backend", "parking-gateway-1", "parking-api"])
async def test_no_device_id_is_a_backend_identity(
    api: Client, own_broker: ServiceHarness, device_id: str
) -> None:
    """Provisioning refuses the id (422 naming device_id) and the broker files keep one backend entry."""
    await provision(api)
    resp = await api.put(
        f"/v1/admin/devices/{device_id}", headers=ADMIN, json={"kind": "bay_sensor", "spot_id": "IDN-0"}
    )
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["field"] == "device_id"
    assert own_broker.broker is not None
    users = [line.split(":", 1)[0] for line in own_broker.broker.password_file.read_text().splitlines()]
    assert users.count(BACKEND) == 1


async def test_a_device_row_named_like_the_backend_gains_nothing(
    api: Client, own_broker: ServiceHarness, database_url: str
) -> None:
    """A device row with the backend's name (written before the check existed) gets no broker entry:
    the backend still connects with its own password, the row's password opens nothing."""
    await provision(api)
    db = await asyncpg.connect(database_url)
    try:
        await db.execute(
            "INSERT INTO devices (device_id, kind, spot_id, lot_id, heartbeat_interval_s, stale_after_s,"
            " credential_hash) VALUES ($1, 'bay_sensor', 'IDN-5', 'IDN', 600, 1260, $2)",
            BACKEND,
            hash_password("planted-password"),
        )
    finally:
        await db.close()
    await sensor(api, "IDN-S1", 4)  # any provisioning rewrites the files from the devices table
    assert own_broker.mqtt_url is not None
    assert own_broker.broker is not None
    users = [line.split(":", 1)[0] for line in own_broker.broker.password_file.read_text().splitlines()]
    assert users.count(BACKEND) == 1
    acl = own_broker.broker.acl_file.read_text()
    assert acl.count(f"user {BACKEND}\n") == 1
    assert refused(own_broker.mqtt_url, BACKEND, "planted-password")
    backend = connect(own_broker.mqtt_url)  # the backend's own credentials still work
    try:
        assert backend.connect_reason is not None
        assert not backend.connect_reason.is_failure
    finally:
        backend.close()


async def test_a_device_password_opens_no_other_identity(api: Client, own_broker: ServiceHarness) -> None:
    """Device A's password is refused as device B and as the backend."""
    await provision(api)
    first, second = await sensor(api, "IDN-A", 0), await sensor(api, "IDN-B", 1)
    assert own_broker.mqtt_url is not None
    url = own_broker.mqtt_url
    assert not refused(url, "IDN-A", first)
    assert refused(url, "IDN-B", first)
    assert refused(url, "IDN-A", second)
    assert refused(url, BACKEND, first)


async def test_rotated_credentials_stop_working_at_once(api: Client, own_broker: ServiceHarness) -> None:
    """After rotation the old password is refused and the old session is cut; the new one works."""
    await provision(api)
    old = await sensor(api, "IDN-R", 3)
    assert own_broker.mqtt_url is not None
    url = own_broker.mqtt_url
    session = connect(url, "IDN-R", old, client_id="IDN-R", protocol=MQTTv311)
    try:
        assert session.connect_reason is not None
        assert not session.connect_reason.is_failure
        new = await sensor(api, "IDN-R", 3, rotate=True)
        assert new != old
        assert wait_until(lambda: not session.client.is_connected())  # the reload cut the old session
    finally:
        session.close()
    assert refused(url, "IDN-R", old)
    assert not refused(url, "IDN-R", new)


async def test_a_revoked_token_stops_working_at_once(api: Client) -> None:
    """The very next request with a revoked operator token is a 401."""
    await provision(api)
    issued = await (
        await api.post("/v1/admin/tokens", headers=ADMIN, json={"role": "operator", "lot_ids": ["IDN"]})
    ).json()
    mine = {"Authorization": f"Bearer {issued['token']}"}
    assert (await api.get("/v1/operator/overview", headers=mine)).status == 200
    assert (await api.delete(f"/v1/admin/tokens/{issued['token_id']}", headers=ADMIN)).status == 200
    assert (await api.get("/v1/operator/overview", headers=mine)).status == 401
