"""Spreading guidance over HTTP on a real PostgreSQL: drivers sent to a lot lower its chance for the next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
DESTINATION = {"lat": 34.7600, "lon": 113.6600}


async def lot(
    api: Client, db: asyncpg.Connection, lot_id: str, *, north_m: float, capacity: int, free: int
) -> None:
    """A lot *north_m* metres north of the destination with *free* of *capacity* free now."""
    await api.put("/v1/admin/districts/guanc", json={"name": "管城回族区"}, headers=ADMIN)
    body = {
        "name": lot_id,
        "kind": "off_street",
        "district_id": "guanc",
        "lat": DESTINATION["lat"] + north_m / 111_195,
        "lon": DESTINATION["lon"],
        "spots": [{"spot_id": f"{lot_id}-{n:03}"} for n in range(capacity)],
    }
    resp = await api.put(f"/v1/admin/lots/{lot_id}", json=body, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()
    await db.execute(
        "UPDATE lots SET free_count = $2, occupied_count = capacity - $2, unknown_count = 0,"
        " counts_updated_at = now() WHERE lot_id = $1",
        lot_id,
        free,
    )


async def test_drivers_are_spread_once_the_near_lot_is_spoken_for(
    api: Client, db: asyncpg.Connection
) -> None:
    """Near lot (100 m, 2 free) vs far lot (600 m, 20 free), no history, no prices.

    Near: P(space) = Φ((2 - pending - 0.5) / 1): 0.933, 0.691, 0.309 for 0, 1, 2 drivers already sent;
    cost 100 + (1 - P) × 1500 = 200, 563, 1137 m against the far lot's ~600 m: near, near, far.
    """
    await lot(api, db, "NEAR", north_m=100, capacity=10, free=2)
    await lot(api, db, "FAR", north_m=600, capacity=40, free=20)
    arrive = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    sent = []
    for _ in range(3):
        resp = await api.post("/v1/guidance", json={**DESTINATION, "arrive_at": arrive})
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        sent.append(body["sent"]["lot_id"])
    assert sent == ["NEAR", "NEAR", "FAR"]
    near = next(i for i in body["items"] if i["lot_id"] == "NEAR")
    assert (near["pending"], near["space_probability"]) == (2, 0.309)
    assert near["forecast"]["basis"] == "now"
    rows = await db.fetchval("SELECT count(*) FROM guidance_sends")
    assert rows == 3


async def test_nearest_first_would_send_everyone_to_the_near_lot(api: Client, db: asyncpg.Connection) -> None:
    """For contrast: GET /v1/vacancies is nearest first and knows nothing of drivers on their way."""
    await lot(api, db, "NEAR", north_m=100, capacity=10, free=2)
    await lot(api, db, "FAR", north_m=600, capacity=40, free=20)
    for _ in range(3):
        body = await (await api.get("/v1/vacancies", params={**DESTINATION, "radius_m": "2000"})).json()
        assert body["items"][0]["lot_id"] == "NEAR"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lat": 91, "lon": 113.66}, "lat"),
        ({"lat": 34.76}, "lon"),
        ({**DESTINATION, "limit": 0}, "limit"),
        ({**DESTINATION, "vehicle_class": "tank"}, "vehicle_class"),
        ({**DESTINATION, "arrive_at": "2026-11-23T08:00:00"}, "arrive_at"),
        ({**DESTINATION, "arrive_at": "2020-01-01T00:00:00+08:00"}, "arrive_at"),
        ({**DESTINATION, "colour": "red"}, "colour"),
    ],
)
async def test_bad_bodies_name_the_field(api: Client, body: dict[str, Any], field: str) -> None:
    """Out-of-range, missing, unknown or naive fields are refused with a problem naming them."""
    resp = await api.post("/v1/guidance", json=body)
    assert resp.status in {400, 422}, await resp.text()
    assert field in [e["field"] for e in (await resp.json())["errors"]]
