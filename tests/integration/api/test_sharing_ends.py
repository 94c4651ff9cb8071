"""The end of a sharing window for real users: the driver is reminded once, reads it with their token,
and the stay past the end is invoiced with its surcharge exactly once (bay sensors through the
gateway's SQL, plates attached over HTTP, the API's sweep on a simulated clock, real PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from billing.examples import example_tariff_documents
from device_gateway.decode import Limits, SensorReading, decode
from device_gateway.gate_pricing import StayPricer, price_closed_sessions
from device_gateway.messages import encode_state
from device_gateway.store import write_batch
from guidance_api.app import create_app
from guidance_api.context import DB_POOL
from guidance_api.reservation_sweep import sweep
from guidance_api.sharing_ends import charge_overstays
from guidance_api.sharing_terms import shared_lots
from parking_core.adapters.settings import Settings
from simulators.city import generate_city
from simulators.provision import provision_city
from tests.integration.api.conftest import ADMIN

pytestmark = [pytest.mark.db]
Client = TestClient[Any, Any]
SHANGHAI = ZoneInfo("Asia/Shanghai")
CITY = generate_city(1, 1, 4, prefix="se")
(LOT,) = CITY.lots
DEVICES = {s.spot_id: s.device_id for s in LOT.spots}
SPOTS = [s.spot_id for s in LOT.spots]
MONDAY = datetime(2025, 3, 3, tzinfo=SHANGHAI)  # an ordinary week: no holiday
TUESDAY_8 = MONDAY + timedelta(hours=32)  # the end of Monday night's window
LATE, IN_TIME, MEMBER = "豫B20001", "豫B20002", "豫A88888"
P = "parking/v1"


@dataclass
class Sim:
    """The simulated clock and the sensors' sequence numbers."""

    now: datetime = MONDAY
    seq: dict[str, int] = field(default_factory=dict)


async def sense(conn: asyncpg.Connection, sim: Sim, spot_id: str, *, occupied: bool) -> None:
    """A bay sensor reports, through the gateway's own decoding and batch SQL."""
    device = DEVICES[spot_id]
    sim.seq[device] = sim.seq.get(device, 0) + 1
    payload = encode_state(sim.seq[device], sim.now, occupied)
    got = decode(f"{P}/sensors/{device}/state", payload, P, sim.now, Limits())
    assert isinstance(got, SensorReading)
    await write_batch(conn, [got], [], [], sim.now)


