"""Tariffs over HTTP (publish, read, quote) and nearby vacancies, on a real PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from billing.examples import example_tariff_documents
from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db
Client = TestClient[Any, Any]
CENTRE = (34.7466, 113.6253)  # Zhengzhou, Erqi Square


async def publish_examples(api: Client) -> dict[str, dict[str, Any]]:
    """Publish the shipped Zhengzhou tariffs."""
    documents = example_tariff_documents()
    for tariff_id, doc in documents.items():
        resp = await api.put(f"/v1/admin/tariffs/{tariff_id}", json=doc, headers=ADMIN)
        assert resp.status in {200, 201}, await resp.text()
    return documents


async def put_lot(api: Client, lot_id: str, lat: float, lon: float, spots: int, **extra: Any) -> None:
    """Provision a lot with *spots* spots."""
    await api.put("/v1/admin/districts/erqi", json={"name": "二七区"}, headers=ADMIN)
    body = {
        "name": lot_id,
        "kind": "on_street",
        "district_id": "erqi",
        "lat": lat,
        "lon": lon,
        "spots": [{"spot_id": f"{lot_id}-{i}"} for i in range(spots)],
    } | extra
    resp = await api.put(f"/v1/admin/lots/{lot_id}", json=body, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()


async def set_spots(conn: asyncpg.Connection, lot_id: str, free: int, occupied: int, unknown: int) -> None:
    """Set spot statuses and the lot's counters directly, as the gateway would."""
    statuses = ["free"] * free + ["occupied"] * occupied + ["unknown"] * unknown
    for i, status in enumerate(statuses):
        await conn.execute("UPDATE spots SET status = $1 WHERE spot_id = $2", status, f"{lot_id}-{i}")
    await conn.execute(
        "UPDATE lots SET free_count = $2, occupied_count = $3, unknown_count = $4,"
        " counts_updated_at = now() WHERE lot_id = $1",
        lot_id,
        free,
        occupied,
        unknown,
    )


async def test_publishing_a_tariff_twice_is_idempotent_and_a_changed_version_conflicts(api: Client) -> None:
    """Same document: 200; other content under a published version: 409 naming `version`."""
    documents = await publish_examples(api)
    doc = documents["zz-zone1-on-street"]
    again = await api.put("/v1/admin/tariffs/zz-zone1-on-street", json=doc, headers=ADMIN)
    assert again.status == 200
    changed = json.loads(json.dumps(doc))
    changed["free_minutes"] = 30
    resp = await api.put("/v1/admin/tariffs/zz-zone1-on-street", json=changed, headers=ADMIN)
    assert resp.status == 409
    assert (await resp.json())["errors"][0]["field"] == "version"


async def test_a_version_stored_before_a_format_field_existed_is_the_same_tariff(
    api: Client, db: asyncpg.Connection
) -> None:
    """Publishing the same document after an upgrade that added defaulted fields is 200, not 409."""
    doc = (await publish_examples(api))["zz-zone2-on-street"]
    stored = json.loads(
        await db.fetchval("SELECT document FROM tariff_versions WHERE tariff_id = 'zz-zone2-on-street'")
    )
    older = {key: value for key, value in stored.items() if not key.endswith("_fee_fen")}
    assert older != stored  # the fields this format version added
    await db.execute(
        "UPDATE tariff_versions SET document = $1 WHERE tariff_id = 'zz-zone2-on-street'", json.dumps(older)
    )
    again = await api.put("/v1/admin/tariffs/zz-zone2-on-street", json=doc, headers=ADMIN)
    assert again.status == 200, await again.text()


async def test_a_bad_tariff_names_the_field(api: Client) -> None:
    """A negative price is a 422 problem naming the field path inside the document."""
    doc = json.loads(json.dumps(example_tariff_documents()["zz-zone1-on-street"]))
    doc["tariff_id"] = "broken"
    doc["bands"][0]["tiers"][0]["unit_price_fen"] = -1
    resp = await api.put("/v1/admin/tariffs/broken", json=doc, headers=ADMIN)
    assert resp.status == 422
    fields = [e["field"] for e in (await resp.json())["errors"]]
    assert "bands[0].tiers[0].unit_price_fen" in fields


async def test_a_tariff_body_nested_too_deeply_is_400_not_500(api: Client) -> None:
    """Python's JSON parser gives up on deep nesting (RecursionError): that is the body's fault."""
    deep = b"[" * 100_000 + b"]" * 100_000
    resp = await api.put("/v1/admin/tariffs/deep", data=deep, headers=ADMIN)
    assert resp.status == 400
    assert (await resp.json())["type"].endswith("/malformed_body")


