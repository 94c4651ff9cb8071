"""The operator pages in headless Chromium: sign in with a token, one's lots pushed live, device health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from device_gateway.gate_tracking import find_gate
from tests.e2e.browser import ADMIN, Cdp, shoot, until
from tests.e2e.test_dashboard_page import set_spots

pytestmark = pytest.mark.db

LOTS = (  # lot, district, name, capacity
    ("OP1", "jinshui", "花园路停车场", 12),
    ("OP2", "jinshui", "经三路路侧", 6),
    ("OP3", "erqi", "二七广场地下", 16),
)
HEALTH = (
    "[...document.querySelectorAll('#health tr[data-device-id]')]"
    ".map(r => [r.dataset.deviceId, r.dataset.issue])"
)
FETCHED = "performance.getEntriesByType('resource').filter(e => e.name.includes('/v1/')).length"


async def put(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> dict[str, Any]:
    """PUT an admin resource and return its answer."""
    resp = await http.put(url, json=body, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def provision(http: aiohttp.ClientSession, base_url: str, db: asyncpg.Connection) -> str:
    """Two districts' lots, sensors (one silent, one with a low battery), a rejected message; return
    an operator token of 金水区.
    """
    for district_id, name in (("jinshui", "金水区"), ("erqi", "二七区")):
        await put(http, f"{base_url}/v1/admin/districts/{district_id}", {"name": name})
    for lot_id, district_id, name, capacity in LOTS:
        body = {
            "name": name,
            "kind": "off_street",
            "district_id": district_id,
            "lat": 34.77,
            "lon": 113.68,
            "spots": [{"spot_id": f"{lot_id}-{n:02}"} for n in range(capacity)],
        }
        await put(http, f"{base_url}/v1/admin/lots/{lot_id}", body)
    for device_id, spot_id in (("SOP1", "OP1-00"), ("SOP2", "OP1-01"), ("SOP3", "OP3-00")):
        await put(
            http, f"{base_url}/v1/admin/devices/{device_id}", {"kind": "bay_sensor", "spot_id": spot_id}
        )
    now = datetime.now(UTC)
    await db.execute("UPDATE devices SET status = 'online', last_seen_at = $1, battery_mv = 3600", now)
    await db.execute(
        "UPDATE devices SET status = 'offline', last_seen_at = $1 WHERE device_id = 'SOP1'",
        now - timedelta(hours=2),
    )
    await db.execute("UPDATE devices SET battery_mv = 3100 WHERE device_id IN ('SOP2', 'SOP3')")
    for gate, lane in (("GOP1", "entry"), ("GOP2", "exit")):
        body = {"kind": "gate", "lot_id": "OP1", "lane": lane}
        await put(http, f"{base_url}/v1/admin/devices/{gate}", body)
    await find_gate(db, "GOP1", now)  # a plate read at its entry just now; the exit gate never spoke
    await db.execute(
        "INSERT INTO rejected_messages (topic, device_id, reason, detail)"
        " VALUES ('parking/v1/sensors/SOP2/state', 'SOP2', 'schema', 'occupied: not a boolean')"
    )
    for lot_id, free in (("OP1", 5), ("OP2", 1), ("OP3", 9)):
        await set_spots(db, lot_id, free)
    await history(db, now)
    resp = await http.post(
        f"{base_url}/v1/admin/tokens", json={"role": "operator", "district_ids": ["jinshui"]}, headers=ADMIN
    )
    assert resp.status == 201, await resp.text()
    token: str = (await resp.json())["token"]
    return token


async def history(db: asyncpg.Connection, now: datetime) -> None:
    """Occupancy samples over the last day, two stays and an invoice in arrears at OP1."""
    samples = [
        (now - timedelta(hours=h), lot, capacity, occupied)
        for h in range(30, 0, -3)
        for lot, capacity, occupied in (("OP1", 12, (h * 5) % 12), ("OP2", 6, (h * 7) % 6))
    ]
    await db.executemany(
        "INSERT INTO lot_occupancy (ts, lot_id, capacity, free, occupied, reserved, unknown, closed)"
        " VALUES ($1, $2, $3::int, $3::int - $4::int, $4, 0, 0, 0)",
        samples,
    )
    await db.executemany(
        "INSERT INTO sessions (session_id, lot_id, kind, state, plate, started_at, ended_at, closed_by,"
        " amount_fen) VALUES (gen_random_uuid(), 'OP1', 'gate', $1, $2, $3, $4, $5, $6)",
        [
            ("priced", "豫A12345", now - timedelta(hours=3), now - timedelta(hours=1), "exit", 800),
            ("open", "豫AD67890", now - timedelta(minutes=40), None, None, None),
        ],
    )
    await db.execute(
        "INSERT INTO invoices (invoice_id, session_id, lot_id, plate, entry_at, exit_at, amount_fen, lines,"
        " tariff_id, tariff_version, issued_at, due_at)"
        " VALUES ('INV-OP1', 'S-OP1', 'OP1', '豫A54321', $1, $1, 1200, '[]', 'zz', 1, $1, $2)",
        now - timedelta(days=9),
        now - timedelta(days=2),
    )
    await db.execute(
        "INSERT INTO invoice_balances (invoice_id, plate, lot_id, due_at, invoiced_fen)"
        " VALUES ('INV-OP1', '豫A54321', 'OP1', $1, 1200)",
        now - timedelta(days=2),
    )


def free_of(page: Cdp, lot_id: str) -> Callable[[], Awaitable[Any]]:
    """Read a lot's free count in the page's table."""
    return lambda: page.evaluate(
        f"document.querySelector('#lots tr[data-lot-id=\"{lot_id}\"] .free')?.textContent"
    )


@pytest.mark.browser
async def test_an_operator_signs_in_sees_its_lots_and_a_live_update_arrives(
    page: Cdp, base_url: str, http: aiohttp.ClientSession, db: asyncpg.Connection
) -> None:
    """Signed in with a district token: its two lots (not the other district's), the silent and the
    low-battery sensor of its lots, its gates (one heard from: online; one never: silent), the
    rejected message; then a change written to the database arrives on the open page through the
    event stream, with no request from the page.
    """
    token = await provision(http, base_url, db)
    await page.send(
        "Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False
    )
    await page.send("Page.navigate", url=f"{base_url}/operator")
    await until(lambda: page.evaluate("document.readyState"), "complete")
    await shoot(page, "operator-signin.png")
    await page.evaluate("document.getElementById('token').value = 'not-a-token'")
    await page.evaluate("document.querySelector('#signin button[type=submit]').click()")
    await until(lambda: page.evaluate("document.getElementById('signin-error').hidden"), False)
    await page.evaluate(f"document.getElementById('token').value = {token!r}")
    await page.evaluate("document.querySelector('#signin button[type=submit]').click()")
    await until(free_of(page, "OP1"), "5")
    lots = await page.evaluate(
        "[...document.querySelectorAll('#lots tr[data-lot-id]')].map(r => r.dataset.lotId)"
    )
    assert lots == ["OP1", "OP2"]
    health = await page.evaluate(HEALTH)
    assert sorted(health) == [["GOP2", "silent"], ["SOP1", "silent"], ["SOP2", "low_battery"]]
    gates = await page.evaluate(
        "[...document.querySelectorAll('#health-devices [data-kind=gate] [data-status] b')]"
        ".map(b => b.textContent)"
    )
    assert gates == ["1", "0", "1"]  # gates online, offline, never heard
    arrears = await page.evaluate("document.querySelector('#arrears tbody').textContent")
    assert "豫A54321" in arrears
    sessions = await page.evaluate("document.querySelectorAll('#session-list tr[data-session-id]').length")
    assert sessions == 2
    rejected = await page.evaluate("document.querySelector('#rejected tbody').textContent")
    assert "SOP2" in rejected
    assert "schema" in rejected
    await until(lambda: page.evaluate("document.getElementById('conn').dataset.state"), "live")

    requests_before = await page.evaluate(FETCHED)
    await set_spots(db, "OP1", 11)  # six cars leave while the page is open
    await until(free_of(page, "OP1"), "11")
    assert await page.evaluate(FETCHED) == requests_before  # pushed over the open stream, not polled
    await set_spots(db, "OP3", 2)  # another district's lot: never shown
    await set_spots(db, "OP2", 0)
    await until(free_of(page, "OP2"), "0")
    assert await page.evaluate("document.querySelector('#lots tr[data-lot-id=\"OP3\"]')") is None
    await shoot(page, "operator.png")
    thrown = [e for e in page.events if e.get("method") == "Runtime.exceptionThrown"]
    assert thrown == [], thrown


async def test_the_live_stream_needs_an_operator_token(base_url: str, http: aiohttp.ClientSession) -> None:
    """No token: 401 problem; the page and its script are served."""
    resp = await http.get(f"{base_url}/v1/operator/live")
    assert (resp.status, resp.content_type) == (401, "application/problem+json")
    redirect = await http.get(f"{base_url}/operator", allow_redirects=False)
    assert (redirect.status, redirect.headers["Location"]) == (302, "/dashboard/operator.html")
    page = await http.get(f"{base_url}/operator")
    assert page.status == 200
    assert "停车运营" in await page.text()
