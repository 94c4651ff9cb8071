"""Reservations, closures and sharing over HTTP on a real PostgreSQL; the sweep on a simulated clock."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from billing.examples import example_tariff_documents
from guidance_api.reservation_sweep import refresh_sharing, sweep
from tests.integration.api.conftest import ADMIN
from tests.integration.api.test_tariffs_and_vacancies import put_lot, set_spots

pytestmark = pytest.mark.db
Client = TestClient[Any, Any]
LAT, LON = 34.80, 113.70
PLATES = ["豫A10001", "豫A10002", "豫A10003", "豫A10004"]


async def token(api: Client, **body: Any) -> dict[str, str]:
    resp = await api.post("/v1/admin/tokens", json=body, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as opened:
        yield opened


async def setup_lot(api: Client, db: asyncpg.Connection, lot_id: str, spots: int = 3) -> None:
    doc = copy.deepcopy(example_tariff_documents()["zz-zone1-underground"])
    doc |= {"tariff_id": "res-fees", "reservation_fee_fen": 200, "no_show_fee_fen": 1000}
    resp = await api.put("/v1/admin/tariffs/res-fees", json=doc, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()
    await put_lot(api, lot_id, LAT, LON, spots, kind="off_street", tariff_id="res-fees")
    await set_spots(db, lot_id, spots, 0, 0)
    # the sensors' last reading: free (a released spot goes back to it)
    await db.execute("UPDATE spots SET occupied = false WHERE lot_id = $1", lot_id)


def window(minutes_from_now: int = 60, length: int = 30) -> dict[str, str]:
    start = datetime.now(UTC) + timedelta(minutes=minutes_from_now)
    return {"arrival_from": start.isoformat(), "arrival_to": (start + timedelta(minutes=length)).isoformat()}


async def lot(api: Client, lot_id: str) -> dict[str, Any]:
    resp = await api.get(f"/v1/lots/{lot_id}")
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def test_hold_read_list_cancel_and_what_vacancies_say(api: Client, db: asyncpg.Connection) -> None:
    """A hold takes a spot at once (lot counts, vacancies, the driver's vacancies name it); refusals
    name their field; the last space goes to one plate only; cancelling early is free."""
    await setup_lot(api, db, "res-a")
    driver = await token(api, role="driver", plates=PLATES)
    made = await api.post(
        "/v1/reservations", json={"lot_id": "res-a", "plate": "豫a·10001"} | window(), headers=driver
    )
    assert made.status == 201, await made.text()
    held = await made.json()
    assert (held["status"], held["plate"], held["spot_id"]) == ("held", "豫A10001", "res-a-0")
    assert (await lot(api, "res-a"))["free"] == 2
    assert (await lot(api, "res-a"))["reserved"] == 1
    near = await (await api.get(f"/v1/vacancies?lat={LAT}&lon={LON}", headers=driver)).json()
    item = next(i for i in near["items"] if i["lot_id"] == "res-a")
    assert (item["free"], item["held_spot_id"]) == (2, "res-a-0")
    assert near["reservations"][0]["reservation_id"] == held["reservation_id"]
    public = await (await api.get(f"/v1/vacancies?lat={LAT}&lon={LON}")).json()
    assert "reservations" not in public

    bad = await api.post(
        "/v1/reservations", json={"lot_id": "res-a", "plate": PLATES[1]} | window(0, -5), headers=driver
    )
    assert bad.status == 422
    assert (await bad.json())["errors"][0]["field"] == "arrival_to"
    again = await api.post(
        "/v1/reservations", json={"lot_id": "res-a", "plate": PLATES[0]} | window(), headers=driver
    )
    assert (again.status, (await again.json())["errors"][0]["field"]) == (409, "plate")
    other = await token(api, role="driver", plates=["豫B20001"])
    stolen = await api.post(
        "/v1/reservations", json={"lot_id": "res-a", "plate": PLATES[1]} | window(), headers=other
    )
    assert stolen.status == 403
    unknown = await api.post(
        "/v1/reservations", json={"lot_id": "nope", "plate": PLATES[1]} | window(), headers=driver
    )
    assert (unknown.status, (await unknown.json())["errors"][0]["field"]) == (422, "lot_id")
    floaty = await api.post(
        "/v1/reservations", json={"lot_id": 1.5, "plate": PLATES[1]} | window(), headers=driver
    )
    assert floaty.status == 422

    for plate in PLATES[1:3]:
        ok = await api.post(
            "/v1/reservations", json={"lot_id": "res-a", "plate": plate} | window(), headers=driver
        )
        assert ok.status == 201
    full = await api.post(
        "/v1/reservations", json={"lot_id": "res-a", "plate": PLATES[3]} | window(), headers=driver
    )
    assert (full.status, (await full.json())["type"].rsplit("/", 1)[-1]) == (409, "no_room")
    assert (await lot(api, "res-a"))["status"] == "full"

    listed = await (await api.get("/v1/reservations?status=held", headers=driver)).json()
    assert len(listed["items"]) == 3
    assert (await api.get(f"/v1/reservations/{held['reservation_id']}", headers=other)).status == 404
    gone = await api.delete(f"/v1/reservations/{held['reservation_id']}", headers=driver)
    assert gone.status == 200
    assert ((await gone.json())["status"], (await gone.json())["late_cancellation"]) == ("cancelled", False)
    assert (await api.delete(f"/v1/reservations/{held['reservation_id']}", headers=driver)).status == 409
    assert (await lot(api, "res-a"))["free"] == 1


async def test_no_shows_are_released_and_charged_by_the_sweep(
    api: Client, db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    """After window end + grace the sweep releases the hold and prices both fees (exact fen)."""
    await setup_lot(api, db, "res-b", spots=2)
    driver = await token(api, role="driver", plates=["豫C30001"])
    made = await (
        await api.post(
            "/v1/reservations", json={"lot_id": "res-b", "plate": "豫C30001"} | window(), headers=driver
        )
    ).json()
    deadline = datetime.fromisoformat(made["deadline"])
    await sweep(pool, deadline - timedelta(seconds=1))
    assert (await lot(api, "res-b"))["reserved"] == 1
    await sweep(pool, deadline + timedelta(seconds=1))
    after = await (await api.get(f"/v1/reservations/{made['reservation_id']}", headers=driver)).json()
    assert after["status"] == "no_show"
    assert after["fees"] == [
        {"kind": "reservation", "amount_fen": 200},
        {"kind": "no_show", "amount_fen": 1000},
    ]
    assert (await lot(api, "res-b"))["free"] == 2
    invoice = await pool.fetchrow(
        "SELECT invoice_id, amount_fen, lines FROM invoices WHERE session_id = $1", made["reservation_id"]
    )
    assert invoice is not None
    assert invoice["amount_fen"] == 1200
    assert [line["kind"] for line in json.loads(invoice["lines"])] == ["reservation_fee", "no_show_fee"]
    linked = await pool.fetch(
        "SELECT DISTINCT invoice_id FROM reservation_charges WHERE reservation_id = $1",
        made["reservation_id"],
    )
    assert [r["invoice_id"] for r in linked] == [invoice["invoice_id"]]
    owed = await pool.fetchval(
        "SELECT sum(amount_fen) FROM ledger_entries WHERE invoice_id = $1 AND kind = 'invoiced'",
        invoice["invoice_id"],
    )
    assert owed == 1200
    with pytest.raises(asyncpg.RestrictViolationError):
        await pool.execute(
            "UPDATE reservation_charges SET amount_fen = 1 WHERE reservation_id = $1", made["reservation_id"]
        )
    operator = await token(api, role="operator", lot_ids=["res-b"])
    seen = await (await api.get("/v1/operator/lots/res-b/reservations", headers=operator)).json()
    assert [i["reservation_id"] for i in seen["items"]] == [made["reservation_id"]]
    elsewhere = await token(api, role="operator", lot_ids=["res-a"])
    assert (await api.get("/v1/operator/lots/res-b/reservations", headers=elsewhere)).status == 403


async def test_closures_leave_availability_and_a_fully_closed_lot_is_closed_not_full(
    api: Client, db: asyncpg.Connection
) -> None:
    """Closing spots takes them out of free; all closed reads closed; a held spot refuses; reopen restores."""
    await setup_lot(api, db, "res-c", spots=2)
    operator = await token(api, role="operator", lot_ids=["res-c"])
    driver = await token(api, role="driver", plates=["豫D40001"])
    held = await (
        await api.post(
            "/v1/reservations", json={"lot_id": "res-c", "plate": "豫D40001"} | window(), headers=driver
        )
    ).json()
    refused = await api.post(
        "/v1/operator/lots/res-c/closures",
        json={"spot_ids": [held["spot_id"]], "reason": "roadworks"},
        headers=operator,
    )
    assert (refused.status, (await refused.json())["errors"][0]["field"]) == (409, "spot_ids[0]")
    no_reason = await api.post(
        "/v1/operator/lots/res-c/closures", json={"spot_ids": ["res-c-1"], "reason": ""}, headers=operator
    )
    assert no_reason.status == 422
    closed = await api.post(
        "/v1/operator/lots/res-c/closures",
        json={"spot_ids": ["res-c-1"], "reason": "路面维修"},
        headers=operator,
    )
    assert closed.status == 201
    closure = await closed.json()
    assert closure["closed_by"].startswith("tok_")
    await api.delete(f"/v1/reservations/{held['reservation_id']}", headers=driver)
    await api.post(
        "/v1/operator/lots/res-c/closures",
        json={"spot_ids": ["res-c-0"], "reason": "event"},
        headers=operator,
    )
    state = await lot(api, "res-c")
    assert (state["closed"], state["free"], state["status"]) == (2, 0, "closed")
    reopened = await api.post(f"/v1/operator/closures/{closure['closure_id']}/reopen", headers=operator)
    assert (await reopened.json())["state"] == "ended"
    assert (await lot(api, "res-c"))["free"] == 1
    audit = await (await api.get("/v1/operator/lots/res-c/closures", headers=operator)).json()
    assert {i["reason"] for i in audit["items"]} == {"路面维修", "event"}


async def test_a_shared_lot_is_public_only_in_its_windows(
    api: Client, db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    """Outside its windows a shared lot is closed to the public and not offered; inside, its quota."""
    await setup_lot(api, db, "res-d", spots=3)
    owner = await token(api, role="operator", lot_ids=["res-d"])
    body = {
        "owner_name": "市政府机关",
        "owner_share_percent": 60,
        "rules": [
            {"rule_id": "nights", "day_types": ["weekday"], "start": "19:00", "end": "08:00", "spaces": 2},
            {
                "rule_id": "weekends",
                "day_types": ["weekend", "holiday"],
                "start": "00:00",
                "end": "24:00",
                "spaces": 3,
            },
        ],
        "members": ["豫A88888"],
    }
    resp = await api.put("/v1/operator/lots/res-d/sharing", json=body, headers=owner)
    assert resp.status == 200, await resp.text()
    monday_noon = datetime(2025, 3, 3, 4, tzinfo=UTC)  # 12:00 in Shanghai
    monday_night = datetime(2025, 3, 3, 13, tzinfo=UTC)  # 21:00
    async with pool.acquire() as conn:
        await refresh_sharing(conn, monday_noon, "res-d")
    state = await lot(api, "res-d")
    assert (state["status"], state["free"], state["shared_spaces"]) == ("closed", 0, 0)
    near = await (await api.get(f"/v1/vacancies?lat={LAT}&lon={LON}&radius_m=5000")).json()
    assert "res-d" not in {i["lot_id"] for i in near["items"]}
    async with pool.acquire() as conn:
        await refresh_sharing(conn, monday_night, "res-d")
    state = await lot(api, "res-d")
    assert (state["status"], state["free"], state["capacity"]) == ("open", 2, 2)
    near = await (await api.get(f"/v1/vacancies?lat={LAT}&lon={LON}&radius_m=5000")).json()
    assert next(i for i in near["items"] if i["lot_id"] == "res-d")["free"] == 2
    overview = await (await api.get("/v1/operator/overview", headers=owner)).json()
    assert (overview["city"]["shared_lots"], overview["city"]["shared_spaces"]) == (1, 2)
    windows = await (
        await api.get(
            "/v1/lots/res-d/sharing/windows?from=2025-10-01T00:00:00%2B08:00&to=2025-10-02T00:00:00%2B08:00"
        )
    ).json()
    assert windows["items"] == [
        {"start": "2025-10-01T00:00:00+08:00", "end": "2025-10-02T00:00:00+08:00", "spaces": 3}
    ]
    bad = await api.put(
        "/v1/operator/lots/res-d/sharing", json=body | {"members": ["nonsense"]}, headers=owner
    )
    assert (bad.status, (await bad.json())["errors"][0]["field"]) == (422, "members")
    assert (await api.delete("/v1/operator/lots/res-d/sharing", headers=owner)).status == 200
    assert (await lot(api, "res-d"))["capacity"] == 3


async def test_an_api_change_reaches_the_outbox(
    api: Client, db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    """Closing a lot through the admin API records a lot change for the gateway's publisher."""
    await setup_lot(api, db, "res-e", spots=1)
    before = await pool.fetchval("SELECT coalesce(max(change_id), 0) FROM lot_changes")
    await put_lot(api, "res-e", LAT, LON, 1, kind="off_street", status="closed")
    lots = await pool.fetch("SELECT lot_id FROM lot_changes WHERE change_id > $1", before)
    assert [r["lot_id"] for r in lots] == ["res-e"]


async def test_an_attendant_finds_another_plate_in_a_held_bay(api: Client, db: asyncpg.Connection) -> None:
    """The attendant names the car in a held, occupied bay: not the holder, so the hold moves on."""
    await setup_lot(api, db, "res-f", spots=2)
    driver = await token(api, role="driver", plates=["豫F60001"])
    made = await api.post(
        "/v1/reservations", json={"lot_id": "res-f", "plate": "豫F60001"} | window(), headers=driver
    )
    held = await made.json()
    await db.execute("UPDATE spots SET occupied = true WHERE spot_id = $1", held["spot_id"])
    attendant = await token(api, role="operator", lot_ids=["res-f"])
    resp = await api.post(
        f"/v1/operator/spots/{held['spot_id']}/plate", json={"plate": "豫B 77777"}, headers=attendant
    )
    assert resp.status == 200, await resp.text()
    outcome = (await resp.json())["reservation"]
    assert (outcome["status"], outcome["spot_id"]) == ("held", "res-f-1")
    now = await (await api.get(f"/v1/reservations/{held['reservation_id']}", headers=driver)).json()
    assert (now["spot_id"], now["moved_from"]) == ("res-f-1", [held["spot_id"]])
    near = await (await api.get(f"/v1/vacancies?lat={LAT}&lon={LON}", headers=driver)).json()
    assert near["reservations"][0]["spot_id"] == "res-f-1"


async def test_owner_revenue_counts_the_publics_stays_in_the_windows(
    api: Client, db: asyncpg.Connection
) -> None:
    """Monday: a public stay at 20:00 counts, a member's at 21:00 and a public one at noon do not;
    60 % of it is the owner's, to the fen."""
    await setup_lot(api, db, "res-g", spots=3)
    owner = await token(api, role="operator", lot_ids=["res-g"])
    rules = [{"rule_id": "nights", "day_types": ["weekday"], "start": "19:00", "end": "08:00", "spaces": 2}]
    body = {"owner_name": "写字楼", "owner_share_percent": 60, "rules": rules, "members": ["豫A88888"]}
    assert (await api.put("/v1/operator/lots/res-g/sharing", json=body, headers=owner)).status == 200
    monday = datetime(2025, 3, 3, tzinfo=UTC) - timedelta(hours=8)  # 00:00 in Shanghai
    stays = [("豫B10001", 20, 1005), ("豫A88888", 21, 500), ("豫B10002", 12, 700)]
    for plate, hour, amount in stays:
        await db.execute(
            "INSERT INTO sessions (session_id, lot_id, kind, state, plate, started_at, ended_at, amount_fen,"
            " closed_by) VALUES (gen_random_uuid(), 'res-g', 'gate', 'priced', $1, $2, $3, $4, 'exit')",
            plate,
            monday + timedelta(hours=hour),
            monday + timedelta(hours=hour + 1),
            amount,
        )
    period = "from=2025-03-03T00:00:00%2B08:00&to=2025-03-04T00:00:00%2B08:00"
    resp = await api.get(f"/v1/operator/lots/res-g/sharing/revenue?{period}", headers=owner)
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert (got["stays"], got["stays_fen"], got["total_fen"]) == (1, 1005, 1005)
    assert (got["owner_share_fen"], got["operator_share_fen"], got["shared_hours"]) == (603, 402, 5.0)
    long = await api.get(
        "/v1/operator/lots/res-g/sharing/revenue?from=2025-01-01T00:00:00Z&to=2025-12-01T00:00:00Z",
        headers=owner,
    )
    assert (long.status, (await long.json())["errors"][0]["field"]) == (400, "to")


async def test_the_owner_sees_who_overstayed(api: Client, db: asyncpg.Connection) -> None:
    """Weekday nights end at 08:00: a public stay leaving at 09:10 owes two started hours; one leaving
    at 07:50 and a member's stay owe nothing."""
    await setup_lot(api, db, "res-h", spots=3)
    owner = await token(api, role="operator", lot_ids=["res-h"])
    rules = [{"rule_id": "nights", "day_types": ["weekday"], "start": "19:00", "end": "08:00", "spaces": 2}]
    body = {
        "owner_name": "机关",
        "owner_share_percent": 50,
        "rules": rules,
        "members": ["豫A88888"],
        "overstay_unit_min": 60,
        "overstay_unit_fee_fen": 500,
    }
    assert (await api.put("/v1/operator/lots/res-h/sharing", json=body, headers=owner)).status == 200
    monday = datetime(2025, 3, 3, tzinfo=UTC) - timedelta(hours=8)  # 00:00 in Shanghai
    stays = [("豫B20001", 70), ("豫B20002", -10), ("豫A88888", 120)]  # minutes after Tuesday 08:00
    for plate, after in stays:
        await db.execute(
            "INSERT INTO sessions (session_id, lot_id, kind, state, plate, started_at, ended_at, amount_fen,"
            " closed_by) VALUES (gen_random_uuid(), 'res-h', 'gate', 'priced', $1, $2, $3, 0, 'exit')",
            plate,
            monday + timedelta(hours=20),
            monday + timedelta(hours=32, minutes=after),
        )
    period = "from=2025-03-03T00:00:00%2B08:00&to=2025-03-04T00:00:00%2B08:00"
    got = await (await api.get(f"/v1/operator/lots/res-h/sharing/overstays?{period}", headers=owner)).json()
    assert [(i["plate"], i["overstay_min"], i["surcharge_fen"]) for i in got["items"]] == [
        ("豫B20001", 70, 1000)
    ]
    assert datetime.fromisoformat(got["items"][0]["window_end"]) == datetime(2025, 3, 4, tzinfo=UTC)
