"""Provisioning over HTTP on a real PostgreSQL: idempotent PUTs, problems that name the field."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
LOT = {
    "name": "Jinshui Rd 1",
    "kind": "on_street",
    "district_id": "jinshui",
    "lat": 34.7722,
    "lon": 113.6601,
    "spots": [{"spot_id": "JS1-001"}, {"spot_id": "JS1-002"}, {"spot_id": "JS1-003"}],
}


async def provision_lot(api: Client, lot_id: str = "JS1", body: dict[str, Any] | None = None) -> None:
    """Create the district and a lot."""
    resp = await api.put("/v1/admin/districts/jinshui", json={"name": "金水区"}, headers=ADMIN)
    assert resp.status in {200, 201}
    resp = await api.put(f"/v1/admin/lots/{lot_id}", json=body or LOT, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()


async def test_put_district_twice_creates_then_updates(api: Client) -> None:
    """The first PUT answers 201, the same PUT again 200, and one row exists."""
    first = await api.put("/v1/admin/districts/erqi", json={"name": "二七区"}, headers=ADMIN)
    again = await api.put("/v1/admin/districts/erqi", json={"name": "二七区"}, headers=ADMIN)
    assert (first.status, again.status) == (201, 200)
    assert (await again.json())["name"] == "二七区"


async def test_a_lot_with_spots_counts_them_all_unknown_until_sensors_speak(api: Client) -> None:
    """Capacity defaults to the spots listed; their status starts unknown, never free."""
    await provision_lot(api)
    lot = await (await api.get("/v1/lots/JS1")).json()
    assert lot["capacity"] == 3
    assert (lot["free"], lot["unknown"], lot["status"]) == (0, 3, "unknown")
    spots = await (await api.get("/v1/lots/JS1/spots")).json()
    assert [s["spot_id"] for s in spots["items"]] == ["JS1-001", "JS1-002", "JS1-003"]
    assert {s["status"] for s in spots["items"]} == {"unknown"}


async def test_replacing_a_lot_keeps_it_idempotent(api: Client) -> None:
    """PUT of the same lot twice leaves the same lot; dropping a spot removes it."""
    await provision_lot(api, "JS2", LOT | {"spots": [{"spot_id": "JS2-1"}, {"spot_id": "JS2-2"}]})
    await provision_lot(api, "JS2", LOT | {"spots": [{"spot_id": "JS2-1"}, {"spot_id": "JS2-2"}]})
    resp = await api.put("/v1/admin/lots/JS2", json=LOT | {"spots": [{"spot_id": "JS2-1"}]}, headers=ADMIN)
    assert resp.status == 200
    lot = await (await api.get("/v1/lots/JS2")).json()
    assert (lot["capacity"], lot["unknown"]) == (1, 1)


@pytest.mark.parametrize(
    ("change", "field", "status"),
    [
        ({"colour": "red"}, "colour", 422),
        ({"capacity": "12"}, "capacity", 422),
        ({"lat": 91.0}, "lat", 422),
        ({"lon": -181}, "lon", 422),
        ({"lat": "34.7"}, "lat", 422),
        ({"kind": "garage"}, "kind", 422),
        ({"time_zone": "Mars/Olympus"}, "time_zone", 422),
        ({"capacity": 5}, "spots", 422),
        ({"spots": [{"spot_id": "A"}, {"spot_id": "A"}]}, "spots", 422),
        ({"spots": [{"spot_id": "bad id!"}]}, "spots[0].spot_id", 422),
        ({"district_id": "nowhere"}, "district_id", 422),
    ],
)
async def test_bad_lot_input_is_refused_naming_the_field_and_changes_nothing(
    api: Client, db: asyncpg.Connection, change: dict[str, Any], field: str, status: int
) -> None:
    """Each bad field gets a problem response that names it; the lot is not created."""
    await provision_lot(api)
    resp = await api.put(
        "/v1/admin/lots/BAD1", json=LOT | {"spots": [{"spot_id": "B-1"}]} | change, headers=ADMIN
    )
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert problem["status"] == status
    assert field in [e["field"] for e in problem["errors"]], problem
    assert await db.fetchval("SELECT count(*) FROM lots WHERE lot_id = 'BAD1'") == 0


async def test_malformed_json_and_bad_ids_are_400(api: Client) -> None:
    """A body that is not JSON, or a path id outside the id alphabet, is a 400 problem."""
    resp = await api.put("/v1/admin/districts/x", data=b"{not json", headers=ADMIN)
    assert resp.status == 400
    assert (await resp.json())["type"].endswith("malformed_body")
    resp = await api.put("/v1/admin/districts/bad%20id", json={"name": "x"}, headers=ADMIN)
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["field"] == "district_id"


async def test_a_spot_of_another_lot_is_a_conflict(api: Client) -> None:
    """Listing another lot's spot is refused with 409 naming spots[i].spot_id."""
    await provision_lot(api)
    resp = await api.put(
        "/v1/admin/lots/OTHER",
        json=LOT | {"spots": [{"spot_id": "X-9"}, {"spot_id": "JS1-002"}]},
        headers=ADMIN,
    )
    assert resp.status == 409
    assert (await resp.json())["errors"][0]["field"] == "spots[1].spot_id"