async def test_quote_prices_the_issue_examples_in_the_lots_time_zone(api: Client) -> None:
    """The zone-1 on-street examples: 10:00→10:10 free, →11:00 ¥4, →12:30 ¥8, →14:10 ¥16, 20:00→23:00 ¥4."""
    await publish_examples(api)
    await put_lot(api, "Q1", *CENTRE, 2, tariff_id="zz-zone1-on-street")
    day = "2026-11-23T"  # a Monday
    cases = [
        ("10:00", "10:10", 0),
        ("10:00", "11:00", 400),
        ("10:00", "12:30", 800),
        ("10:00", "14:10", 1600),
        ("20:00", "23:00", 400),
    ]
    for entry, exit_at, amount in cases:
        resp = await api.get(
            "/v1/lots/Q1/quote",
            params={"entry": f"{day}{entry}:00+08:00", "exit": f"{day}{exit_at}:00+08:00"},
        )
        assert resp.status == 200, await resp.text()
        quote = await resp.json()
        assert quote["amount_fen"] == amount, (entry, exit_at, quote)
        assert quote["lines"]
    bad = await api.get(
        "/v1/lots/Q1/quote", params={"entry": f"{day}12:00:00+08:00", "exit": f"{day}11:00:00+08:00"}
    )
    assert bad.status == 400
    assert (await bad.json())["errors"][0]["field"] == "exit"
    naive = await api.get(
        "/v1/lots/Q1/quote", params={"entry": f"{day}12:00:00", "exit": f"{day}13:00:00+08:00"}
    )
    assert naive.status == 400
    endless = await api.get(  # would hold the event loop for minutes, day by day
        "/v1/lots/Q1/quote", params={"entry": f"{day}12:00:00+08:00", "exit": "9999-12-31T00:00:00+08:00"}
    )
    assert endless.status == 400
    assert (await endless.json())["errors"][0]["field"] == "exit"


async def test_lot_tariff_is_published_with_summary_and_exports(api: Client) -> None:
    """GET tariff gives the document and a zh/en summary; CDS and APDS exports are offered."""
    await publish_examples(api)
    await put_lot(api, "T1", *CENTRE, 1, tariff_id="zz-zone1-underground")
    body = await (await api.get("/v1/lots/T1/tariff")).json()
    assert body["tariff_id"] == "zz-zone1-underground"
    assert body["summary"]["zh"]
    assert body["summary"]["en"]
    cds = await (await api.get("/v1/lots/T1/tariff", params={"format": "cds"})).json()
    assert cds["policies"]
    assert (await api.get("/v1/lots/T1/tariff", params={"format": "xml"})).status == 400


async def test_vacancies_are_nearest_useful_first_and_honest(api: Client, db: asyncpg.Connection) -> None:
    """Known free lots by distance, then unknown ones; full and closed lots are not offered."""
    lat, lon = 34.80, 113.70  # away from the other tests' lots in this module's database
    await put_lot(api, "NEAR", lat + 0.001, lon, 4)  # ~111 m north
    await put_lot(api, "MID", lat + 0.004, lon, 4)  # ~445 m
    await put_lot(api, "FULL", lat + 0.002, lon, 2)
    await put_lot(api, "STALE", lat + 0.0005, lon, 4)  # nearest, but its sensors are silent
    await put_lot(api, "SHUT", lat + 0.0015, lon, 2, status="closed")
    await put_lot(api, "FAR", lat + 0.03, lon, 2)  # ~3.3 km
    await set_spots(db, "NEAR", free=1, occupied=3, unknown=0)
    await set_spots(db, "MID", free=4, occupied=0, unknown=0)
    await set_spots(db, "FULL", free=0, occupied=2, unknown=0)
    await set_spots(db, "STALE", free=1, occupied=0, unknown=3)
    await set_spots(db, "SHUT", free=2, occupied=0, unknown=0)
    await set_spots(db, "FAR", free=2, occupied=0, unknown=0)
    resp = await api.get("/v1/vacancies", params={"lat": lat, "lon": lon, "radius_m": 2000})
    assert resp.status == 200
    items = (await resp.json())["items"]
    assert [i["lot_id"] for i in items] == ["NEAR", "MID", "STALE"]
    assert [i["status"] for i in items] == ["open", "open", "unknown"]
    assert 100 < items[0]["distance_m"] < 125
    assert all(0 <= i["free"] <= i["capacity"] for i in items)
    wide = await api.get("/v1/vacancies", params={"lat": lat, "lon": lon, "radius_m": 5000})
    assert [i["lot_id"] for i in (await wide.json())["items"]] == ["NEAR", "MID", "FAR", "STALE"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lon": "113.6"}, "lat"),
        ({"lat": "91", "lon": "113"}, "lat"),
        ({"lat": "34", "lon": "x"}, "lon"),
        ({"lat": "34", "lon": "113", "radius_m": "0"}, "radius_m"),
        ({"lat": "34", "lon": "113", "radius_m": "100000"}, "radius_m"),
        ({"lat": "nan", "lon": "113"}, "lat"),
        ({"lat": "34", "lon": "113", "limit": "0"}, "limit"),
    ],
)
async def test_vacancies_refuse_bad_coordinates(api: Client, params: dict[str, str], field: str) -> None:
    """Missing or out-of-range coordinates or radius get a 400 problem naming the parameter."""
    resp = await api.get("/v1/vacancies", params=params)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["errors"][0]["field"] == field
