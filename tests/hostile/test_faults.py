"""Faults under load, with accounting: gateway SIGKILLs, a broker restart and a 60 s database outage
while readings flow. Afterwards every published reading is stored exactly once; the gateway's memory
stayed bounded during the outage; the backlog drained; the API answered 503 during the outage and
recovered by itself. Services of its own (PostgreSQL, Mosquitto), so stopping them disturbs no one.
"Accepted" is what the broker acknowledged to the publisher (PUBACK): each of those is stored once.

About two minutes alone (the outage is 60 s): marked `slow`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import paho.mqtt.client as mqtt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from device_gateway.messages import encode_state
from guidance_api.app import create_app
from parking_core.adapters.migrate_pg import upgrade_database
from parking_core.adapters.settings import MqttEndpoint, Settings
from parking_core.devtools.embedded import MosquittoBroker, PostgresServer
from parking_core.topics import sensor_topic
from simulators.city import generate_city
from simulators.provision import provision_city
from tests.integration.gateway.helpers import eventually

pytestmark = [pytest.mark.hostile, pytest.mark.slow, pytest.mark.db, pytest.mark.mqtt]
PREFIX = "faults/parking/v1"
CITY = generate_city(1, 2, 40, prefix="flt")
DEVICES = [spot.device_id for lot in CITY.lots for spot in lot.spots]
RATE_PER_S = 100  # steady sensor traffic while the faults happen
OUTAGE_S = 60.0  # the database outage
KILLS = 3
RECEIVE_MAXIMUM = 1000  # the gateway's bound on unacknowledged messages during the outage
RSS_GROWTH_LIMIT = 64 * 1024 * 1024  # far below an unbounded inbox (6,000 messages and climbing)
MakeClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


@dataclass
class Publisher:
    """Publishes state messages at a steady rate from a thread; remembers every identity it sent."""

    endpoint: MqttEndpoint
    sent: list[tuple[str, int, datetime]] = field(default_factory=list)
    acked: set[tuple[str, int, datetime]] = field(default_factory=set)  # the broker took them (PUBACK)
    _pending: dict[int, tuple[str, int, datetime]] = field(default_factory=dict)
    _early: set[int] = field(default_factory=set)  # PUBACKs that came before we noted their mid
    _lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    client: mqtt.Client | None = None

    def run(self) -> None:
        """Publish until stopped; paho queues while the broker is away and resends after."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fault-publisher", protocol=mqtt.MQTTv5)
        password = self.endpoint.password.get_secret_value() if self.endpoint.password else None
        client.username_pw_set(self.endpoint.username, password)
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(1000)
        client.reconnect_delay_set(1, 2)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 600
        client.on_publish = self._on_publish
        client.connect(self.endpoint.host, self.endpoint.port, clean_start=False, properties=props)
        client.loop_start()
        self.client = client
        seq, started = 0, time.monotonic()
        while not self.stop.is_set():
            device = DEVICES[seq % len(DEVICES)]
            ts = datetime.now(UTC).replace(microsecond=(seq % 1000) * 1000)
            info = client.publish(
                sensor_topic(PREFIX, device, "state"), encode_state(seq, ts, seq % 3 == 0), qos=1
            )
            self._sent_mid(info.mid, (device, seq, ts))
            self.sent.append((device, seq, ts))
            seq += 1
            ahead = seq / RATE_PER_S - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)

    def _sent_mid(self, mid: int, identity: tuple[str, int, datetime]) -> None:
        """Note which reading a packet id carries (never under paho's locks: no deadlock)."""
        with self._lock:
            if mid in self._early:
                self._early.discard(mid)
                self.acked.add(identity)
            else:
                self._pending[mid] = identity

    def _on_publish(
        self, _client: mqtt.Client, _userdata: object, mid: int, _reason: object, _props: object
    ) -> None:
        with self._lock:
            identity = self._pending.pop(mid, None)
            if identity is None:
                self._early.add(mid)
            else:
                self.acked.add(identity)

    def close(self) -> None:
        """Wait until everything sent was acknowledged by the broker, then disconnect."""
        assert self.client is not None
        deadline = time.monotonic() + 60
        while self.client.want_write() or (len(self.client._out_messages) and time.monotonic() < deadline):
            time.sleep(0.1)
        self.client.disconnect()
        self.client.loop_stop()


