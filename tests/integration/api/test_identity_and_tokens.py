"""Reserved broker identities, a one-time password that survives a failed broker sync, token
revocation and expiry, and the paging of rejected messages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from guidance_api.app import create_app
from parking_core.adapters.settings import BrokerAuth, Settings
from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db
Client = TestClient[Any, Any]
LOT = {"name": "L", "kind": "on_street", "district_id": "idt", "lat": 34.7, "lon": 113.6}


async def provision(api: Client) -> None:
    assert (await api.put("/v1/admin/districts/idt", json={"name": "D"}, headers=ADMIN)).status in {200, 201}
    body = LOT | {"spots": [{"spot_id": f"IDT-{i}"} for i in range(4)]}
    assert (await api.put("/v1/admin/lots/IDT", json=body, headers=ADMIN)).status in {200, 201}


@pytest.mark.parametrize("device_id", ["parking-backend", "PARKING-BACKEND", "parking-gw-1"])
async def test_a_device_cannot_take_a_reserved_broker_identity(api: Client, device_id: str) -> None:
    """The backend's username (any case) and its namespace are refused with 422 naming device_id."""
    await provision(api)
    resp = await api.put(
        f"/v1/admin/devices/{device_id}", headers=ADMIN, json={"kind": "bay_sensor", "spot_id": "IDT-0"}
    )
    assert resp.status == 422
    problem = await resp.json()
    assert problem["errors"][0]["field"] == "device_id"
    assert problem["errors"][0]["code"] == "reserved"


async def test_a_failed_broker_sync_still_returns_the_one_time_password(
    app_settings: Settings,
    tmp_path: Path,
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
) -> None:
    """The broker files cannot be written: the device is stored, its password shown, broker says so."""
    missing = tmp_path / "no-such-dir"
    settings = app_settings.model_copy(
        update={
            "broker_auth": BrokerAuth.FILE,
            "broker_password_file": missing / "passwd",
            "broker_acl_file": missing / "acl",
            "broker_pid_file": None,
        }
    )
    api = await aiohttp_client(create_app(settings))
    await provision(api)
    resp = await api.put(
        "/v1/admin/devices/IDT-S1", headers=ADMIN, json={"kind": "bay_sensor", "spot_id": "IDT-1"}
    )
    assert resp.status == 201
    body = await resp.json()
    assert body["mqtt"]["password"]
    assert body["broker"]["updated"] is False
    assert "next sync" in body["broker"]["note"]


async def issue(api: Client, **extra: Any) -> tuple[str, str]:
    resp = await api.post(
        "/v1/admin/tokens", headers=ADMIN, json={"role": "operator", "district_ids": ["idt"]} | extra
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    return body["token_id"], body["token"]


async def test_a_revoked_token_stops_working_at_once(api: Client) -> None:
    """DELETE /v1/admin/tokens/{id}: the next request with the token is a 401; again is a no-op."""
    await provision(api)
    token_id, token = await issue(api)
    mine = {"Authorization": f"Bearer {token}"}
    assert (await api.get("/v1/operator/devices", headers=mine)).status == 200
    first = await api.delete(f"/v1/admin/tokens/{token_id}", headers=ADMIN)
    assert first.status == 200
    assert (await api.get("/v1/operator/devices", headers=mine)).status == 401
    again = await api.delete(f"/v1/admin/tokens/{token_id}", headers=ADMIN)
    assert (await again.json())["revoked_at"] == (await first.json())["revoked_at"]
    assert (await api.delete("/v1/admin/tokens/tok_nothing", headers=ADMIN)).status == 404
    assert (await api.delete(f"/v1/admin/tokens/{token_id}", headers=mine)).status == 401


async def test_an_expired_token_is_refused(api: Client, database_url: str) -> None:
    """A token past its expires_at is a 401."""
    await provision(api)
    token_id, token = await issue(api, expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    mine = {"Authorization": f"Bearer {token}"}
    assert (await api.get("/v1/operator/devices", headers=mine)).status == 200
    db = await asyncpg.connect(database_url)
    try:
        await db.execute(
            "UPDATE tokens SET expires_at = now() - interval '1 s' WHERE token_id = $1", token_id
        )
    finally:
        await db.close()
    assert (await api.get("/v1/operator/devices", headers=mine)).status == 401


async def test_rejected_messages_page_by_cursor(api: Client, database_url: str) -> None:
    """limit=2 pages through 5 refusals newest first, each once, then no `next`; bad cursors are 400."""
    db = await asyncpg.connect(database_url)
    try:
        await db.execute("DELETE FROM rejected_messages")
        t0 = datetime(2026, 11, 23, tzinfo=UTC)
        await db.executemany(
            "INSERT INTO rejected_messages (received_at, topic, reason) VALUES ($1, $2, 'not_json')",
            [(t0 + timedelta(seconds=i // 2), f"t/{i}") for i in range(5)],
        )
    finally:
        await db.close()
    seen: list[str] = []
    url: str | None = "/v1/operator/rejected-messages?limit=2"
    while url is not None:
        resp = await api.get(url, headers=ADMIN)
        assert resp.status == 200
        page = await resp.json()
        seen += [item["topic"] for item in page["items"]]
        url = page.get("next")
    assert seen == ["t/4", "t/3", "t/2", "t/1", "t/0"]
    for bad in ("nope", "bm9wZQ==", "", "%00"):
        resp = await api.get(f"/v1/operator/rejected-messages?before={bad}", headers=ADMIN)
        assert resp.status == 400
        assert (await resp.json())["errors"][0]["field"] == "before"
    for limit in ("²", "0", "1001", "-1", "1e3"):
        resp = await api.get(f"/v1/operator/rejected-messages?limit={limit}", headers=ADMIN)
        assert resp.status == 400, limit
