"""A device provisioned through the API may publish only under its own id, on the real Mosquitto."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from paho.mqtt.client import MQTTv311

from parking_core.devtools.harness import ServiceHarness
from tests.integration.api.conftest import ADMIN
from tests.mqtt_helpers import Collector, connect, wait_until

pytestmark = [pytest.mark.db, pytest.mark.mqtt]


def intruder_gone(collector: Collector) -> Callable[[], bool]:
    """Return a check that the broker has dropped *collector*."""
    return lambda: not collector.client.is_connected()


@pytest.fixture
def own_broker(harness: ServiceHarness) -> ServiceHarness:
    """Skip when the broker is someone else's: its users are not ours to write."""
    if harness.broker is None:
        pytest.skip("PARKING_MQTT_URL names an external broker; file-mode ACLs need the harness broker")
    return harness


async def put_lot(api: TestClient[Any, Any], district_id: str, lot_id: str, **lot: Any) -> None:
    """Provision a district and one lot in it."""
    await api.put(f"/v1/admin/districts/{district_id}", json={"name": district_id.upper()}, headers=ADMIN)
    body = {"name": lot_id, "district_id": district_id, **lot}
    assert (await api.put(f"/v1/admin/lots/{lot_id}", headers=ADMIN, json=body)).status in {200, 201}


async def test_a_provisioned_sensor_publishes_on_its_own_topics_only(
    api: TestClient[Any, Any], own_broker: ServiceHarness, topic_prefix: str
) -> None:
    """Its own state topic reaches the backend; another sensor's topic is refused by the broker."""
    await put_lot(
        api,
        "d1",
        "L1",
        kind="on_street",
        lat=34.75,
        lon=113.62,
        spots=[{"spot_id": "L1-1"}, {"spot_id": "L1-2"}],
    )
    mine = await (
        await api.put(
            "/v1/admin/devices/SEN-1", headers=ADMIN, json={"kind": "bay_sensor", "spot_id": "L1-1"}
        )
    ).json()
    await api.put("/v1/admin/devices/SEN-2", headers=ADMIN, json={"kind": "bay_sensor", "spot_id": "L1-2"})
    assert own_broker.mqtt_url is not None
    url, password = own_broker.mqtt_url, mine["mqtt"]["password"]
    backend = connect(url)
    backend.client.subscribe(f"{topic_prefix}/#", qos=1)
    payload = json.dumps({"seq": 1, "ts": "2026-11-23T08:15:02+08:00", "occupied": True}).encode()
    forbidden = [f"{topic_prefix}/sensors/SEN-2/state", f"{topic_prefix}/gates/SEN-1/plate"]
    try:
        assert wait_until(lambda: bool(backend.client.is_connected()))
        for topic in forbidden:  # one connection each: Mosquitto drops a client that trespasses
            intruder = connect(url, "SEN-1", password, client_id="SEN-1", protocol=MQTTv311)
            assert intruder.connect_reason is not None
            assert not intruder.connect_reason.is_failure
            intruder.client.publish(topic, payload, qos=0)
            wait_until(intruder_gone(intruder), timeout_s=1)
            intruder.close()
        device = connect(url, "SEN-1", password, client_id="SEN-1", protocol=MQTTv311)
        device.client.publish(f"{topic_prefix}/sensors/SEN-1/state", payload, qos=1).wait_for_publish(10)
        device.client.publish(f"{topic_prefix}/devices/SEN-1/presence", b'{"online":true}', qos=1)
        assert wait_until(lambda: any(t.endswith("/presence") for t, _ in backend.messages))
        device.close()
        topics = [t for t, _ in backend.messages]
        assert f"{topic_prefix}/sensors/SEN-1/state" in topics
        for topic in forbidden:
            assert topic not in topics
    finally:
        backend.close()


async def test_a_wrong_password_is_refused(api: TestClient[Any, Any], own_broker: ServiceHarness) -> None:
    """The broker refuses a device whose password is not the one it was given."""
    await put_lot(api, "d2", "L2", kind="off_street", lat=34.7, lon=113.6, capacity=50)
    resp = await api.put(
        "/v1/admin/devices/GATE-1", headers=ADMIN, json={"kind": "gate", "lot_id": "L2", "lane": "entry"}
    )
    assert resp.status == 201
    assert own_broker.mqtt_url is not None
    intruder = connect(own_broker.mqtt_url, "GATE-1", "not-the-password", client_id="GATE-1")
    try:
        assert intruder.connect_reason is not None
        assert intruder.connect_reason.is_failure
    finally:
        intruder.close()
