"""SIGKILL the gateway mid-stream and restart it: nothing accepted is lost, nothing applied twice."""

from __future__ import annotations

import asyncio
import secrets
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from device_gateway.config import GatewaySettings
from parking_core.adapters.settings import Settings
from parking_core.devtools.processes import Process, environment, log_line, python_module, running_async
from simulators.city import generate_city
from simulators.provision import provision_city
from simulators.publisher import mqtt_client, publish_all
from simulators.sensors import CitySimulator, Faults
from tests.integration.gateway.helpers import eventually, gateway_settings

pytestmark = [pytest.mark.db, pytest.mark.mqtt]


def gateway_process(settings: GatewaySettings, log: Path) -> AbstractAsyncContextManager[Process]:
    """Run ``python -m device_gateway`` with *settings* until its subscriptions are acknowledged."""
    return running_async(
        "gateway",
        python_module("device_gateway"),
        env=environment(settings),
        log_path=log,
        ready=log_line("mqtt.subscribed"),
    )


async def test_sigkill_mid_stream_loses_and_doubles_nothing(
    app_settings: Settings, tmp_path: Path, db: asyncpg.Connection
) -> None:
    """Readings committed before the kill stay once; the rest arrive after the restart."""
    assert app_settings.database_url is not None
    city = generate_city(1, 2, 50, prefix="kill")
    await provision_city(app_settings.database_url, city, heartbeat_interval_s=600)
    sim = CitySimulator(
        city,
        app_settings.topic_prefix,
        datetime.now(UTC) - timedelta(hours=30),
        seed=11,
        faults=Faults(duplicate=0.1, reorder=0.1),
        heartbeat_interval_s=300,
        rate_scale=4.0,
    )
    batches = [sim.advance(600) for _ in range(24 * 6)] + [sim.drain()]
    total = sum(len(b) for b in batches)
    settings = gateway_settings(
        app_settings,
        gateway_client_id=f"gw-kill-{secrets.token_hex(4)}",  # both runs resume the same session
        gateway_batch_rows=200,
        gateway_session_expiry_s=300,
    )
    async with mqtt_client(app_settings.mqtt_endpoint()) as pub:
        async with gateway_process(settings, tmp_path / "first.log") as first:
            half = len(batches) // 2
            for batch in batches[:half]:
                await publish_all(pub, batch)

            async def some_committed() -> bool:
                return bool(await db.fetchval("SELECT count(*) FROM sensor_readings") > 200)

            await eventually(some_committed)
            first.kill()
        before_restart = await db.fetchval("SELECT count(*) FROM sensor_readings")
        for batch in batches[half:]:  # the broker queues these for the dead session
            await publish_all(pub, batch)
        async with gateway_process(settings, tmp_path / "second.log") as second:

            async def all_in() -> bool:
                n = await db.fetchval("SELECT count(*) FROM sensor_readings")
                return bool(n == len(sim.truth.readings))

            await eventually(all_in, timeout_s=60)
            assert await asyncio.to_thread(second.stop, 30) == 0
    assert 0 < before_restart < len(sim.truth.readings) <= total
    stored = {
        (r["device_id"], r["seq"], r["ts"])
        for r in await db.fetch("SELECT device_id, seq, ts FROM sensor_readings")
    }
    assert stored == sim.truth.readings
    rows = await db.fetch("SELECT spot_id, occupied, status FROM spots")
    assert {r["spot_id"]: r["occupied"] for r in rows} == sim.truth.occupied()
    repeated = await db.fetchval(
        "SELECT count(*) FROM (SELECT spot_id, ts, status, previous_status FROM spot_status_changes"
        " GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d"
    )
    assert repeated == 0
    broken = await db.fetchval(
        """SELECT count(*) FROM (
             SELECT status, previous_status,
                    lag(status) OVER (PARTITION BY spot_id ORDER BY ts, ctid) AS before
             FROM spot_status_changes) c
           WHERE before IS NOT NULL AND before <> previous_status"""
    )
    # Every change starts where the previous one ended: none applied twice. In ts order, the order
    # newest-wins applies them in; not ctid order: the killed transaction's rows are rolled back
    # and their space reused, so later rows can sit on earlier pages.
    assert broken == 0
    counts = await db.fetch(
        """SELECT l.lot_id, l.free_count, l.occupied_count, l.unknown_count,
                  count(*) FILTER (WHERE s.status = 'free') AS free,
                  count(*) FILTER (WHERE s.status = 'occupied') AS occupied,
                  count(*) FILTER (WHERE s.status = 'unknown') AS unknown
           FROM lots l JOIN spots s USING (lot_id) GROUP BY l.lot_id"""
    )
    for c in counts:
        assert (c["free_count"], c["occupied_count"], c["unknown_count"]) == (
            c["free"],
            c["occupied"],
            c["unknown"],
        )
