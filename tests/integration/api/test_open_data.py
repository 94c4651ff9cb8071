"""Open-data feeds on a real database, validated against the official schemas vendored in tests/schemas."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
import yaml
from aiohttp.test_utils import TestClient

from billing.examples import example_tariff_documents
from guidance_api.open_data import stable_uuid
from tests.integration.api.conftest import ADMIN
from tests.official_schemas import POLYGON_FILE, cds_model, cds_response, errors, smart_data_model

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
TARIFF = "zz-zone1-on-street"
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


async def put(api: Client, path: str, body: dict[str, Any]) -> None:
    """PUT an admin resource and check it was accepted."""
    resp = await api.put(path, json=body, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()


@pytest.fixture
async def world(api: Client, database_url: str) -> None:
    """An on-street lot with a tariff and sensors, an off-street lot, spot changes and comms events."""
    await put(api, f"/v1/admin/tariffs/{TARIFF}", example_tariff_documents()[TARIFF])
    await put(api, "/v1/admin/districts/jinshui", {"name": "金水区"})
    street = {
        "name": "经三路路侧",
        "kind": "on_street",
        "district_id": "jinshui",
        "lat": 34.78,
        "lon": 113.67,
    }
    spots = [{"spot_id": f"OS-{n}"} for n in range(1, 4)]
    await put(api, "/v1/admin/lots/OS", {**street, "tariff_id": TARIFF, "spots": spots})
    garage = {
        "name": "金水广场地下",
        "kind": "off_street",
        "district_id": "jinshui",
        "lat": 34.775,
        "lon": 113.695,
    }
    await put(api, "/v1/admin/lots/GA", {**garage, "spots": [{"spot_id": f"GA-{n}"} for n in range(1, 5)]})
    for n in (1, 2):
        sensor = {"kind": "bay_sensor", "spot_id": f"OS-{n}", "heartbeat_interval_s": 300}
        await put(api, f"/v1/admin/devices/S{n}", sensor)
    conn = await asyncpg.connect(database_url)
    try:
        if await conn.fetchval("SELECT count(*) FROM spot_status_changes WHERE lot_id = 'OS'"):
            return  # the module's database already holds the history (the fixture runs per test)
        await conn.executemany(
            "INSERT INTO spot_status_changes (ts, spot_id, lot_id, status, previous_status, cause, device_id)"
            " VALUES ($1, $2, 'OS', $3, $4, $5, $6)",
            [
                (T0 + timedelta(minutes=5), "OS-1", "free", "unknown", "reading", "S1"),
                (T0 + timedelta(minutes=10), "OS-1", "occupied", "free", "reading", "S1"),
                (T0 + timedelta(minutes=40), "OS-1", "free", "occupied", "reading", "S1"),
                (T0 + timedelta(minutes=50), "OS-2", "unknown", "occupied", "comms_lost", "S2"),
            ],
        )
        await conn.execute(
            "INSERT INTO device_presence_changes (ts, device_id, event, detail)"
            " VALUES ($1, 'S2', 'comms_lost', 'silent')",
            T0 + timedelta(minutes=50),
        )
        await conn.execute(
            "UPDATE spots SET status = CASE spot_id WHEN 'OS-1' THEN 'free' WHEN 'OS-2' THEN 'unknown'"
            " ELSE 'occupied' END, since = $1 WHERE lot_id = 'OS'",
            T0 + timedelta(minutes=50),
        )
        await conn.execute(
            "UPDATE lots SET free_count = 1, occupied_count = 1, unknown_count = 1, counts_updated_at = $1"
            " WHERE lot_id = 'OS'",
            T0 + timedelta(minutes=50),
        )
        await conn.execute(
            "INSERT INTO lot_occupancy (ts, lot_id, capacity, free, occupied, reserved, unknown, closed)"
            " VALUES ($1, 'OS', 3, 1, 2, 0, 0, 0)",
            T0 - timedelta(hours=30),
        )
    finally:
        await conn.close()


async def get_json(api: Client, path: str, headers: dict[str, str] | None = None) -> Any:
    """GET a feed and return its JSON."""
    resp = await api.get(path, headers=headers or {})
    assert resp.status == 200, await resp.text()
    return await resp.json(content_type=None)


async def test_cds_curb_zones_spaces_and_policies_are_valid_cds(api: Client, world: None) -> None:
    """Zones, spaces and policies validate against CDS 1.1's official OpenAPI schemas."""
    zones = await get_json(api, "/v1/open-data/cds/curbs/zones")
    assert errors(cds_response("Curbs API", "/curbs/zones"), zones) == []
    by_name = {z["user_zone_id"]: z for z in zones["data"]["zones"]}
    street = by_name["OS"]
    assert (street["curb_zone_id"], street["num_spaces"], street["available_spaces"]) == (
        stable_uuid("lot", "OS"),
        3,
        1,
    )
    assert street["curb_policy_ids"]
    assert "available" not in by_name["GA"]  # never heard from: availability unknown, left out
    spaces = await get_json(api, "/v1/open-data/cds/curbs/spaces")
    assert errors(cds_response("Curbs API", "/curbs/spaces"), spaces) == []
    states = {s["name"]: s.get("available") for s in spaces["data"]["spaces"]}
    assert (states["OS-1"], states["OS-2"], states["OS-3"]) == (True, None, False)
    policies = await get_json(api, "/v1/open-data/cds/curbs/policies")
    assert errors(cds_response("Curbs API", "/curbs/policies"), policies) == []
    assert {p["curb_policy_id"] for p in policies["data"]["policies"]} >= set(street["curb_policy_ids"])


