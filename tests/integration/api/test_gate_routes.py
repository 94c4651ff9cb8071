"""Gates and sessions over HTTP: manual release (scoped, audited), session look-up, payments, plates."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db
Client = TestClient[Any, Any]
Headers = dict[str, str]


async def row(db: asyncpg.Connection, sql: str, *args: object) -> asyncpg.Record:
    found = await db.fetchrow(sql, *args)
    assert found is not None
    return found


async def put(api: Client, path: str, body: dict[str, Any]) -> None:
    resp = await api.put(path, json=body, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()


async def token(api: Client, body: dict[str, Any]) -> Headers:
    resp = await api.post("/v1/admin/tokens", json=body, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


@pytest.fixture
async def world(api: Client) -> tuple[Headers, Headers, Headers]:
    """A gated lot G (entry and exit gates), an on-street lot S with one bay; three tokens."""
    await put(api, "/v1/admin/districts/gd", {"name": "金水区"})
    gated = {"name": "G", "kind": "off_street", "district_id": "gd", "lat": 34.7, "lon": 113.6}
    await put(api, "/v1/admin/lots/G", gated | {"capacity": 10, "counted_by": "gates"})
    street = {"name": "S", "kind": "on_street", "district_id": "gd", "lat": 34.7, "lon": 113.7}
    await put(api, "/v1/admin/lots/S", street | {"spots": [{"spot_id": "S-1"}]})
    await put(api, "/v1/admin/devices/G-in", {"kind": "gate", "lot_id": "G", "lane": "entry"})
    await put(api, "/v1/admin/devices/G-out", {"kind": "gate", "lot_id": "G", "lane": "exit"})
    own = await token(api, {"role": "operator", "lot_ids": ["G", "S"]})
    other = await token(api, {"role": "operator", "lot_ids": ["S"]})
    driver = await token(api, {"role": "driver", "plates": ["豫B77777"]})
    return own, other, driver


async def test_manual_release_is_scoped_audited_and_follows_the_policy(
    api: Client, db: asyncpg.Connection, world: tuple[Headers, Headers, Headers]
) -> None:
    """Entry release opens a pending session; exit release closes it; both audited; scope enforced."""
    own, other, _ = world
    body = {"reason": "入口识别故障", "plate": "豫a·12345"}
    assert (await api.post("/v1/operator/gates/G-in/open", json=body, headers=other)).status == 403
    assert (await api.post("/v1/operator/gates/nope/open", json=body, headers=own)).status == 404
    missing = await api.post("/v1/operator/gates/G-in/open", json={"plate": "豫A12345"}, headers=own)
    assert missing.status == 422
    assert (await missing.json())["errors"][0]["field"] == "reason"
    resp = await api.post("/v1/operator/gates/G-in/open", json=body, headers=own)
    assert resp.status == 202, await resp.text()
    out = await resp.json()
    assert (out["lane"], out["plate"]) == ("entry", "豫A12345")
    command = await row(db, "SELECT * FROM gate_commands WHERE command_id = $1", uuid.UUID(out["command_id"]))
    assert (command["action"], command["reason"], command["sends"]) == ("open", "manual", 0)
    session = await row(db, "SELECT state FROM sessions WHERE session_id = $1", uuid.UUID(out["session_id"]))
    assert session["state"] == "pending"
    assert await db.fetchval("SELECT free_count FROM lots WHERE lot_id = 'G'") == 9
    gone = await api.post(
        "/v1/operator/gates/G-out/open", json={"reason": "栏杆故障", "plate": "豫A12345"}, headers=own
    )
    assert gone.status == 202
    closed = await row(
        db, "SELECT state, closed_by FROM sessions WHERE session_id = $1", uuid.UUID(out["session_id"])
    )
    assert (closed["state"], closed["closed_by"]) == ("closed", "manual")
    events = await db.fetch(
        "SELECT detail->>'reason' AS reason FROM gate_events WHERE kind = 'manual_release'"
    )
    assert sorted(e["reason"] for e in events) == ["入口识别故障", "栏杆故障"]


async def test_session_look_up_is_paged_with_evidence_and_every_plate_look_up_audited(
    api: Client, db: asyncpg.Connection, world: tuple[Headers, Headers, Headers]
) -> None:
    """Filter by plate, page with `next`; the audit log names the token and the plate."""
    own, other, _ = world
    for plate in ("豫C00001", "豫C00001"):
        await api.post("/v1/operator/gates/G-in/open", json={"reason": "test", "plate": plate}, headers=own)
        await api.post("/v1/operator/gates/G-out/open", json={"reason": "test", "plate": plate}, headers=own)
    first = await api.get("/v1/operator/sessions?lot_id=G&plate=豫C00001&limit=1", headers=own)
    assert first.status == 200, await first.text()
    page = await first.json()
    assert len(page["items"]) == 1
    assert {e["kind"] for e in page["items"][0]["evidence"]} == {"manual_release"}
    second = await (
        await api.get(f"/v1/operator/sessions?plate=豫C00001&limit=1&before={page['next']}", headers=own)
    ).json()
    assert len(second["items"]) == 1
    assert second["items"][0]["session_id"] != page["items"][0]["session_id"]
    hidden = await (await api.get("/v1/operator/sessions?plate=豫C00001", headers=other)).json()
    assert hidden["items"] == []
    audit = await db.fetch("SELECT plate, token_id FROM plate_lookups WHERE plate = '豫C00001'")
    assert len(audit) == 3
    assert all(a["token_id"] not in {"", "admin"} for a in audit)
    assert (await api.get("/v1/operator/sessions?state=bogus", headers=own)).status == 400


async def test_pay_station_payment_is_idempotent_per_receipt(
    api: Client, db: asyncpg.Connection, world: tuple[Headers, Headers, Headers]
) -> None:
    """201 once per (source, reference), 200 for a repeat, 409 once the vehicle has left."""
    own, _, _ = world
    out = await (
        await api.post("/v1/operator/gates/G-in/open", json={"reason": "t", "plate": "豫D1"}, headers=own)
    ).json()
    path = f"/v1/operator/sessions/{out['session_id']}/payments"
    paid = {"amount_fen": 1200, "reference": "R-1"}
    first = await api.post(path, json=paid, headers=own)
    assert (first.status, (await first.json())["paid_fen"]) == (201, 1200)
    again = await api.post(path, json=paid, headers=own)
    assert (again.status, (await again.json())["paid_fen"]) == (200, 1200)
    assert (await api.post(path, json={"amount_fen": 0, "reference": "R-2"}, headers=own)).status == 422
    await api.post("/v1/operator/gates/G-out/open", json={"reason": "t", "plate": "豫D1"}, headers=own)
    late = await api.post(path, json={"amount_fen": 100, "reference": "R-3"}, headers=own)
    assert (late.status, (await late.json())["type"].rsplit("/", 1)[-1]) == (409, "not_inside")
    unknown = await api.post(f"/v1/operator/sessions/{uuid.uuid4()}/payments", json=paid, headers=own)
    assert unknown.status == 404


async def test_attendant_and_driver_attach_a_plate_to_a_bay_session(
    api: Client, db: asyncpg.Connection, world: tuple[Headers, Headers, Headers]
) -> None:
    """No open session is 409; the attendant's and the driver's plates land in the evidence."""
    own, _, driver = world
    body = {"plate": "豫B77777", "plate_color": "green"}
    none = await api.post("/v1/operator/spots/S-1/plate", json=body, headers=own)
    assert none.status == 409
    session_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO sessions (session_id, lot_id, kind, state, spot_id, started_at)"
        " VALUES ($1, 'S', 'bay', 'open', 'S-1', now())",
        session_id,
    )
    attached = await api.post("/v1/operator/spots/S-1/plate", json=body, headers=own)
    assert attached.status == 200, await attached.text()
    by_driver = await api.post("/v1/plates/豫B77777/spot", json={"spot_id": "S-1"}, headers=driver)
    assert by_driver.status == 200, await by_driver.text()
    assert (await api.post("/v1/plates/豫B00000/spot", json={"spot_id": "S-1"}, headers=driver)).status == 403
    found = await row(db, "SELECT plate, plate_color FROM sessions WHERE session_id = $1", session_id)
    assert (found["plate"], found["plate_color"]) == ("豫B77777", "green")
    kinds = await db.fetch(
        "SELECT detail FROM session_evidence WHERE session_id = $1 AND kind = 'plate_attached'", session_id
    )
    assert len(kinds) == 2
