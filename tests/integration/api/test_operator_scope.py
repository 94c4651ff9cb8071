"""Scoped tokens on every operator route, route by route, and the overview's roll-ups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
Headers = dict[str, str]

# Every operator route, as an operator of district A reads it (its own lot LA where one is named).
OWN_ROUTES = [
    "/v1/operator/devices",
    "/v1/operator/devices?lot_id=LA",
    "/v1/operator/rejected-messages",
    "/v1/operator/lots/LA/occupancy",
    "/v1/operator/overview",
    "/v1/operator/kpis",
    "/v1/operator/districts/da/kpis",
    "/v1/operator/lots/LA/kpis",
]


@dataclass(frozen=True)
class World:
    """Two districts with a lot and a sensor each, and one token of every kind."""

    district_a: Headers
    lot_b: Headers
    driver: Headers


async def put(api: Client, path: str, body: dict[str, Any]) -> None:
    """PUT an admin resource (idempotent) and check it was accepted."""
    resp = await api.put(path, json=body, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()


async def issue(api: Client, body: dict[str, Any]) -> Headers:
    """Issue a token through the admin route and return its Authorization header."""
    resp = await api.post("/v1/admin/tokens", json=body, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


def lot(district_id: str, spots: list[str], lat: float) -> dict[str, Any]:
    """Return the body of a lot with *spots*."""
    return {
        "name": f"{district_id} lot",
        "kind": "on_street",
        "district_id": district_id,
        "lat": lat,
        "lon": 113.66,
        "spots": [{"spot_id": s} for s in spots],
    }


@pytest.fixture
async def world(api: Client, db: asyncpg.Connection) -> World:
    """Provision districts A and B (lots LA, LC in A; LB in B), sensors, rejections and tokens."""
    await put(api, "/v1/admin/districts/da", {"name": "金水区"})
    await put(api, "/v1/admin/districts/db", {"name": "二七区"})
    await put(api, "/v1/admin/lots/LA", lot("da", ["LA-1", "LA-2", "LA-3", "LA-4"], 34.77))
    await put(api, "/v1/admin/lots/LC", lot("da", ["LC-1", "LC-2"], 34.78))
    await put(api, "/v1/admin/lots/LB", lot("db", ["LB-1", "LB-2", "LB-3", "LB-4"], 34.72))
    for device_id, spot_id in (("SA", "LA-1"), ("SA2", "LA-2"), ("SB", "LB-1")):
        sensor = {"kind": "bay_sensor", "spot_id": spot_id, "heartbeat_interval_s": 300}
        await put(api, f"/v1/admin/devices/{device_id}", sensor)
    await db.execute(
        "INSERT INTO rejected_messages (topic, device_id, reason)"
        " SELECT 'parking/v1/sensors/' || d || '/state', d, 'schema' FROM unnest($1::text[]) AS d"
        " WHERE NOT EXISTS (SELECT 1 FROM rejected_messages r WHERE r.device_id = d)",
        ["SA", "SB", "GHOST"],
    )
    return World(
        district_a=await issue(api, {"role": "operator", "district_ids": ["da"]}),
        lot_b=await issue(api, {"role": "operator", "lot_ids": ["LB"]}),
        driver=await issue(api, {"role": "driver", "plates": ["豫A12345"]}),
    )


async def get_json(api: Client, path: str, headers: Headers) -> Any:
    """GET *path* and return its JSON, checking for 200."""
    resp = await api.get(path, headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


@pytest.mark.parametrize("path", OWN_ROUTES)
async def test_no_token_is_401(api: Client, world: World, path: str) -> None:
    """Without a token, or with a made-up one, every operator route answers 401 with a problem."""
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic abc"}):
        resp = await api.get(path, headers=headers)
        assert resp.status == 401, (path, headers)
        assert resp.content_type == "application/problem+json"


@pytest.mark.parametrize("path", OWN_ROUTES)
async def test_a_driver_token_is_403(api: Client, world: World, path: str) -> None:
    """A driver's token opens no operator route."""
    resp = await api.get(path, headers=world.driver)
    assert resp.status == 403
    assert (await resp.json())["type"].endswith("/forbidden")


@pytest.mark.parametrize("path", OWN_ROUTES)
async def test_an_operator_reads_its_own_district(api: Client, world: World, path: str) -> None:
    """The district A operator reads every route about district A."""
    await get_json(api, path, world.district_a)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/operator/devices?lot_id=LB",
        "/v1/operator/lots/LB/occupancy",
        "/v1/operator/lots/LB/kpis",
        "/v1/operator/districts/db/kpis",
    ],
)
async def test_naming_another_districts_lot_is_403(api: Client, world: World, path: str) -> None:
    """The district A operator naming district B's lot is refused, not answered empty."""
    resp = await api.get(path, headers=world.district_a)
    assert resp.status == 403


