"""A gates process beside a sensors process (--paths): each takes its own traffic, nothing is lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from device_gateway.config import GatewayPaths
from device_gateway.messages import encode_state
from parking_core.adapters.settings import Settings
from parking_core.gates import Lane
from parking_core.ids import LotId
from parking_core.topics import gate_topic, sensor_topic
from simulators.city import generate_city
from simulators.provision import provision_city
from tests.integration.gates.gate_helpers import provision_gate_lots
from tests.integration.gateway.helpers import eventually, gateway_settings, running_gateway
from tests.mqtt_helpers import Collector, connect
from tests.strategies_gates import gate_device

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
LOT = LotId("paths-lot")
ENTRY = gate_device(LOT, Lane.ENTRY)
CITY = generate_city(1, 1, 4, prefix="gp")
SENSOR_KINDS = {"state", "heartbeat", "presence", "invalid"}


def plate_read(seq: int, ts: datetime, plate: str) -> bytes:
    body = {"seq": seq, "ts": ts.isoformat(), "lane": "entry", "plate": plate, "plate_color": "blue"}
    return json.dumps(body | {"confidence": 0.97}, ensure_ascii=False).encode()


def entry_commands(gate: Collector) -> set[str]:
    """The plates of the entry commands received so far."""
    return {json.loads(p)["plate"] for t, p in list(gate.messages) if t.endswith(f"/{ENTRY}/command")}


async def test_gates_and_sensors_processes_each_take_their_own_messages(
    database_url: str, app_settings: Settings, topic_prefix: str
) -> None:
    """One share group: the sensors process stores every reading, the gates process answers every
    read, and neither receives the other's messages. A session that once took everything
    (`--paths all`) and comes back as sensors-only drops its gate subscription: the reads published
    afterwards all go to the gates process."""
    conn = await asyncpg.connect(database_url)
    await provision_gate_lots(conn, [LOT], 50)
    await provision_city(database_url, CITY, heartbeat_interval_s=10, stale_after_s=600)
    gate = connect(str(app_settings.mqtt_url))
    gate.client.subscribe(f"{topic_prefix}/gates/+/command", qos=1)
    both = gateway_settings(app_settings)
    sensors = both.model_copy(update={"gateway_paths": GatewayPaths.SENSORS})
    gates = both.model_copy(
        update={"gateway_paths": GatewayPaths.GATES, "gateway_client_id": both.gateway_client_id + "-g"}
    )
    now = datetime.now(UTC).replace(microsecond=0)
    plates = [f"豫P{n:05d}" for n in range(20)]
    try:
        async with running_gateway(both):  # the session subscribes to every leaf
            pass
        async with running_gateway(sensors) as sensor_gw, running_gateway(gates) as gate_gw:
            for n, plate in enumerate(plates):
                ts = now - timedelta(minutes=30) + timedelta(seconds=n)
                gate.client.publish(
                    gate_topic(topic_prefix, ENTRY, "plate"), plate_read(n + 1, ts, plate), qos=1
                )
            for n, spot in enumerate(CITY.spots):
                topic = sensor_topic(topic_prefix, spot.device_id, "state")
                gate.client.publish(topic, encode_state(n + 1, now, occupied=True), qos=1)

            async def stored() -> bool:
                count = await conn.fetchval(
                    "SELECT count(*) FROM sensor_readings WHERE device_id = ANY($1::text[])",
                    [s.device_id for s in CITY.spots],
                )
                return bool(count == len(CITY.spots))

            async def answered() -> bool:
                return set(plates) <= entry_commands(gate)

            await eventually(stored)
            await eventually(answered)
            assert sensor_gw.metrics.received["state"] == len(CITY.spots)
            assert not set(sensor_gw.metrics.received) - SENSOR_KINDS  # no plate, passage or ack
            assert gate_gw.metrics.received["plate"] == len(plates)
            assert not set(gate_gw.metrics.received) & SENSOR_KINDS
    finally:
        gate.close()
        await conn.close()
