"""Operator occupancy history over HTTP on a real PostgreSQL: buckets, offline marking, validation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
CAPACITY = 10


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Return a connection to this module's database, as the gateway's sampler would use."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def provision(api: Client, lot_id: str, district_id: str = "east") -> None:
    """Create a district and a lot of CAPACITY spots."""
    resp = await api.put(
        f"/v1/admin/districts/{district_id}", json={"name": f"{district_id}区"}, headers=ADMIN
    )
    assert resp.status in {200, 201}, await resp.text()
    lot = {
        "name": f"Lot {lot_id}",
        "kind": "off_street",
        "district_id": district_id,
        "lat": 34.75,
        "lon": 113.65,
        "spots": [{"spot_id": f"{lot_id}-{n:02}"} for n in range(CAPACITY)],
    }
    resp = await api.put(f"/v1/admin/lots/{lot_id}", json=lot, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()


async def token(api: Client, **scope: list[str]) -> dict[str, str]:
    """Issue an operator token with *scope* and return its Authorization header."""
    resp = await api.post("/v1/admin/tokens", json={"role": "operator", **scope}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def sample(
    db: asyncpg.Connection, lot_id: str, ts: datetime, occupied: int, free: int, *, unknown: int = 0
) -> None:
    """Record one lot occupancy sample."""
    await db.execute(
        "INSERT INTO lot_occupancy (ts, lot_id, capacity, free, occupied, reserved, unknown, closed)"
        " VALUES ($1, $2, $3, $4, $5, 0, $6, 0)",
        ts,
        lot_id,
        CAPACITY,
        free,
        occupied,
        unknown,
    )


def anchor() -> datetime:
    """Return a whole hour three hours ago: recent enough for any retention policy."""
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


async def test_samples_are_averaged_per_bucket_and_mostly_unknown_is_offline(
    api: Client, db: asyncpg.Connection
) -> None:
    """Three samples make one 15-minute bucket; a bucket with most spots unknown says -1 (offline)."""
    await provision(api, "H1")
    t0 = anchor()
    for minute, occupied in ((1, 2), (6, 4), (11, 6)):
        await sample(db, "H1", t0 + timedelta(minutes=minute), occupied, CAPACITY - occupied)
    await sample(db, "H1", t0 + timedelta(minutes=16), 1, 1, unknown=8)
    params = {"from": t0.isoformat(), "to": (t0 + timedelta(hours=1)).isoformat(), "bucket": "15m"}
    resp = await api.get("/v1/operator/lots/H1/occupancy", params=params, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    mode = await db.fetchval("SELECT mode FROM schema_info")
    assert (body["lot_id"], body["bucket"], body["bucket_s"], body["mode"]) == ("H1", "15m", 900, mode)
    assert datetime.fromisoformat(body["from"]) == t0
    first, second = body["items"]
    assert first == {
        "bucket_start": t0.isoformat(),
        "occupied_avg": 4.0,
        "occupied_max": 6,
        "free_min": 4,
        "free_avg": 6.0,
        "unknown_avg": 0.0,
        "capacity": CAPACITY,
        "samples": 3,
        "occupancy_percent": 40.0,
        "source_offline": False,
    }
    assert datetime.fromisoformat(second["bucket_start"]) == t0 + timedelta(minutes=15)
    assert (second["occupancy_percent"], second["source_offline"], second["unknown_avg"]) == (-1, True, 8.0)


async def test_a_wider_bucket_weights_by_samples(api: Client, db: asyncpg.Connection) -> None:
    """An hour bucket averages every sample in it, not the 5-minute averages."""
    await provision(api, "H2")
    t0 = anchor()
    await sample(db, "H2", t0 + timedelta(minutes=1), 0, 10)
    await sample(db, "H2", t0 + timedelta(minutes=31), 6, 4)
    await sample(db, "H2", t0 + timedelta(minutes=32), 9, 1)
    params = {"from": t0.isoformat(), "to": (t0 + timedelta(hours=2)).isoformat(), "bucket": "1h"}
    body = await (await api.get("/v1/operator/lots/H2/occupancy", params=params, headers=ADMIN)).json()
    assert [(i["samples"], i["occupied_avg"], i["occupied_max"], i["free_min"]) for i in body["items"]] == [
        (3, 5.0, 9, 1)
    ]
    assert body["bucket"] == "1h"


async def test_the_default_window_is_the_last_day_in_15_minute_buckets(
    api: Client, db: asyncpg.Connection
) -> None:
    """Without parameters: the last 24 hours, 15-minute buckets; older samples are left out."""
    await provision(api, "H3")
    now = datetime.now(UTC)
    await sample(db, "H3", now - timedelta(hours=1), 3, 7)
    await sample(db, "H3", now - timedelta(hours=25), 5, 5)
    body = await (await api.get("/v1/operator/lots/H3/occupancy", headers=ADMIN)).json()
    assert body["bucket"] == "15m"
    span = datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"])
    assert span == timedelta(hours=24)
    assert [i["occupied_avg"] for i in body["items"]] == [3.0]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bucket": "7m"}, "bucket"),
        ({"bucket": "0m"}, "bucket"),
        ({"bucket": "fortnight"}, "bucket"),
        ({"bucket": "5m", "from": "2026-01-01T00:00:00+00:00", "to": "2026-03-01T00:00:00+00:00"}, "bucket"),
        ({"from": "2026-01-02T00:00:00+00:00", "to": "2026-01-01T00:00:00+00:00"}, "from"),
        ({"from": "2026-01-01T00:00:00+00:00", "to": "2026-01-01T00:00:00+00:00"}, "from"),
        ({"from": "2026-01-01T00:00:00"}, "from"),
        ({"to": "yesterday"}, "to"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    api: Client, params: dict[str, str], field: str
) -> None:
    """Bad buckets, reversed or naive times and too many buckets are refused with a problem."""
    await provision(api, "H4")
    resp = await api.get("/v1/operator/lots/H4/occupancy", params=params, headers=ADMIN)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
    problem = await resp.json()
    assert [e["field"] for e in problem["errors"]] == [field], problem


async def test_exactly_the_bucket_limit_is_allowed(api: Client) -> None:
    """2000 five-minute buckets are fine; the limit is on the count, not the span."""
    await provision(api, "H4")
    t0 = anchor()
    params = {"from": (t0 - timedelta(minutes=5 * 2000)).isoformat(), "to": t0.isoformat(), "bucket": "5m"}
    resp = await api.get("/v1/operator/lots/H4/occupancy", params=params, headers=ADMIN)
    assert resp.status == 200, await resp.text()


async def test_an_unknown_lot_is_404(api: Client) -> None:
    """A lot that does not exist is a 404 problem naming it."""
    resp = await api.get("/v1/operator/lots/NOPE/occupancy", headers=ADMIN)
    assert resp.status == 404
    assert (await resp.json())["lot_id"] == "NOPE"


async def test_scoped_tokens_read_their_own_lots_only(api: Client, db: asyncpg.Connection) -> None:
    """A district token reads its district's lots, a lot token its lot; anything else is 403."""
    await provision(api, "H5", "east")
    await provision(api, "H6", "west")
    await sample(db, "H6", datetime.now(UTC) - timedelta(minutes=30), 2, 8)
    east = await token(api, district_ids=["east"])
    h6 = await token(api, lot_ids=["H6"])
    assert (await api.get("/v1/operator/lots/H5/occupancy", headers=east)).status == 200
    assert (await api.get("/v1/operator/lots/H6/occupancy", headers=east)).status == 403
    assert (await api.get("/v1/operator/lots/H5/occupancy", headers=h6)).status == 403
    own = await api.get("/v1/operator/lots/H6/occupancy", headers=h6)
    assert own.status == 200
    assert [i["occupied_avg"] for i in (await own.json())["items"]] == [2.0]


async def test_the_route_is_in_the_openapi_document(api: Client) -> None:
    """The OpenAPI document lists the occupancy and overview routes with their parameters."""
    document = await (await api.get("/v1/openapi.json")).json()
    occupancy = document["paths"]["/v1/operator/lots/{lot_id}/occupancy"]["get"]
    assert {p["name"] for p in occupancy["parameters"]} == {"lot_id", "from", "to", "bucket"}
    assert occupancy["security"] == [{"bearer": []}]
    assert "get" in document["paths"]["/v1/operator/overview"]
