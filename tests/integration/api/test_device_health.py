"""Device health diagnoses on a real PostgreSQL: each issue from the data that shows it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from device_gateway.gate_tracking import find_gate
from device_gateway.sweeps import sweep_silent
from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]


async def put(api: Client, path: str, body: dict[str, Any]) -> None:
    """PUT an admin resource and check it was accepted."""
    resp = await api.put(path, json=body, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()


async def test_each_issue_is_found_and_scoped(api: Client, db: asyncpg.Connection) -> None:
    """Silent, low battery, stuck (unchanged 4 days), flapping (13 changes in an hour), a gate whose
    commands went unacknowledged; a healthy sensor and another district's devices are not listed.
    """
    await put(api, "/v1/admin/districts/dh", {"name": "健康区"})
    await put(api, "/v1/admin/districts/other", {"name": "别区"})
    spots = [{"spot_id": f"DH-{n}"} for n in range(5)]
    await put(
        api,
        "/v1/admin/lots/DH",
        {"name": "DH", "kind": "off_street", "district_id": "dh", "lat": 34.7, "lon": 113.6, "spots": spots},
    )
    await put(
        api,
        "/v1/admin/lots/OT",
        {
            "name": "OT",
            "kind": "off_street",
            "district_id": "other",
            "lat": 34.7,
            "lon": 113.6,
            "spots": [{"spot_id": "OT-0"}],
        },
    )
    for n, device in enumerate(("quiet", "weak", "stuck", "flappy", "fine")):
        await put(api, f"/v1/admin/devices/{device}", {"kind": "bay_sensor", "spot_id": f"DH-{n}"})
    await put(api, "/v1/admin/devices/far", {"kind": "bay_sensor", "spot_id": "OT-0"})
    await put(api, "/v1/admin/devices/gate1", {"kind": "gate", "lot_id": "DH", "lane": "entry"})
    now = datetime.now(UTC)
    await db.execute("UPDATE devices SET status = 'online', last_seen_at = $1, battery_mv = 3600", now)
    await db.execute("UPDATE devices SET status = 'offline' WHERE device_id IN ('quiet', 'far')")
    await db.execute("UPDATE devices SET battery_mv = 3200 WHERE device_id = 'weak'")
    await db.execute("UPDATE spots SET status = 'occupied', since = $1", now - timedelta(hours=1))
    await db.execute("UPDATE spots SET since = $1 WHERE spot_id = 'DH-2'", now - timedelta(days=4))
    await db.executemany(
        "INSERT INTO spot_status_changes (ts, spot_id, lot_id, status, previous_status, cause, device_id)"
        " VALUES ($1, 'DH-3', 'DH', $2, $3, 'reading', 'flappy')",
        [
            (now - timedelta(minutes=4 * k), "free" if k % 2 else "occupied", "occupied" if k % 2 else "free")
            for k in range(13)
        ],
    )
    await db.execute(
        "INSERT INTO gate_commands (command_id, device_id, lot_id, lane, ts, action, reason, sends,"
        " flagged_at) VALUES ($1, 'gate1', 'DH', 'entry', $2, 'open', 'entry', 5, $2)",
        uuid.uuid4(),
        now - timedelta(minutes=10),
    )
    resp = await api.post(
        "/v1/admin/tokens", json={"role": "operator", "district_ids": ["dh"]}, headers=ADMIN
    )
    token = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    body = await (await api.get("/v1/operator/device-health", headers=token)).json()
    found = sorted((i["device_id"], i["issue"]) for i in body["items"])
    assert found == [
        ("flappy", "flapping"),
        ("gate1", "gate_ack_missing"),
        ("quiet", "silent"),
        ("stuck", "stuck"),
        ("weak", "low_battery"),
    ]
    assert body["counts"] == {"silent": 1, "low_battery": 1, "stuck": 1, "flapping": 1, "gate_ack_missing": 1}
    admin = await (await api.get("/v1/operator/device-health", headers=ADMIN)).json()
    assert ("far", "silent") in {(i["device_id"], i["issue"]) for i in admin["items"]}
    assert (await api.get("/v1/operator/device-health")).status == 401


async def test_gates_are_online_by_their_own_messages(api: Client, db: asyncpg.Connection) -> None:
    """A gate the gate path heard from is online, not silent; one never heard from is silent; one
    whose window passed is swept offline and silent; a sign (it only listens) is never silent.
    `devices` counts the devices in scope per kind and status.
    """
    await put(api, "/v1/admin/districts/gh", {"name": "道闸区"})
    lot = {"name": "GH", "kind": "off_street", "district_id": "gh", "lat": 34.7, "lon": 113.6}
    await put(api, "/v1/admin/lots/GH", lot | {"counted_by": "gates", "capacity": 20})
    for device, lane in (("gh-in", "entry"), ("gh-out", "exit"), ("gh-new", "both")):
        await put(api, f"/v1/admin/devices/{device}", {"kind": "gate", "lot_id": "GH", "lane": lane})
    await put(api, "/v1/admin/devices/gh-sign", {"kind": "sign", "lot_id": "GH"})
    now = datetime.now(UTC)
    stale_s = await db.fetchval("SELECT stale_after_s FROM devices WHERE device_id = 'gh-out'")
    window = timedelta(seconds=stale_s)
    await find_gate(db, "gh-in", now)  # a plate read just now
    await find_gate(db, "gh-out", now - window - timedelta(minutes=1))  # its last message, long ago
    await sweep_silent(db, now)
    scope = {"role": "operator", "district_ids": ["gh"]}
    resp = await api.post("/v1/admin/tokens", json=scope, headers=ADMIN)
    token = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    body = await (await api.get("/v1/operator/device-health", headers=token)).json()
    silent = {i["device_id"]: (i["kind"], i["detail"]) for i in body["items"] if i["issue"] == "silent"}
    assert set(silent) == {"gh-out", "gh-new"}
    assert silent["gh-new"] == ("gate", "never")
    assert body["devices"]["gate"] == {"online": 1, "offline": 1, "unknown": 1}
    assert body["devices"]["sign"] == {"online": 0, "offline": 0, "unknown": 1}
    assert body["devices"]["bay_sensor"] == {"online": 0, "offline": 0, "unknown": 0}
    listed = await (await api.get("/v1/operator/devices?lot_id=GH", headers=token)).json()
    assert {d["device_id"]: d["online"] for d in listed["items"]} == {
        "gh-in": True,
        "gh-out": False,
        "gh-new": False,
        "gh-sign": False,
    }
