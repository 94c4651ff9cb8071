"""A stream of hostile MQTT messages through the real broker and gateway, with exact accounting.

Random bytes, ~1 MB payloads, deep nesting, NaN/Infinity, NUL and control characters, unicode ids,
odd topic levels, duplicate seqs and far-future/far-past clocks, interleaved with good readings:
the gateway never stops, every good reading is stored and reflected, and every message the gateway
received is either accepted or a recorded refusal (in = accepted + rejected, exactly).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from paho.mqtt.client import MQTTv311

from parking_core.adapters.settings import Settings
from parking_core.devtools.embedded import BROKER_MAX_PACKET_BYTES
from simulators.city import generate_city
from simulators.provision import provision_city
from tests.integration.gateway.helpers import eventually, gateway_settings, running_gateway
from tests.mqtt_helpers import connect, wait_until

pytestmark = [pytest.mark.hostile, pytest.mark.db, pytest.mark.mqtt]
CITY = generate_city(1, 1, 6, prefix="hd")
DEVICES = [spot.device_id for spot in CITY.lots[0].spots]
SEED = 20261130
CONTROL = "\u0007\u001b[2J"  # control characters are storable: a firmware string may hold them


@dataclass(frozen=True)
class Sent:
    """One message of the stream and what must become of it."""

    topic: str
    payload: bytes
    outcome: str  # "reading", "duplicate", "presence", a refusal reason, or "undelivered"
    identity: tuple[str, int, datetime] | None = None  # (device, seq, ts) of a reading


def state(device: str, seq: int, ts: str, **extra: object) -> bytes:
    return json.dumps({"seq": seq, "ts": ts, "occupied": seq % 2 == 0, **extra}).encode()


def hostile_stream(prefix: str, now: datetime) -> list[Sent]:
    """Return the good readings and the hostile messages, interleaved (seeded)."""
    rng = random.Random(SEED)  # noqa: S311 -- hostile input, seeded for a reproducible stream
    good: list[Sent] = []
    for i in range(60):
        device, ts = DEVICES[i % len(DEVICES)], now - timedelta(seconds=120 - i)
        topic = f"{prefix}/sensors/{device}/{'state' if i % 3 else 'heartbeat'}"
        good.append(Sent(topic, state(device, i, ts.isoformat()), "reading", (device, i, ts)))
    d0, d1, ts0 = DEVICES[0], DEVICES[1], now - timedelta(seconds=30)
    sensor = f"{prefix}/sensors/{d0}/state"
    beat = f"{prefix}/sensors/{d0}/heartbeat"
    iso = ts0.isoformat()
    bad = [
        *(Sent(sensor, b"\xff" + rng.randbytes(rng.randrange(1, 300)), "not_json") for _ in range(8)),
        Sent(sensor, b'{"seq":1,' + b" " * 1_000_000 + b"}", "too_large"),
        Sent(sensor, b"[" * 4000 + b"]" * 4000, "not_json"),  # 8000 bytes, 4000 deep
        Sent(sensor, b'{"a":' * 1000 + b"1" + b"}" * 1000, "not_json"),
        Sent(sensor, f'{{"seq":NaN,"ts":"{iso}","occupied":true}}'.encode(), "schema"),
        Sent(sensor, f'{{"seq":1,"ts":"{iso}","occupied":true,"battery_mv":Infinity}}'.encode(), "schema"),
        Sent(sensor, f'{{"seq":-Infinity,"ts":"{iso}","occupied":true}}'.encode(), "schema"),
        Sent(beat, f'{{"seq":500,"ts":"{iso}","occupied":true,"fw":"1\\u0000"}}'.encode(), "unstorable"),
        Sent(sensor, f'{{"seq":501,"ts":"{iso}","occupied":true,"\\u0000":1}}'.encode(), "schema"),
        Sent(sensor, f'{{"seq":502,"ts":"{iso}","occupied":true,"\\u0007\\u001b":1}}'.encode(), "schema"),
        Sent(sensor, b'{"seq":503,"ts":"' + iso.encode() + b'","occupied":true,"\\ud800":1}', "not_json"),
        Sent(sensor, b'{"seq":1,"ts":"\x00","occupied":true}', "not_json"),
        Sent(sensor, f'{{"seq":{2**63},"ts":"{iso}","occupied":true}}'.encode(), "schema"),
        Sent(sensor, f'{{"seq":-1,"ts":"{iso}","occupied":true}}'.encode(), "schema"),
        Sent(sensor, b'{"seq":1,"ts":"2026-11-23T08:00:00","occupied":true}', "schema"),  # naive
        Sent(sensor, state(d0, 600, "9999-12-31T23:59:59-14:00"), "clock_skew"),
        Sent(sensor, state(d0, 601, (now + timedelta(hours=1)).isoformat()), "clock_skew"),
        Sent(sensor, state(d0, 602, "0001-01-01T00:00:00+14:00"), "too_old"),
        Sent(sensor, state(d0, 603, (now - timedelta(hours=100)).isoformat()), "too_old"),
        Sent(f"{prefix}/sensors/设备/state", state(d0, 1, iso), "wrong_topic"),
        Sent(f"{prefix}/sensors/ＳＥＮ１/state", state(d0, 1, iso), "wrong_topic"),
        Sent(f"{prefix}/sensors//state", state(d0, 1, iso), "wrong_topic"),
        Sent(f"{prefix}/sensors/{'x' * 5000}/state", state(d0, 1, iso), "wrong_topic"),
        Sent(f"{prefix}/sensors/{d0}/x/state", state(d0, 1, iso), "undelivered"),  # not subscribed
        Sent(f"{prefix}/sensors/{d0}/plate", state(d0, 1, iso), "undelivered"),
        Sent(f"{prefix}/sensors/ghost-1/state", state("ghost-1", 1, iso), "unknown_device"),
        Sent(f"{prefix}/devices/ghost-2/presence", b'{"online":false}', "unknown_device"),
        Sent(f"{prefix}/devices/{d0}/presence", b'{"online":"yes"}', "schema"),
        Sent(f"{prefix}/devices/{d0}/presence", b'{"online":true}', "presence"),
        Sent(beat, f'{{"seq":700,"ts":"{iso}","occupied":true,"fw":"{"v" * 65}"}}'.encode(), "schema"),
        Sent(
            f"{prefix}/sensors/{d1}/heartbeat",
            state(d1, 701, now.isoformat(), fw=CONTROL),
            "reading",
            (d1, 701, now),
        ),
        Sent(sensor, state(d0, 702, iso, battery_mv=3300), "reading", (d0, 702, ts0)),
        Sent(sensor, state(d0, 702, iso, battery_mv=3300), "duplicate"),  # the same (device, seq, ts)
        Sent(sensor, state(d0, 702, (ts0 + timedelta(seconds=1)).isoformat()), "reading"),  # same seq
    ]
    bad[-1] = Sent(bad[-1].topic, bad[-1].payload, "reading", (d0, 702, ts0 + timedelta(seconds=1)))
    bad += [Sent(good[i].topic, good[i].payload, "duplicate") for i in (3, 17, 41)]
    stream = good + bad
    rng.shuffle(stream)
    return stream


async def publish(url: str, stream: list[Sent], prefix: str) -> None:
    """Publish the stream at QoS 1, then a packet over the broker's limit (the broker drops it)."""
    publisher = connect(url)
    try:
        for sent in stream:
            info = publisher.client.publish(sent.topic, sent.payload, qos=1)
            await asyncio.to_thread(info.wait_for_publish, 10)
    finally:
        publisher.close()
    oversized = connect(url, protocol=MQTTv311)
    oversized.client.publish(f"{prefix}/sensors/{DEVICES[0]}/state", b"x" * (BROKER_MAX_PACKET_BYTES + 1))
    assert wait_until(lambda: not oversized.client.is_connected())  # disconnected by the broker
    oversized.close()