async def test_cds_events_are_valid_and_in_ground_order(api: Client, world: None) -> None:
    """One UTC hour: park_start, park_end and comms_lost, valid CDS events; the spot going free from
    unknown and occupied to unknown are not stays.
    """
    hour = T0.strftime("%Y-%m-%dT%H")
    body = await get_json(api, f"/v1/open-data/cds/events/events?event_time={hour}", ADMIN)
    assert errors(cds_response("Events API", "/events/events"), body) == []
    events = body["data"]["events"]
    assert [e["event_type"] for e in events] == ["park_start", "park_end", "comms_lost"]
    assert [e["event_time"] for e in events] == sorted(e["event_time"] for e in events)
    assert events[0]["data_source_device_id"] == stable_uuid("device", "S1")
    assert (await api.get("/v1/open-data/cds/events/events")).status == 401
    bad = await api.get("/v1/open-data/cds/events/events?event_time=yesterday", headers=ADMIN)
    assert bad.status == 400


async def test_cds_metrics_aggregates_are_valid_rows(api: Client, world: None) -> None:
    """Hourly occupancy per zone as CSV rows that validate as CDS Aggregates; the day before: 2 of 3."""
    local = ZoneInfo("Asia/Shanghai")
    day = (T0 - timedelta(days=1)).astimezone(local).date()
    start = int(datetime.combine(day, datetime.min.time(), local).timestamp() * 1000)
    resp = await api.get(
        f"/v1/open-data/cds/metrics/aggregates?start_time={start}&end_time={start + 86_400_000}",
        headers=ADMIN,
    )
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"].startswith("application/vnd.cds+csv;version=1.1")
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    check = cds_model("aggregate")
    for row in rows:
        typed = {**row, "hour": int(row["hour"]), "value": float(row["value"])}
        assert errors(check, typed) == [], row
    street = [r for r in rows if r["curb_place_id"] == stable_uuid("lot", "OS")]
    assert len(street) == 24
    assert {r["date"] for r in street} == {day.isoformat()}
    known = [float(r["value"]) for r in street if float(r["value"]) != -1]
    assert known  # the sample 30 h before T0 holds from then on
    assert set(known) == {round(100 * 2 / 3, 1)}


