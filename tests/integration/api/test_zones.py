"""Zones: provisioned idempotently, spots refer to their own lot's zones (422 otherwise), lots roll up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, make_mocked_request

from device_gateway.lot_counts import apply_lot_deltas, lot_deltas
from guidance_api.error_edge import translate
from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]


def lot(spots: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """Return a lot body in district `zd`."""
    return {"name": "万达广场", "kind": "off_street", "district_id": "zd", "lat": 34.7, "lon": 113.6} | {
        "spots": spots,
        **extra,
    }


async def put(api: Client, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    resp = await api.put(path, json=body, headers=ADMIN)
    return resp.status, await resp.json()


async def zoned_lot(api: Client, lot_id: str) -> None:
    """A lot of five spots: two on floor B1, two on B2, one in no zone (idempotent)."""
    assert (await put(api, "/v1/admin/districts/zd", {"name": "郑东新区"}))[0] in {200, 201}
    unzoned = [{"spot_id": f"{lot_id}-{i}"} for i in (0, 1, 2, 3, "X")]
    assert (await put(api, f"/v1/admin/lots/{lot_id}", lot(unzoned)))[0] in {200, 201}  # a zone needs its lot
    for zone, kind in (("B1", "underground"), ("B2", "underground")):
        status, body = await put(
            api, f"/v1/admin/zones/{lot_id}-{zone}", {"lot_id": lot_id, "name": zone, "kind": kind}
        )
        assert status in {200, 201}, body
    spots = [{"spot_id": f"{lot_id}-{i}", "zone_id": f"{lot_id}-B{1 + i // 2}"} for i in range(4)]
    status, body = await put(api, f"/v1/admin/lots/{lot_id}", lot([*spots, {"spot_id": f"{lot_id}-X"}]))
    assert status == 200, body


async def set_statuses(database_url: str, lot_id: str, statuses: dict[str, str]) -> None:
    """Change spots' statuses and the lot's counters the way the gateway does."""
    conn = await asyncpg.connect(database_url)
    try:
        changes = []
        for spot, status in statuses.items():
            previous = await conn.fetchval(
                "UPDATE spots s SET status = $2 FROM spots old WHERE s.spot_id = $1 AND old.spot_id = $1"
                " RETURNING old.status",
                spot,
                status,
            )
            changes.append((lot_id, status, previous))
        await apply_lot_deltas(conn, lot_deltas(changes), datetime.now(UTC))
    finally:
        await conn.close()


async def test_a_zone_put_is_idempotent_and_never_changes_lot(api: Client) -> None:
    """201 then 200 for the same zone; renaming is a 200; another lot is a 409 naming lot_id."""
    await zoned_lot(api, "ZA")
    status, body = await put(
        api, "/v1/admin/zones/ZA-B1", {"lot_id": "ZA", "name": "B1", "kind": "underground"}
    )
    assert (status, body) == (200, {"zone_id": "ZA-B1", "lot_id": "ZA", "name": "B1", "kind": "underground"})
    status, body = await put(api, "/v1/admin/zones/ZA-B1", {"lot_id": "ZA", "name": "负一层"})
    assert (status, body["name"], body["kind"]) == (200, "负一层", None)
    assert (await put(api, "/v1/admin/lots/ZB", lot([{"spot_id": "ZB-1"}])))[0] == 201
    status, body = await put(api, "/v1/admin/zones/ZA-B1", {"lot_id": "ZB", "name": "B1"})
    assert (status, body["type"].rsplit("/", 1)[1], body["errors"][0]["field"]) == (409, "conflict", "lot_id")


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/admin/zones/Z-1", {"lot_id": "NOPE", "name": "x"}, 422, "lot_id"),
        ("/v1/admin/zones/Z-1", {"lot_id": "ZA", "name": "x", "kind": "garage"}, 422, "kind"),
        ("/v1/admin/zones/Z-1", {"lot_id": "ZA"}, 422, "name"),
        ("/v1/admin/zones/Z-1", {"lot_id": "豫", "name": "x"}, 422, "lot_id"),
        ("/v1/admin/zones/bad%20id", {"lot_id": "ZA", "name": "x"}, 400, "zone_id"),
    ],
)
async def test_bad_zone_input_names_the_field(
    api: Client, path: str, body: dict[str, Any], status: int, field: str
) -> None:
    """Unknown lots, unknown kinds, missing names and bad ids are refused naming the field."""
    await zoned_lot(api, "ZA")
    got, problem = await put(api, path, body)
    assert (got, problem["errors"][0]["field"]) == (status, field)


async def test_a_spot_in_an_unknown_zone_or_another_lots_zone_is_422_not_500(api: Client) -> None:
    """The old 500 (foreign key on zones): now a 422 naming spots[i].zone_id; nothing changes."""
    await zoned_lot(api, "ZA")
    assert (await put(api, "/v1/admin/lots/ZC", lot([{"spot_id": "ZC-1"}])))[0] == 201
    for zone in ("NOWHERE", "ZA-B1"):
        status, problem = await put(
            api, "/v1/admin/lots/ZC", lot([{"spot_id": "ZC-1"}, {"spot_id": "ZC-2", "zone_id": zone}])
        )
        assert (status, problem["type"].rsplit("/", 1)[1]) == (422, "unknown_reference")
        assert problem["errors"][0]["field"] == "spots[1].zone_id"
    spots = await (await api.get("/v1/lots/ZC/spots")).json()
    assert spots["items"] == [
        {"spot_id": "ZC-1", "zone_id": None, "status": "unknown", "since": spots["items"][0]["since"]}
    ]


async def test_the_schema_refuses_a_zone_of_another_lot_even_past_the_route(database_url: str) -> None:
    """The foreign key names both columns, and the error edge makes its violation a 422 on zone_id."""
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.ForeignKeyViolationError) as raised:
            await conn.execute("INSERT INTO spots (spot_id, lot_id, zone_id) VALUES ('ZC-9', 'ZC', 'ZA-B1')")
    finally:
        await conn.close()
    problem = translate(raised.value, make_mocked_request("PUT", "/v1/admin/lots/ZC"))
    assert (problem.status, problem.slug, problem.errors[0]["field"]) == (422, "unknown_reference", "zone_id")
    assert problem.extra["constraint"] == "spot_zone_in_lot"


async def test_a_lot_rolls_up_by_zone(api: Client, database_url: str) -> None:
    """Zone counts come from their spots, the rest is `unzoned`, and together they are the lot."""
    await zoned_lot(api, "ZD")
    await set_statuses(
        database_url,
        "ZD",
        {"ZD-0": "free", "ZD-1": "occupied", "ZD-2": "occupied", "ZD-3": "closed", "ZD-X": "free"},
    )
    rollup = await (await api.get("/v1/lots/ZD/zones")).json()
    assert [
        (z["zone_id"], z["kind"], z["capacity"], z["free"], z["occupied"], z["closed"], z["status"])
        for z in rollup["items"]
    ] == [
        ("ZD-B1", "underground", 2, 1, 1, 0, "open"),
        ("ZD-B2", "underground", 2, 0, 1, 1, "full"),
    ]
    assert (rollup["unzoned"]["capacity"], rollup["unzoned"]["free"], rollup["unzoned"]["status"]) == (
        1,
        1,
        "open",
    )
    whole = await (await api.get("/v1/lots/ZD")).json()
    for name in ("capacity", "free", "occupied", "reserved", "unknown", "closed"):
        assert sum(z[name] for z in rollup["items"]) + rollup["unzoned"][name] == whole[name], name
    status, _ = await put(
        api,
        "/v1/admin/lots/ZD",
        lot(
            [{"spot_id": f"ZD-{i}", "zone_id": f"ZD-B{1 + i // 2}"} for i in range(4)]
            + [{"spot_id": "ZD-X"}],
            status="closed",
        ),
    )
    assert status == 200
    closed = await (await api.get("/v1/lots/ZD/zones")).json()
    assert {z["status"] for z in closed["items"]} | {closed["unzoned"]["status"]} == {"closed"}


async def test_zone_routes_are_documented_and_an_unknown_lot_is_404(api: Client) -> None:
    """Both routes are in the OpenAPI document; the roll-up of a lot that does not exist is a 404."""
    doc = await (await api.get("/v1/openapi.json")).json()
    assert "put" in doc["paths"]["/v1/admin/zones/{zone_id}"]
    assert "get" in doc["paths"]["/v1/lots/{lot_id}/zones"]
    assert "ZoneBody" in doc["components"]["schemas"]
    resp = await api.get("/v1/lots/NOPE/zones")
    assert resp.status == 404
    assert (await resp.json())["type"].endswith("/unknown_lot")
