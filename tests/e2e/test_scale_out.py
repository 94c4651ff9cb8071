"""Scale-out: two gateway processes and two API processes give exactly what one of each gives."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from device_gateway.config import GatewaySettings
from parking_core.adapters.migrations import SchemaMode
from parking_core.devtools.embedded import free_port
from parking_core.devtools.harness import ServiceHarness
from parking_core.devtools.processes import (
    Process,
    environment,
    http_ok,
    log_line,
    python_module,
    running_async,
)
from simulators.city import generate_city
from simulators.provision import provision_city
from simulators.publisher import mqtt_client, run_simulation
from simulators.sensors import CitySimulator, Faults
from tests.integration.gateway.helpers import eventually

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
CITY = generate_city(2, 2, 12, prefix="so")
START = datetime.now(UTC) - timedelta(hours=5)
SILENT_WINDOW_S = 2
# Fields that say when something happened on this run's clock, not what the state is.
WALL_CLOCK = {"updated_at", "data_age_s", "since"}


def simulator(prefix: str) -> CitySimulator:
    """The same seeded city and faults for every deployment."""
    faults = Faults(duplicate=0.1, reorder=0.1, garbage=0.02, skew=0.02, silent_devices=3)
    return CitySimulator(
        CITY, prefix, START, seed=12, faults=faults, heartbeat_interval_s=900, rate_scale=3.0
    )


@dataclass
class Deployment:
    """One database with its gateway and API processes."""

    url: str
    prefix: str
    logs: Path
    gateways: list[Process]
    apis: list[tuple[Process, int]]


def gateway_env(harness: ServiceHarness, url: str, prefix: str, slot: int, group: str) -> dict[str, str]:
    """Gateway *slot* of the group: its session named by the slot, as in a deployment."""
    settings = GatewaySettings.model_validate(
        harness.settings(url, topic_prefix=prefix).model_dump()
        | {
            "gateway_slot": slot,
            "gateway_share_group": group,
            "gateway_session_expiry_s": 60,
            "gateway_broker_check": "off",  # tested on its own in tests/integration/deploy
            "gateway_flush_interval_ms": 20,
            "gateway_batch_rows": 300,
            "gateway_liveness_interval_s": 0.2,
        }
    )
    env = environment(settings)
    env.pop("PARKING_GATEWAY_CLIENT_ID")
    return env


@asynccontextmanager
async def processes(
    harness: ServiceHarness, url: str, prefix: str, logs: Path, *, gateways: int, apis: int
) -> AsyncIterator[Deployment]:
    """Run *gateways* gateway processes (slots, one share group) and *apis* API processes."""
    group = f"so{secrets.token_hex(3)}"
    first_slot = 100 + secrets.randbelow(9000)  # slots no other test of this host uses
    deployment = Deployment(url, prefix, logs, [], [])
    async with AsyncExitStack() as stack:
        for slot in range(first_slot, first_slot + gateways):
            deployment.gateways.append(
                await stack.enter_async_context(
                    running_async(
                        f"gateway slot {slot}",
                        python_module("device_gateway"),
                        env=gateway_env(harness, url, prefix, slot, group),
                        log_path=logs / f"gw{slot}.log",
                        ready=log_line("mqtt.subscribed"),
                    )
                )
            )
        for index in range(apis):
            port = free_port()
            api = await stack.enter_async_context(
                running_async(
                    f"api {index}",
                    python_module("guidance_api", "--host", "127.0.0.1", "--port", str(port)),
                    env=environment(harness.settings(url, topic_prefix=prefix)),
                    log_path=logs / f"api{index}.log",
                    ready=http_ok(f"http://127.0.0.1:{port}/v1/lots"),
                )
            )
            deployment.apis.append((api, port))
        yield deployment


@asynccontextmanager
async def database(url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(url)
    try:
        yield conn
    finally:
        await conn.close()


async def run_city(
    harness: ServiceHarness, template: str, logs: Path, gateways: int, apis: int
) -> dict[str, Any]:
    """Run the simulated city through one deployment; return its database state and API answers."""
    url = harness.create_database("scaleout", template=template)
    prefix = f"so{secrets.token_hex(4)}/parking/v1"
    sim = simulator(prefix)
    await provision_city(url, CITY, heartbeat_interval_s=900, stale_after_s=3600)
    async with database(url) as db:
        await db.execute(
            "UPDATE devices SET stale_after_s = $1 WHERE device_id = ANY($2::text[])",
            SILENT_WINDOW_S,
            sorted(sim.silent_device_ids),
        )
    await asyncio.to_thread(logs.mkdir)
    async with processes(harness, url, prefix, logs, gateways=gateways, apis=apis) as deployment:
        assert harness.mqtt_url is not None
        async with mqtt_client(harness.settings(url).mqtt_endpoint()) as pub:
            sent = await run_simulation(sim, pub, virtual_s=5 * 3600, step_s=300, speed=None)
        assert sent > 300
        truth = sim.truth
        async with database(url) as db:

            async def settled() -> bool:
                readings = await db.fetchval("SELECT count(*) FROM sensor_readings")
                rejected = await db.fetchval("SELECT count(*) FROM rejected_messages")
                offline = await db.fetchval("SELECT count(*) FROM devices WHERE status = 'offline'")
                return bool(
                    readings == len(truth.readings)
                    and rejected == sum(truth.rejected.values())
                    and offline == len(truth.silent)
                )

            await eventually(settled, timeout_s=120, state=logs)
            state = await snapshot(db)
        answers = [await api_answers(port) for _, port in deployment.apis]
    for gateway in deployment.gateways:
        assert gateway.popen.returncode == 0, gateway.tail()
    return {
        "state": state,
        "answers": answers,
        "accepted": await asyncio.to_thread(gateway_counts, logs),
    }


def gateway_counts(logs: Path) -> list[int]:
    """Return what each gateway process accepted."""
    return [accepted(p) for p in sorted(logs.glob("gw*.log"))]


def accepted(log: Path) -> int:
    """Return how many readings a gateway process said it accepted when it stopped."""
    for line in log.read_text().splitlines():
        if '"gateway.stopped"' in line:
            return int(json.loads(line)["accepted"])
    raise AssertionError(f"{log} has no gateway.stopped line")


SNAPSHOT = {
    "readings": "SELECT device_id, seq, ts, spot_id, occupied FROM sensor_readings",
    "spots": "SELECT spot_id, status, occupied, last_reading_ts, last_reading_seq FROM spots",
    "lots": "SELECT lot_id, free_count, occupied_count, reserved_count, unknown_count, closed_count"
    " FROM lots",
    # Not last_ts / last_seq: a device is touched at most every few seconds (docs/gateway.md), so
    # which reading its health columns show depends on batching, by design.
    "devices": "SELECT device_id, kind, status FROM devices",
}


async def snapshot(db: asyncpg.Connection) -> dict[str, Any]:
    """Everything the contract fixes, whatever the arrival order (docs/gateway.md)."""
    state: dict[str, Any] = {name: {tuple(r) for r in await db.fetch(sql)} for name, sql in SNAPSHOT.items()}
    state["rejected"] = Counter(r[0] for r in await db.fetch("SELECT reason FROM rejected_messages"))
    state["comms_lost"] = await db.fetchval(
        "SELECT count(*) FROM spot_status_changes WHERE cause = 'comms_lost'"
    )
    return state


def without_clock(value: Any) -> Any:
    """Drop the wall-clock fields from an API answer."""
    if isinstance(value, dict):
        return {k: without_clock(v) for k, v in value.items() if k not in WALL_CLOCK}
    if isinstance(value, list):
        return [without_clock(v) for v in value]
    return value


async def api_answers(port: int) -> dict[str, Any]:
    """Ask one API process what a driver and a city screen would ask."""
    base = f"http://127.0.0.1:{port}"
    lot = CITY.lots[0]
    paths = [
        "/v1/lots",
        *(f"/v1/lots/{lot.lot_id}/spots" for lot in CITY.lots),
        f"/v1/vacancies?lat={lot.lat}&lon={lot.lon}&radius_m=20000&limit=50",
    ]
    out = {}
    async with aiohttp.ClientSession() as http:
        for path in paths:
            async with http.get(base + path) as resp:
                assert resp.status == 200, (path, await resp.text())
                out[path] = without_clock(await resp.json())
    return out


async def test_two_gateways_and_two_apis_give_the_results_of_one(
    harness: ServiceHarness, migrated_template: tuple[str, SchemaMode], tmp_path: Path
) -> None:
    """Same seeded city, faults included, through 1+1 and 2+2 processes: same state, same answers."""
    one = await run_city(harness, migrated_template[0], tmp_path / "one", gateways=1, apis=1)
    two = await run_city(harness, migrated_template[0], tmp_path / "two", gateways=2, apis=2)
    assert two["state"] == one["state"]
    assert two["answers"][0] == two["answers"][1] == one["answers"][0]
    assert one["state"]["comms_lost"] == 3
    assert any(lot["free"] for lot in one["answers"][0]["/v1/lots"]["items"])
    assert len(two["accepted"]) == 2
    assert all(two["accepted"])  # both processes took part (the broker shared the stream)
    assert sum(two["accepted"]) >= sum(one["accepted"])  # redeliveries count again, never fewer