async def token(api: Client, **body: Any) -> dict[str, str]:
    resp = await api.post("/v1/admin/tokens", json=body, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


@pytest.fixture
async def world(
    app_settings: Settings, aiohttp_client: Callable[[web.Application], Awaitable[Client]]
) -> AsyncIterator[tuple[Client, asyncpg.Connection, Sim]]:
    """The lot shared on weekday nights (19:00-08:00, 3 spaces), ¥5 per started hour past the end."""
    assert app_settings.database_url is not None
    sim = Sim()
    await provision_city(app_settings.database_url, CITY, heartbeat_interval_s=86_400)
    api = await aiohttp_client(create_app(app_settings, sweeps=False, clock=lambda: sim.now))
    doc = example_tariff_documents()["zz-zone1-underground"]
    assert (await api.put("/v1/admin/tariffs/zz-zone1-underground", json=doc, headers=ADMIN)).status in {
        200,
        201,
    }
    conn = await asyncpg.connect(app_settings.database_url)
    await conn.execute("UPDATE lots SET tariff_id = 'zz-zone1-underground' WHERE lot_id = $1", LOT.lot_id)
    rules = [{"rule_id": "nights", "day_types": ["weekday"], "start": "19:00", "end": "08:00", "spaces": 3}]
    body = {
        "owner_name": "区政府",
        "owner_share_percent": 50,
        "rules": rules,
        "members": [MEMBER],
        "reminder_before_min": 30,
        "overstay_unit_min": 60,
        "overstay_unit_fee_fen": 500,
    }
    resp = await api.put(f"/v1/operator/lots/{LOT.lot_id}/sharing", json=body, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    for spot in SPOTS:
        await sense(conn, sim, spot, occupied=False)
    yield api, conn, sim
    await conn.close()


async def park(api: Client, conn: asyncpg.Connection, sim: Sim, spot: str, plate: str) -> None:
    """The car arrives (the bay's sensor) and its driver names the bay in the app."""
    await sense(conn, sim, spot, occupied=True)
    driver = await token(api, role="driver", plates=[plate])
    resp = await api.post(f"/v1/plates/{plate}/spot", json={"spot_id": spot}, headers=driver)
    assert resp.status == 200, await resp.text()


async def test_a_driver_is_reminded_once_and_the_overstay_is_invoiced_once(
    world: tuple[Client, asyncpg.Connection, Sim],
) -> None:
    """Monday 20:00 two cars of the public and a member's park. At 07:30 the two public drivers are
    reminded (once, however often the sweep runs); one leaves at 07:50, the other at 09:10: its stay
    is invoiced as usual and its surcharge (two started hours, ¥10.00) on an invoice of its own, once,
    even when two sweepers race. The owner sees the reminder and the charge; the revenue counts it."""
    api, conn, sim = world
    sim.now = MONDAY + timedelta(hours=20)
    for spot, plate in zip(SPOTS[:3], (LATE, IN_TIME, MEMBER), strict=True):
        await park(api, conn, sim, spot, plate)
    late_driver = await token(api, role="driver", plates=[LATE])
    await reminders(api, sim, late_driver)
    invoice_id = await overstays(api, conn, sim, late_driver)
    await owner_view(api, invoice_id)
    with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
        await conn.execute("UPDATE overstay_charges SET amount_fen = 1")


async def reminders(api: Client, sim: Sim, late_driver: dict[str, str]) -> None:
    """07:29 nothing; 07:30 the two public drivers; later sweeps nothing more. Drivers read theirs."""
    pool = api.app[DB_POOL]
    member_driver = await token(api, role="driver", plates=[MEMBER])
    sim.now = TUESDAY_8 - timedelta(minutes=31)
    assert (await sweep(pool, sim.now)).reminders == 0
    sim.now = TUESDAY_8 - timedelta(minutes=30)
    assert (await sweep(pool, sim.now)).reminders == 2
    sim.now = TUESDAY_8 - timedelta(minutes=20)
    assert (await sweep(pool, sim.now)).reminders == 0  # once per stay and window
    got = await (await api.get("/v1/driver/notifications", headers=late_driver)).json()
    (note,) = got["items"]
    assert (note["kind"], note["plate"], note["lot_id"]) == ("sharing_window_ending", LATE, LOT.lot_id)
    assert datetime.fromisoformat(note["window_end"]) == TUESDAY_8
    assert note["message"] == "共享停车时段将于 08:00 结束，请按时驶离；超时每60分钟加收¥5.00"
    after = await api.get(f"/v1/driver/notifications?after={note['notification_id']}", headers=late_driver)
    assert (await after.json())["items"] == []
    assert (await (await api.get("/v1/driver/notifications", headers=member_driver)).json())["items"] == []
    operator = await token(api, role="operator", lot_ids=[LOT.lot_id])
    assert (await api.get("/v1/driver/notifications", headers=operator)).status == 403
    bad = await api.get("/v1/driver/notifications?limit=0", headers=late_driver)
    assert (bad.status, (await bad.json())["errors"][0]["field"]) == (400, "limit")


async def overstays(api: Client, conn: asyncpg.Connection, sim: Sim, late_driver: dict[str, str]) -> str:
    """One leaves in time, one 70 minutes late, the member late too: one surcharge, invoiced once."""
    pool = api.app[DB_POOL]
    sim.now = TUESDAY_8 - timedelta(minutes=10)
    await sense(conn, sim, SPOTS[1], occupied=False)  # in time
    sim.now = TUESDAY_8 + timedelta(minutes=70)
    await sense(conn, sim, SPOTS[0], occupied=False)  # 70 minutes late
    await sense(conn, sim, SPOTS[2], occupied=False)  # the member: no surcharge
    await price_closed_sessions(conn, StayPricer())  # the gateway's sweep prices and bills the stays
    shared = await shared_lots(conn, sim.now)
    async with pool.acquire() as one, pool.acquire() as two:  # two API processes sweep at once
        judged = await asyncio.gather(
            charge_overstays(one, shared, sim.now), charge_overstays(two, shared, sim.now)
        )
    assert sum(judged) >= 1
    assert (await sweep(pool, sim.now + timedelta(minutes=5))).overstays == 0
    charges = await conn.fetch("SELECT plate, units, amount_fen, invoice_id FROM overstay_charges")
    assert [(c["plate"], c["units"], c["amount_fen"]) for c in charges] == [(LATE, 2, 1000)]

    invoices = await (await api.get(f"/v1/plates/{LATE}/invoices?status=all", headers=late_driver)).json()
    kinds = {tuple(line["kind"] for line in i["lines"]): i for i in invoices["items"]}
    surcharge = kinds[("overstay_surcharge",)]
    # the invoice routes read the real clock: a stay of March 2025 is long past due, in arrears
    assert (surcharge["amount_fen"], surcharge["due_fen"], surcharge["status"]) == (1000, 1000, "in_arrears")
    assert surcharge["invoice_id"] == charges[0]["invoice_id"]
    (stay,) = [i for k, i in kinds.items() if k != ("overstay_surcharge",)]
    assert stay["amount_fen"] > 0  # the stay itself, priced by the tariff as usual
    assert len(invoices["items"]) == 2
    assert invoices["arrears_fen"] == stay["due_fen"] + 1000  # the surcharge counts towards arrears
    in_time = await token(api, role="driver", plates=[IN_TIME])
    theirs = await (await api.get(f"/v1/plates/{IN_TIME}/invoices?status=all", headers=in_time)).json()
    assert all(line["kind"] != "overstay_surcharge" for i in theirs["items"] for line in i["lines"])
    return str(surcharge["invoice_id"])


async def owner_view(api: Client, invoice_id: str) -> None:
    """The owner sees the reminder and the charge; the revenue counts the surcharge."""
    operator = await token(api, role="operator", lot_ids=[LOT.lot_id])

    period = "from=2025-03-03T00:00:00%2B08:00&to=2025-03-04T00:00:00%2B08:00"
    seen = await api.get(f"/v1/operator/lots/{LOT.lot_id}/sharing/overstays?{period}", headers=operator)
    (item,) = (await seen.json())["items"]
    assert (item["plate"], item["surcharge_fen"], item["charged_fen"]) == (LATE, 1000, 1000)
    assert item["invoice_id"] == invoice_id
    assert datetime.fromisoformat(item["reminded_at"]) == TUESDAY_8 - timedelta(minutes=30)
    revenue_period = "from=2025-03-03T00:00:00%2B08:00&to=2025-03-05T00:00:00%2B08:00"
    revenue = await api.get(
        f"/v1/operator/lots/{LOT.lot_id}/sharing/revenue?{revenue_period}", headers=operator
    )
    assert (await revenue.json())["overstay_fees_fen"] == 1000
