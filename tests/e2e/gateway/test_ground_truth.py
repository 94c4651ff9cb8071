"""End to end: a simulated city with faults, and the database agrees with the simulator's truth."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from parking_core.adapters.settings import Settings
from simulators.city import generate_city
from simulators.provision import provision_city
from simulators.publisher import mqtt_client, run_simulation
from simulators.sensors import CitySimulator, Faults
from tests.integration.gateway.helpers import eventually, gateway_settings, running_gateway

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
SILENT_WINDOW_S = 2  # the quiet sensors' stale_after_s; the others get an hour


async def test_database_matches_the_simulators_ground_truth(
    app_settings: Settings, db: asyncpg.Connection
) -> None:
    """Duplicates, reordering, garbage, skew and silence: the end state is the truth."""
    assert app_settings.database_url is not None
    city = generate_city(2, 2, 10, prefix="gt")
    start = datetime.now(UTC) - timedelta(hours=7)
    faults = Faults(duplicate=0.1, reorder=0.1, garbage=0.02, skew=0.02, silent_devices=3)
    sim = CitySimulator(
        city,
        app_settings.topic_prefix,
        start,
        seed=7,
        faults=faults,
        heartbeat_interval_s=900,
        rate_scale=3.0,
    )
    await provision_city(app_settings.database_url, city, heartbeat_interval_s=900, stale_after_s=3600)
    await db.execute(
        "UPDATE devices SET stale_after_s = $1 WHERE device_id = ANY($2::text[])",
        SILENT_WINDOW_S,
        sorted(sim.silent_device_ids),
    )
    settings = gateway_settings(app_settings)
    async with running_gateway(settings), mqtt_client(app_settings.mqtt_endpoint()) as pub:
        sent = await run_simulation(sim, pub, virtual_s=6 * 3600, step_s=300, speed=None)
        truth = sim.truth

        async def settled() -> bool:
            readings = await db.fetchval("SELECT count(*) FROM sensor_readings")
            rejected = await db.fetchval("SELECT count(*) FROM rejected_messages")
            offline = await db.fetchval("SELECT count(*) FROM devices WHERE status = 'offline'")
            seen.update(
                readings=(readings, len(truth.readings)),
                rejected=(rejected, sum(truth.rejected.values())),
                offline=(offline, len(truth.silent)),
            )
            return bool(
                readings == len(truth.readings)
                and rejected == sum(truth.rejected.values())
                and offline == len(truth.silent)
            )

        seen: dict[str, tuple[int, int]] = {}
        await eventually(settled, timeout_s=60, state=seen)
    assert sent > 500
    assert truth.silent == sim.silent_device_ids
    stored = {
        (r["device_id"], r["seq"], r["ts"])
        for r in await db.fetch("SELECT device_id, seq, ts FROM sensor_readings")
    }
    assert stored == truth.readings
    reasons = Counter(
        {
            r["reason"]: r["n"]
            for r in await db.fetch("SELECT reason, count(*) AS n FROM rejected_messages GROUP BY reason")
        }
    )
    assert reasons == truth.rejected

    silent_spots = {s.spot_id for s in city.spots if s.device_id in truth.silent}
    expected = {
        spot: ("unknown" if spot in silent_spots else "occupied" if occupied else "free")
        for spot, occupied in truth.occupied().items()
    }
    rows = await db.fetch("SELECT spot_id, status, occupied FROM spots")
    assert {r["spot_id"]: r["status"] for r in rows} == expected
    assert {r["spot_id"]: r["occupied"] for r in rows} == truth.occupied()

    for lot in city.lots:
        want = Counter(expected[s.spot_id] for s in lot.spots)
        row = await db.fetchrow(
            "SELECT free_count, occupied_count, unknown_count FROM lots WHERE lot_id = $1", lot.lot_id
        )
        assert row is not None
        assert tuple(row) == (want["free"], want["occupied"], want["unknown"])
    lost = await db.fetchval("SELECT count(*) FROM spot_status_changes WHERE cause = 'comms_lost'")
    assert lost == len(truth.silent)
    samples = await db.fetchval("SELECT count(*) FROM lot_occupancy")
    assert samples >= len(city.lots)