def rss_bytes(pid: int) -> int:
    """Return the resident memory of process *pid*, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@contextlib.contextmanager
def gateway(settings: Settings, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``python -m device_gateway`` with a small, bounded inbox; kill it if still running."""
    assert settings.database_url is not None
    assert settings.mqtt_url is not None
    env = os.environ | {
        "PARKING_DATABASE_URL": settings.database_url,
        "PARKING_MQTT_URL": settings.mqtt_url,
        "PARKING_TOPIC_PREFIX": PREFIX,
        "PARKING_GATEWAY_CLIENT_ID": "gw-faults",
        "PARKING_GATEWAY_BATCH_ROWS": "200",
        "PARKING_GATEWAY_RECEIVE_MAXIMUM": str(RECEIVE_MAXIMUM),
        "PARKING_GATEWAY_RECONNECT_MAX_S": "2",
        "PARKING_GATEWAY_SESSION_EXPIRY_S": "600",
        # A plain persistent subscription: Mosquitto 2.0.11 does not restore `$share` subscriptions
        # from its persistence file, so across a broker restart a shared group loses what is
        # published before its members resubscribe (docs/gateway.md, "Several processes").
        "PARKING_GATEWAY_SHARE_GROUP": "",
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "device_gateway"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@dataclass
class Services:
    postgres: PostgresServer
    broker: MosquittoBroker
    settings: Settings


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    """A PostgreSQL and a Mosquitto of this test's own, migrated and provisioned."""
    postgres = PostgresServer(tmp_path / "pg").start()
    broker = MosquittoBroker(tmp_path / "mqtt").start()
    try:
        url = postgres.url_for("postgres")
        await asyncio.to_thread(upgrade_database, url)
        await provision_city(url, CITY, heartbeat_interval_s=3600)
        yield Services(postgres, broker, Settings(database_url=url, mqtt_url=broker.url, topic_prefix=PREFIX))
    finally:
        broker.stop()
        postgres.stop()


async def subscribed(log: Path) -> None:
    """Wait until the gateway's log says its subscriptions are in place."""

    def logged() -> bool:
        return log.exists() and "mqtt.subscribed" in log.read_text()

    async def in_log() -> bool:
        return await asyncio.to_thread(logged)

    await eventually(in_log, timeout_s=30)


async def stored_readings(url: str) -> tuple[int, set[tuple[str, int, datetime]]]:
    db = await asyncpg.connect(url)
    try:
        rows = await db.fetch("SELECT device_id, seq, ts FROM sensor_readings")
    finally:
        await db.close()
    return len(rows), {(r["device_id"], r["seq"], r["ts"]) for r in rows}


async def test_faults_under_load_lose_nothing_and_double_nothing(  # noqa: PLR0915 -- one scenario, in order
    services: Services, tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    """SIGKILL ×3, a broker restart, a 60 s database outage, while 100 readings/s flow."""
    settings, log = services.settings, tmp_path / "gateway.log"
    assert settings.database_url is not None
    publisher = Publisher(settings.mqtt_endpoint())
    sender = threading.Thread(target=publisher.run, name="publisher")
    api = await aiohttp_client(create_app(settings))
    try:
        for kill in range(KILLS):
            with gateway(settings, log) as proc:
                if kill == 0:  # the persistent session exists from its first subscription on
                    await subscribed(log)
                    sender.start()
                await asyncio.sleep(4)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        with gateway(settings, log) as proc:
            await asyncio.sleep(3)
            await asyncio.to_thread(services.broker.stop)
            await asyncio.sleep(2)  # readings queue in the publisher meanwhile
            await asyncio.to_thread(services.broker.start)
            await asyncio.sleep(5)
            before_outage = rss_bytes(proc.pid)
            await asyncio.to_thread(services.postgres.stop)
            outage_started, peak, answers = time.monotonic(), before_outage, []
            while time.monotonic() - outage_started < OUTAGE_S:
                peak = max(peak, rss_bytes(proc.pid))
                resp = await api.get("/v1/lots")
                answers.append((resp.status, resp.headers.get("Retry-After")))
                await asyncio.sleep(0.5)
            await asyncio.to_thread(services.postgres.start)
            restarted = time.monotonic()
            backlog = len(publisher.sent) - (await stored_readings(settings.database_url))[0]

            async def api_recovered() -> bool:
                return (await api.get("/v1/lots")).status == 200

            await eventually(api_recovered, timeout_s=60)
            publisher.stop.set()
            await asyncio.to_thread(sender.join, 60)
            await asyncio.to_thread(publisher.close)
            sent, accepted = set(publisher.sent), set(publisher.acked)

            async def all_stored() -> bool:  # every reading the broker accepted (PUBACK) is stored
                return accepted <= (await stored_readings(settings.database_url or ""))[1]

            await eventually(all_stored, timeout_s=180, state=len(accepted))
            drained_s = time.monotonic() - restarted
            assert proc.poll() is None  # the gateway lived through the outage and the restart
    finally:
        publisher.stop.set()
        if sender.is_alive():
            sender.join(60)
    count, stored = await stored_readings(settings.database_url)
    assert accepted <= stored <= sent
    assert count == len(stored)  # each stored once
    assert {status for status, _ in answers} <= {200, 503}
    assert (503, "2") in answers  # the outage was seen, and said so
    growth = peak - before_outage
    assert growth < RSS_GROWTH_LIMIT, f"gateway RSS grew {growth / 2**20:.1f} MiB during the outage"
    print(
        f"\nfaults: {len(sent)} readings sent, {len(accepted)} acknowledged by the broker, {len(stored)}"
        f" stored, {KILLS} SIGKILLs, a broker restart, {OUTAGE_S:.0f} s outage;"
        f" gateway RSS {before_outage / 2**20:.1f} MiB before the outage, peak +{growth / 2**20:.1f} MiB;"
        f" backlog of ~{backlog} readings drained with the live stream in {drained_s:.1f} s"
        f" ({backlog / max(drained_s, 0.001):.0f}/s against {RATE_PER_S}/s arriving)"
    )
