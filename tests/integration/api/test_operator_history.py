"""Operator occupancy history over HTTP on a real PostgreSQL: buckets, offline marking, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
CAPACITY = 10


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


async def test_buckets_weigh_states_by_time_and_mostly_unknown_is_offline(
    api: Client, db: asyncpg.Connection
) -> None:
    """Each state counts for as long as it lasted; the last one runs on; mostly unknown says -1.

    Samples at minute 1 (2 occupied), 6 (4), 11 (6), 16 (1 occupied, 1 free, 8 unknown). Bucket
    0-15 knows 14 minutes: (2×5 + 4×5 + 6×4) / 14 = 54/14 occupied, (8×5 + 6×5 + 4×4) / 14 = 86/14
    free. Bucket 15-30: 6 occupied for a minute, then 1 for 14: 20/15; unknown 8×14/15 > 5: offline.
    Buckets 30-45 and 45-60 have no samples but a known state: 1 occupied, 8 unknown.
    """
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
    first, second, third, fourth = body["items"]
    assert first == {
        "bucket_start": t0.isoformat(),
        "occupied_avg": round(54 / 14, 2),
        "occupied_max": 6,
        "free_min": 4,
        "free_avg": round(86 / 14, 2),
        "unknown_avg": 0.0,
        "capacity": CAPACITY,
        "samples": 3,
        "covered_s": 14 * 60,
        "occupancy_percent": round(100 * 54 / 14 / CAPACITY, 1),
        "source_offline": False,
    }
    assert datetime.fromisoformat(second["bucket_start"]) == t0 + timedelta(minutes=15)
    assert (second["occupied_avg"], second["unknown_avg"]) == (round(20 / 15, 2), round(8 * 14 / 15, 2))
    assert (second["occupancy_percent"], second["source_offline"], second["samples"]) == (-1, True, 1)
    assert (second["occupied_max"], second["free_min"], second["covered_s"]) == (6, 1, 900)
    for later in (third, fourth):
        assert (later["occupied_avg"], later["unknown_avg"], later["samples"]) == (1.0, 8.0, 0)
        assert (later["occupancy_percent"], later["covered_s"]) == (-1, 900)


async def test_a_busy_minute_does_not_outweigh_quiet_minutes(api: Client, db: asyncpg.Connection) -> None:
    """The issue's lot: 10 spaces full, then 5 toggling every half second: 95.5 %, not 75.5 %.

    Samples: 10 occupied at 0 s and again at 120 s (the periodic sample), then 108 toggles from
    240 s every 0.5 s: 5, 10, 5, ... ending on 10 at 293.5 s, which lasts to 300 s. 54 half-seconds
    at 5 instead of 10 lose 54 × 0.5 × 5 = 135 space-seconds of 3000: 2865 / 3000 = 95.5 %. Averaged
    by sample: (56 × 10 + 54 × 5) / 110 = 7.545: the old 75.5 %.
    """
    await provision(api, "H7")
    t0 = anchor()
    toggles = [(240 + 0.5 * k, 5 if k % 2 == 0 else 10) for k in range(108)]
    rows = [
        (t0 + timedelta(seconds=s), "H7", CAPACITY, CAPACITY - occ, occ)
        for s, occ in [(0, 10), (120, 10), *toggles]
    ]
    await db.executemany(
        "INSERT INTO lot_occupancy (ts, lot_id, capacity, free, occupied, reserved, unknown, closed)"
        " VALUES ($1, $2, $3, $4, $5, 0, 0, 0)",
        rows,
    )
    params = {"from": t0.isoformat(), "to": (t0 + timedelta(minutes=5)).isoformat(), "bucket": "5m"}
    body = await (await api.get("/v1/operator/lots/H7/occupancy", params=params, headers=ADMIN)).json()
    [bucket] = body["items"]
    assert (bucket["samples"], bucket["occupancy_percent"], bucket["occupied_avg"]) == (110, 95.5, 9.55)
    assert (bucket["occupied_max"], bucket["free_min"], bucket["covered_s"]) == (10, 0, 300)
    sample_average = sum(r[4] for r in rows) / len(rows)
    assert round(100 * sample_average / CAPACITY, 1) == 75.5  # what the old average said


async def test_the_state_before_the_window_is_carried_in(api: Client, db: asyncpg.Connection) -> None:
    """A window that starts between samples begins with the state the lot was in.

    4 occupied from 10 minutes before the window, 8 from minute 2 of it: the first 5 minutes average
    (4×2 + 8×3) / 5 = 6.4 and cover all 300 s; without the carried state they would say 8 over 180 s.
    """
    await provision(api, "H8")
    t0 = anchor()
    await sample(db, "H8", t0 - timedelta(minutes=10), 4, 6)
    await sample(db, "H8", t0 + timedelta(minutes=2), 8, 2)
    params = {"from": t0.isoformat(), "to": (t0 + timedelta(minutes=10)).isoformat(), "bucket": "5m"}
    body = await (await api.get("/v1/operator/lots/H8/occupancy", params=params, headers=ADMIN)).json()
    assert [(i["occupied_avg"], i["covered_s"], i["samples"], i["occupied_max"]) for i in body["items"]] == [
        (6.4, 300, 1, 8),
        (8.0, 300, 0, 8),
    ]


async def test_a_wider_bucket_weights_by_time(api: Client, db: asyncpg.Connection) -> None:
    """An hour bucket weighs each state by its minutes: 0 for 30, 6 for 1, 9 for 28 of 59 known."""
    await provision(api, "H2")
    t0 = anchor()
    await sample(db, "H2", t0 + timedelta(minutes=1), 0, 10)
    await sample(db, "H2", t0 + timedelta(minutes=31), 6, 4)
    await sample(db, "H2", t0 + timedelta(minutes=32), 9, 1)
    params = {"from": t0.isoformat(), "to": (t0 + timedelta(hours=2)).isoformat(), "bucket": "1h"}
    body = await (await api.get("/v1/operator/lots/H2/occupancy", params=params, headers=ADMIN)).json()
    assert [(i["samples"], i["occupied_avg"], i["occupied_max"], i["free_min"]) for i in body["items"]] == [
        (3, round((6 + 9 * 28) / 59, 2), 9, 1),
        (0, 9.0, 9, 1),
    ]
    assert body["bucket"] == "1h"


async def test_the_default_window_is_the_last_day_in_15_minute_buckets(
    api: Client, db: asyncpg.Connection
) -> None:
    """Without parameters: the last 24 hours, 15-minute buckets; an older sample is the opening state."""
    await provision(api, "H3")
    now = datetime.now(UTC)
    await sample(db, "H3", now - timedelta(hours=1), 3, 7)
    await sample(db, "H3", now - timedelta(hours=25), 5, 5)
    body = await (await api.get("/v1/operator/lots/H3/occupancy", headers=ADMIN)).json()
    assert body["bucket"] == "15m"
    span = datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"])
    assert span == timedelta(hours=24)
    items = body["items"]
    assert (items[0]["occupied_avg"], items[-1]["occupied_avg"]) == (5.0, 3.0)
    assert sum(i["samples"] for i in items) == 1
    assert 95 <= len(items) <= 97  # 24 h of 15-minute buckets, the first and last partly covered


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
    assert {i["occupied_avg"] for i in (await own.json())["items"]} == {2.0}


async def test_the_route_is_in_the_openapi_document(api: Client) -> None:
    """The OpenAPI document lists the occupancy and overview routes with their parameters."""
    document = await (await api.get("/v1/openapi.json")).json()
    occupancy = document["paths"]["/v1/operator/lots/{lot_id}/occupancy"]["get"]
    assert {p["name"] for p in occupancy["parameters"]} == {"lot_id", "from", "to", "bucket"}
    assert occupancy["security"] == [{"bearer": []}]
    assert "get" in document["paths"]["/v1/operator/overview"]
