"""The gateway over the real broker and database: readings, refusals, silence, availability."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiomqtt
import asyncpg
import pytest

from device_gateway.messages import encode_state
from parking_core.adapters.settings import Settings
from parking_core.topics import availability_topic, presence_topic, sensor_topic
from simulators.city import generate_city
from simulators.provision import provision_city
from tests.integration.gateway.helpers import eventually, gateway_settings, running_gateway

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
CITY = generate_city(1, 1, 5, prefix="gm")
LOT = CITY.lots[0]


def client(settings: Settings, identifier: str) -> aiomqtt.Client:
    endpoint = settings.mqtt_endpoint()
    password = endpoint.password.get_secret_value() if endpoint.password else None
    return aiomqtt.Client(
        endpoint.host, endpoint.port, username=endpoint.username, password=password, identifier=identifier
    )


async def test_stream_with_bad_messages_and_silence(app_settings: Settings, db: asyncpg.Connection) -> None:
    """Good readings land, bad ones are recorded with reasons, a silent sensor turns unknown."""
    assert app_settings.database_url is not None
    await provision_city(app_settings.database_url, CITY, heartbeat_interval_s=1, stale_after_s=2)
    settings = gateway_settings(app_settings)
    prefix = settings.topic_prefix
    now = datetime.now(UTC)
    async with running_gateway(settings), client(app_settings, "gm-pub") as pub:
        for i, spot in enumerate(LOT.spots):
            await pub.publish(
                sensor_topic(prefix, spot.device_id, "state"), encode_state(1, now, i % 2 == 0), qos=1
            )
        bad = [
            (sensor_topic(prefix, LOT.spots[0].device_id, "state"), b"not json"),
            (sensor_topic(prefix, "nobody", "state"), encode_state(1, now, True)),
            (
                sensor_topic(prefix, LOT.spots[1].device_id, "state"),
                encode_state(2, now + timedelta(minutes=10), True),
            ),
            (sensor_topic(prefix, LOT.spots[1].device_id, "state"), b'{"seq": 1}'),
        ]
        for topic, payload in bad:
            await pub.publish(topic, payload, qos=1)
        await pub.publish(
            presence_topic(prefix, LOT.spots[0].device_id), b'{"online":true}', qos=1, retain=True
        )

        async def settled() -> bool:
            n = await db.fetchval("SELECT count(*) FROM sensor_readings")
            r = await db.fetchval("SELECT count(*) FROM rejected_messages")
            return bool(n == LOT.capacity and r == len(bad))

        await eventually(settled)
        reasons = await db.fetch("SELECT reason FROM rejected_messages ORDER BY reason")
        assert [r["reason"] for r in reasons] == ["clock_skew", "not_json", "schema", "unknown_device"]
        await pub.subscribe(availability_topic(prefix, LOT.lot_id), qos=1)
        async for message in pub.messages:
            body = json.loads(bytes(message.payload))
            if body["free"] + body.get("occupied", 0) >= 0 and body["capacity"] == 5:
                break
        assert body["status"] in {"open", "almost_full", "full", "unknown"}

        # Everyone goes silent: after 2 s every spot is unknown and every device offline.
        async def all_unknown() -> bool:
            return bool(
                await db.fetchval("SELECT unknown_count FROM lots WHERE lot_id = $1", LOT.lot_id) == 5
            )

        await eventually(all_unknown)
        offline = await db.fetchval("SELECT count(*) FROM devices WHERE status = 'offline'")
        assert offline == 5
        presence = await db.fetchval("SELECT count(*) FROM device_presence_changes WHERE event = 'online'")
        assert presence == 1


async def test_committed_messages_are_acknowledged(app_settings: Settings, db: asyncpg.Connection) -> None:
    """After a graceful restart of the same session the broker redelivers nothing it was acked."""
    assert app_settings.database_url is not None
    city = generate_city(1, 1, 20, prefix="ack")
    await provision_city(app_settings.database_url, city)
    settings = gateway_settings(app_settings, gateway_batch_rows=50)
    prefix = settings.topic_prefix
    now = datetime.now(UTC)
    devices = [s.device_id for s in city.spots]

    async def stored(n: int) -> bool:
        got = await db.fetchval(
            "SELECT count(*) FROM sensor_readings WHERE device_id = ANY($1::text[])", devices
        )
        return bool(got == n)

    async with client(app_settings, "ack-pub") as pub:
        async with running_gateway(settings):
            for seq in range(25):
                for device in devices:
                    await pub.publish(
                        sensor_topic(prefix, device, "state"), encode_state(seq, now, seq % 2 == 0), qos=1
                    )
            await eventually(lambda: stored(500))
        async with running_gateway(settings) as again:
            await pub.publish(sensor_topic(prefix, devices[0], "state"), encode_state(99, now, True), qos=1)
            await eventually(lambda: stored(501))
            assert again.metrics.duplicates == 0
            assert sum(again.metrics.received.values()) == 1