@pytest.mark.parametrize(
    "path",
    [
        "/v1/operator/devices?lot_id=LA",
        "/v1/operator/lots/LA/occupancy",
        "/v1/operator/lots/LC/occupancy",
        "/v1/operator/lots/LC/kpis",
        "/v1/operator/districts/da/kpis",
    ],
)
async def test_a_lot_token_cannot_read_other_lots(api: Client, world: World, path: str) -> None:
    """A token scoped to lot LB is refused every other lot, even with no district named."""
    assert (await api.get(path, headers=world.lot_b)).status == 403


async def test_device_lists_are_filtered_to_the_scope(api: Client, world: World) -> None:
    """Device lists hold only the token's devices; the admin sees them all."""
    path = "/v1/operator/devices"
    ids = {
        name: [d["device_id"] for d in (await get_json(api, path, headers))["items"]]
        for name, headers in (("a", world.district_a), ("lot_b", world.lot_b), ("admin", ADMIN))
    }
    assert ids == {"a": ["SA", "SA2"], "lot_b": ["SB"], "admin": ["SA", "SA2", "SB"]}


async def test_rejected_messages_are_filtered_to_the_scope(api: Client, world: World) -> None:
    """Rejections of other districts' and of unknown devices are the admin's only."""
    path = "/v1/operator/rejected-messages"
    seen = {
        name: {r["device_id"] for r in (await get_json(api, path, headers))["items"]}
        for name, headers in (("a", world.district_a), ("lot_b", world.lot_b), ("admin", ADMIN))
    }
    assert seen == {"a": {"SA"}, "lot_b": {"SB"}, "admin": {"SA", "SB", "GHOST"}}
    other = await get_json(api, "/v1/operator/rejected-messages?device_id=SB", world.district_a)
    assert other["items"] == []


async def test_the_overview_holds_the_tokens_districts_only(api: Client, world: World) -> None:
    """District A's operator sees district A; lot LB's sees district B over LB; the admin sees both."""
    path = "/v1/operator/overview"
    a = await get_json(api, path, world.district_a)
    assert [d["district_id"] for d in a["districts"]] == ["da"]
    assert (a["city"]["districts"], a["city"]["lots"]) == (1, 2)
    b = await get_json(api, path, world.lot_b)
    assert [(d["district_id"], d["lots"]) for d in b["districts"]] == [("db", 1)]
    admin = await get_json(api, path, ADMIN)
    assert {"da", "db"} <= {d["district_id"] for d in admin["districts"]}


async def test_the_overview_rolls_up_counts_statuses_and_devices(
    api: Client, world: World, db: asyncpg.Connection
) -> None:
    """Counters, closed and unknown lots and device health add up per district and for the city."""
    counters = (
        "UPDATE lots SET status = $2, free_count = $3, occupied_count = $4, reserved_count = $5,"
        " unknown_count = $6, closed_count = $7, counts_updated_at = now() WHERE lot_id = $1"
    )
    await db.execute(counters, "LA", "open", 1, 2, 1, 0, 0)  # almost full
    await db.execute(counters, "LC", "closed", 0, 0, 0, 0, 2)  # closed, not full
    await db.execute(counters, "LB", "open", 1, 0, 0, 3, 0)  # mostly unknown
    await db.execute(
        "UPDATE devices SET status = s FROM (VALUES ('SA', 'online'), ('SA2', 'unknown'), ('SB', 'offline'))"
        " AS v(d, s) WHERE device_id = d"
    )
    body = await get_json(api, "/v1/operator/overview", ADMIN)
    districts = {d["district_id"]: d for d in body["districts"]}
    fields = [
        "lots",
        "capacity",
        "free",
        "occupied",
        "reserved",
        "unknown",
        "closed",
        "occupancy_percent",
        "closed_lots",
        "unknown_lots",
        "devices_online",
        "devices_offline",
        "devices_unknown",
    ]
    assert [districts["da"][f] for f in fields] == [2, 6, 1, 2, 1, 0, 2, 33.3, 1, 0, 1, 0, 1]
    assert [districts["db"][f] for f in fields] == [1, 4, 1, 0, 0, 3, 0, 0.0, 0, 1, 0, 1, 0]
    assert districts["da"]["name"] == "金水区"
    assert districts["da"]["newest_update_at"] is not None
    city = body["city"]
    assert [city[f] for f in fields] == [3, 10, 2, 2, 1, 3, 2, 20.0, 1, 1, 1, 1, 1]
    assert "arrears_fen" not in city  # billing's arrears come with a later issue, not as a fake zero
