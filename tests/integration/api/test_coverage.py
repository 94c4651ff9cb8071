"""Districts and coverage growth by month on a real PostgreSQL, against hand-counted values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to this module's database."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


async def put(api: Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """PUT an admin resource and return its answer."""
    resp = await api.put(path, json=body, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


@pytest.fixture
async def city(api: Client, db: asyncpg.Connection) -> None:
    """金水区 from January 2025 (100 public spaces), 中牟县 from mid-June 2025 (50), one undated district."""
    await put(
        api,
        "/v1/admin/districts/jinshui",
        {"name": "金水区", "outline_name": "金水区", "public_spaces": 100, "onboarded_on": "2025-01-01"},
    )
    await put(
        api,
        "/v1/admin/districts/zhongmu",
        {
            "name": "中牟县",
            "kind": "county",
            "outline_name": "中牟县",
            "public_spaces": 50,
            "onboarded_on": "2025-06-15",
        },
    )
    await put(api, "/v1/admin/districts/new", {"name": "新区"})
    for lot_id, district, spots in (("A1", "jinshui", 20), ("B1", "zhongmu", 10), ("C1", "new", 5)):
        body = {
            "name": lot_id,
            "kind": "on_street",
            "district_id": district,
            "lat": 34.75,
            "lon": 113.65,
            "spots": [{"spot_id": f"{lot_id}-{n:02}"} for n in range(spots)],
        }
        await put(api, f"/v1/admin/lots/{lot_id}", body)
    for device, spot in (("SA1", "A1-00"), ("SA2", "A1-01"), ("SB1", "B1-00")):
        await put(api, f"/v1/admin/devices/{device}", {"kind": "bay_sensor", "spot_id": spot})
    await db.execute("DELETE FROM device_presence_changes WHERE device_id = 'SA1'")
    await db.executemany(
        "INSERT INTO device_presence_changes (ts, device_id, event) VALUES ($1, 'SA1', $2)",
        [
            (datetime(2025, 3, 10, tzinfo=SHANGHAI), "comms_lost"),
            (datetime(2025, 5, 1, tzinfo=SHANGHAI), "comms_restored"),
        ],
    )


async def test_districts_list_their_kind_outline_and_lots(api: Client, city: None) -> None:
    """GET /v1/districts: public, with names, kinds, outlines, onboarding days and lot counts."""
    body = await (await api.get("/v1/districts")).json()
    by_id = {d["district_id"]: d for d in body["items"]}
    assert by_id["zhongmu"] == {
        "district_id": "zhongmu",
        "name": "中牟县",
        "kind": "county",
        "outline_name": "中牟县",
        "public_spaces": 50,
        "onboarded_on": "2025-06-15",
        "lots": 1,
        "capacity": 10,
    }
    assert (by_id["new"]["kind"], by_id["new"]["onboarded_on"]) == ("district", None)


async def test_coverage_grows_as_districts_and_counties_join(api: Client, city: None) -> None:
    """Dec 2024 nothing; Jan-May 2025 金水区 (20 of 100 spaces, a sensor offline in March and April);
    from June 中牟县 too (30 of 150); the undated district counts from its lots' creation (now).
    """
    resp = await api.get("/v1/coverage", params={"from": "2024-12", "to": "2025-07"})
    assert resp.status == 200, await resp.text()
    months = {m["month"]: m for m in (await resp.json())["months"]}
    assert list(months) == [
        "2024-12",
        "2025-01",
        "2025-02",
        "2025-03",
        "2025-04",
        "2025-05",
        "2025-06",
        "2025-07",
    ]
    assert (months["2024-12"]["lots"], months["2024-12"]["districts"]) == (0, [])
    assert [
        (months[m]["lots"], months[m]["spaces"], months[m]["sensors"], months[m]["sensors_online"])
        for m in ("2025-01", "2025-03", "2025-04", "2025-05", "2025-06")
    ] == [(1, 20, 2, 2), (1, 20, 2, 1), (1, 20, 2, 1), (1, 20, 2, 2), (2, 30, 3, 3)]
    assert (months["2025-05"]["covered_share"], months["2025-06"]["covered_share"]) == (0.2, 0.2)
    assert (months["2025-06"]["public_spaces"], months["2025-06"]["districts_onboarded"]) == (150, 2)
    june = {d["district_id"]: d for d in months["2025-06"]["districts"]}
    assert (june["zhongmu"]["name"], june["zhongmu"]["covered_share"]) == ("中牟县", 0.2)
    now = await (await api.get("/v1/coverage")).json()
    assert now["months"][-1]["lots"] == 3
    assert len(now["months"]) == 25


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2025-13"}, "from"),
        ({"to": "soon"}, "to"),
        ({"from": "2000-01", "to": "2025-01"}, "from"),
        ({"from": "2025-05", "to": "2025-01"}, "from"),
    ],
)
async def test_bad_months_are_400(api: Client, params: dict[str, str], field: str) -> None:
    """A month that is not YYYY-MM, more than ten years, or a reversed range names the parameter."""
    resp = await api.get("/v1/coverage", params=params)
    assert resp.status == 400
    assert [e["field"] for e in (await resp.json())["errors"]] == [field]