@pytest.mark.parametrize("entity_type", ["ParkingSpot", "OnStreetParking", "OffStreetParking"])
async def test_ngsi_ld_entities_are_valid_smart_data_models(
    api: Client, world: None, entity_type: str
) -> None:
    """Key-values entities validate against the official Smart Data Models schema; the normalized
    form carries the same values as NGSI-LD Properties, GeoProperties and Relationships.
    """
    flat = await get_json(api, f"/v1/open-data/ngsi-ld/entities?type={entity_type}&options=keyValues")
    assert flat
    check = smart_data_model(entity_type)
    for entity in flat:
        assert errors(check, {k: v for k, v in entity.items() if k != "@context"}) == [], entity
        assert entity["type"] == entity_type
    full = await get_json(api, f"/v1/open-data/ngsi-ld/entities?type={entity_type}")
    for plain, normal in zip(flat, full, strict=True):
        for name, value in plain.items():
            if name in {"id", "type", "@context"}:
                assert normal[name] == value
                continue
            attribute = normal[name]
            assert attribute["type"] in {"Property", "GeoProperty", "Relationship"}
            assert attribute.get("value", attribute.get("object")) == value


async def test_ngsi_spot_status_and_parameters(api: Client, world: None) -> None:
    """Statuses map to the ParkingSpot vocabulary; the spot links its site; bad parameters are 400."""
    spots = await get_json(api, "/v1/open-data/ngsi-ld/entities?type=ParkingSpot&options=keyValues")
    by_id = {s["id"]: s for s in spots}
    assert by_id["urn:ngsi-ld:ParkingSpot:OS-1"]["status"] == "free"
    assert by_id["urn:ngsi-ld:ParkingSpot:OS-1"]["refParkingSite"] == "urn:ngsi-ld:OnStreetParking:OS"
    assert by_id["urn:ngsi-ld:ParkingSpot:GA-1"]["category"] == ["offStreet"]
    for query in ("type=Car", "type=ParkingSpot&options=verbose", "type=ParkingSpot&limit=0"):
        assert (await api.get(f"/v1/open-data/ngsi-ld/entities?{query}")).status == 400, query


def test_the_cds_polygon_defect_is_still_there() -> None:
    """The shipped polygon schema still takes positions, not rings; drop the correction when fixed."""
    shipped = yaml.safe_load(POLYGON_FILE.read_text(encoding="utf-8"))
    assert shipped["properties"]["coordinates"]["$ref"] == "./coordinates.yaml"
    positions = yaml.safe_load((POLYGON_FILE.parent / "coordinates.yaml").read_text(encoding="utf-8"))
    assert positions["items"]["maxItems"] == 2  # a position, where RFC 7946 wants a ring of them


def test_the_official_schemas_refuse_what_they_should() -> None:
    """The vendored schemas are really applied: wrong values fail (no vacuous validation)."""
    spot = {
        "id": "urn:ngsi-ld:ParkingSpot:X",
        "type": "ParkingSpot",
        "location": {"type": "Point", "coordinates": [113.6, 34.7]},
        "status": "reserved",
        "category": ["onStreet"],
        "refParkingSite": "urn:ngsi-ld:OnStreetParking:Y",
    }
    assert any("status" in e for e in errors(smart_data_model("ParkingSpot"), spot))
    assert errors(smart_data_model("ParkingSpot"), {**spot, "status": "free"}) == []
    zones = {"version": "1.1.0", "time_zone": "Asia/Shanghai", "last_updated": 0, "currency": "CNY"}
    zone_check = cds_response("Curbs API", "/curbs/zones")
    assert errors(zone_check, {**zones, "data": {"zones": [{"name": "no id"}]}})
    aggregate = {"curb_place_type": "zone", "curb_place_id": "not-a-uuid", "metric_type": "occupancy_percent"}
    assert errors(cds_model("aggregate"), {**aggregate, "date": "2026-11-23", "hour": 8, "value": 1})