@dataclass
class Stored:
    """What the database holds after the stream."""

    readings: set[tuple[str, int, datetime]]
    reasons: Counter[str]
    occupied: dict[str, bool]
    firmware: str


async def stored(database_url: str) -> Stored:
    db = await asyncpg.connect(database_url)
    try:
        readings = await db.fetch("SELECT device_id, seq, ts FROM sensor_readings")
        reasons = await db.fetch("SELECT reason, count(*) AS n FROM rejected_messages GROUP BY 1")
        spots = await db.fetch("SELECT d.device_id, s.occupied FROM devices d JOIN spots s USING (spot_id)")
        firmware = await db.fetchval("SELECT firmware FROM devices WHERE device_id = $1", DEVICES[1])
    finally:
        await db.close()
    return Stored(
        {(r["device_id"], r["seq"], r["ts"]) for r in readings},
        Counter({r["reason"]: r["n"] for r in reasons}),
        {r["device_id"]: r["occupied"] for r in spots},
        firmware,
    )


def newest_occupied(stream: list[Sent]) -> dict[str, bool]:
    """Return each device's occupancy from its newest reading by (ts, seq): the spot's state."""
    newest: dict[str, tuple[datetime, int, bool]] = {}
    for sent in stream:
        if sent.identity is not None:
            device, seq, ts = sent.identity
            key = (ts, seq, bool(json.loads(sent.payload)["occupied"]))
            newest[device] = max(newest.get(device, key), key)
    return {device: key[2] for device, key in newest.items()}


async def test_hostile_stream_is_accounted_for_exactly(app_settings: Settings) -> None:
    """0 crashes; every good reading stored and reflected; in = accepted + rejected, by reason."""
    assert app_settings.database_url is not None
    assert app_settings.mqtt_url is not None
    await provision_city(app_settings.database_url, CITY, heartbeat_interval_s=600)
    prefix, now = app_settings.topic_prefix, datetime.now(UTC).replace(microsecond=0)
    stream = hostile_stream(prefix, now)
    expected = Counter(s.outcome for s in stream)
    delivered = len(stream) - expected["undelivered"]
    async with running_gateway(gateway_settings(app_settings, gateway_batch_rows=16)) as gateway:
        await publish(app_settings.mqtt_url, stream, prefix)
        metrics = gateway.metrics

        async def all_committed() -> bool:
            done = metrics.accepted + metrics.duplicates + sum(metrics.rejected.values())
            return sum(metrics.received.values()) == delivered and done + expected["presence"] == delivered

        await eventually(all_committed, timeout_s=60, state=metrics)
        assert gateway.link.subscribed.is_set()  # still connected: nothing disturbed the gateway
        assert (metrics.db_errors, metrics.unrecorded) == (0, 0)
    got = await stored(app_settings.database_url)
    readings = {s.identity for s in stream if s.identity is not None}
    others = {"reading", "duplicate", "presence", "undelivered"}
    refusals = Counter({k: v for k, v in expected.items() if k not in others})
    assert got.readings == readings
    assert got.reasons == refusals == metrics.rejected
    assert (metrics.accepted, metrics.duplicates) == (len(readings), expected["duplicate"])
    assert delivered == len(readings) + expected["duplicate"] + expected["presence"] + refusals.total()
    assert got.occupied == newest_occupied(stream)
    assert got.firmware == CONTROL  # the newest reading of its device