async def test_binding_a_spot_twice_is_refused(api: Client) -> None:
    """A second sensor on an already bound spot gets 409 naming spot_id, and is not created."""
    await provision_lot(api)
    sensor = {"kind": "bay_sensor", "spot_id": "JS1-001", "model": "NB-MAG-1", "heartbeat_interval_s": 300}
    first = await api.put("/v1/admin/devices/S-A", json=sensor, headers=ADMIN)
    assert first.status == 201, await first.text()
    second = await api.put("/v1/admin/devices/S-B", json=sensor, headers=ADMIN)
    assert second.status == 409
    assert (await second.json())["errors"][0]["field"] == "spot_id"
    devices = await (await api.get("/v1/operator/devices?lot_id=JS1", headers=ADMIN)).json()
    assert [d["device_id"] for d in devices["items"]] == ["S-A"]


async def test_device_credentials_are_shown_once(api: Client) -> None:
    """Creating returns a password; the same PUT again does not, unless rotation is asked for."""
    await provision_lot(api)
    sensor = {"kind": "bay_sensor", "spot_id": "JS1-002", "heartbeat_interval_s": 300}
    created = await (await api.put("/v1/admin/devices/S-C", json=sensor, headers=ADMIN)).json()
    assert created["mqtt"]["username"] == "S-C"
    assert len(created["mqtt"]["password"]) >= 24
    assert created["stale_after_s"] == 2 * 300 + 60
    assert created["broker"] == {"auth": "file", "updated": True}
    again = await api.put("/v1/admin/devices/S-C", json=sensor, headers=ADMIN)
    assert again.status == 200
    assert "mqtt" not in await again.json()
    rotated = await (
        await api.put("/v1/admin/devices/S-C?rotate_credentials=true", json=sensor, headers=ADMIN)
    ).json()
    assert rotated["mqtt"]["password"] != created["mqtt"]["password"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "bay_sensor"}, "spot_id"),
        ({"kind": "bay_sensor", "spot_id": "JS1-003", "lot_id": "JS1"}, "lot_id"),
        ({"kind": "gate", "lot_id": "JS1"}, "lane"),
        ({"kind": "gate", "lane": "entry"}, "lot_id"),
        (
            {"kind": "bay_sensor", "spot_id": "JS1-003", "heartbeat_interval_s": 300, "stale_after_s": 200},
            "stale_after_s",
        ),
        ({"kind": "bay_sensor", "spot_id": "NOPE"}, "spot_id"),
        ({"kind": "bay_sensor", "spot_id": "JS1-003", "heartbeat_interval_s": 1.5}, "heartbeat_interval_s"),
        ({"kind": "toaster", "lot_id": "JS1"}, "kind"),
    ],
)
async def test_bad_device_input_names_the_field(api: Client, body: dict[str, Any], field: str) -> None:
    """Missing or contradictory bindings are 4xx problems naming the field; nothing is created."""
    await provision_lot(api)
    resp = await api.put("/v1/admin/devices/BAD-DEV", json=body, headers=ADMIN)
    assert 400 <= resp.status < 500
    assert field in [e["field"] for e in (await resp.json())["errors"]]
    devices = await (await api.get("/v1/operator/devices", headers=ADMIN)).json()
    assert "BAD-DEV" not in [d["device_id"] for d in devices["items"]]


async def test_admin_routes_need_the_admin_token(api: Client) -> None:
    """No token is 401; an operator token is 403."""
    await provision_lot(api)
    assert (await api.put("/v1/admin/districts/zz", json={"name": "z"})).status == 401
    token = await (
        await api.post("/v1/admin/tokens", json={"role": "operator", "lot_ids": ["JS1"]}, headers=ADMIN)
    ).json()
    resp = await api.put(
        "/v1/admin/districts/zz", json={"name": "z"}, headers={"Authorization": f"Bearer {token['token']}"}
    )
    assert resp.status == 403


async def test_tokens_validate_scope_and_plates(api: Client) -> None:
    """Operator tokens need a scope of known lots; driver tokens need plausible plates, normalised."""
    await provision_lot(api)
    resp = await api.post(
        "/v1/admin/tokens", json={"role": "operator", "lot_ids": ["JS1", "GHOST"]}, headers=ADMIN
    )
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["field"] == "lot_ids[1]"
    resp = await api.post(
        "/v1/admin/tokens", json={"role": "driver", "plates": ["豫a·123-45"]}, headers=ADMIN
    )
    assert resp.status == 201
    assert (await resp.json())["plates"] == ["豫A12345"]
    resp = await api.post("/v1/admin/tokens", json={"role": "driver", "plates": ["ABC"]}, headers=ADMIN)
    assert resp.status == 422
    assert (await resp.json())["errors"][0]["field"] == "plates"


async def test_openapi_describes_every_route(api: Client) -> None:
    """/v1/openapi.json lists each registered route with its method."""
    doc = await (await api.get("/v1/openapi.json")).json()
    assert doc["openapi"].startswith("3.")
    assert "put" in doc["paths"]["/v1/admin/lots/{lot_id}"]
    assert "LotBody" in doc["components"]["schemas"]
    for path in (
        "/v1/lots/{lot_id}",
        "/v1/lots/{lot_id}/spots",
        "/v1/operator/devices",
        "/v1/operator/rejected-messages",
        "/v1/admin/devices/{device_id}",
        "/v1/admin/tokens",
    ):
        assert path in doc["paths"], path


async def test_unknown_routes_are_problems_too(api: Client) -> None:
    """Even a 404 for an unknown path is application/problem+json."""
    resp = await api.get("/v1/nothing-here")
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    resp = await api.get("/v1/lots/NOPE")
    assert resp.status == 404
    assert (await resp.json())["type"].endswith("unknown_lot")
