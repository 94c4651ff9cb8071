"""A simulated week: reservations kept, cancelled, not shown up for or taken by another plate, and an
office lot shared at night whose public drivers are reminded before a window ends and surcharged once
when they leave after it, through the real API, the gateway's SQL and the sweep, on a simulated clock.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from billing import load_example_tariffs
from billing.examples import example_tariff_documents
from device_gateway.decode import Limits, SensorReading, decode
from device_gateway.gate_pricing import StayPricer, price_closed_sessions
from device_gateway.messages import encode_state
from device_gateway.store import write_batch
from guidance_api.app import create_app
from guidance_api.context import DB_POOL
from guidance_api.reservation_sweep import sweep
from parking_core.adapters.hold_endings import report_plate_in_spot
from parking_core.adapters.settings import Settings
from simulators.city import generate_city
from simulators.provision import provision_city

pytestmark = [pytest.mark.db, pytest.mark.slow]
Client = TestClient[Any, Any]
ADMIN = {"Authorization": "Bearer test-admin-token-of-32-characters-or-more"}
SHANGHAI = ZoneInfo("Asia/Shanghai")
CITY = generate_city(1, 2, 6, prefix="wk")
PUBLIC, OFFICE = CITY.lots
START = datetime(2025, 4, 25, 7, tzinfo=SHANGHAI)  # a Friday: the week holds a make-up Sunday and May Day
STEP = timedelta(minutes=30)
CALENDAR = load_example_tariffs()["zz-zone1-underground"]
PLATES = [f"豫A{n:05d}" for n in range(1, 7)]
PLANS = ("keep", "cancel", "no_show", "taken")
VISITORS = [f"豫C{n:05d}" for n in range(1, 5)]  # the public parking in the office at night
OVERSTAY_UNIT, OVERSTAY_FEE = timedelta(minutes=60), 500
P = "parking/v1"


@dataclass
class Sim:
    """The simulated clock, sensor sequence numbers and the ground truth of every reservation."""

    now: datetime = START
    seq: dict[str, int] = field(default_factory=dict)
    plans: dict[str, str] = field(default_factory=dict)  # reservation id -> plan
    leave_at: dict[str, datetime] = field(default_factory=dict)  # spot -> when its car leaves
    visitors: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # office spot -> plate, leaves
    visitor_rng: random.Random = field(default_factory=lambda: random.Random(15))  # noqa: S311
    rng: random.Random = field(default_factory=lambda: random.Random(14))  # noqa: S311 - a simulation


def office_quota(at: datetime) -> int:
    """Independent truth for the office: weekday nights 19-08 share 4, weekend/holiday days all 6."""
    clock = at.astimezone(SHANGHAI)
    today, yesterday = (
        CALENDAR.day_type(clock.date()).value,
        CALENDAR.day_type(clock.date() - timedelta(days=1)).value,
    )
    quota = 0
    if (today == "weekday" and clock.hour >= 19) or (yesterday == "weekday" and clock.hour < 8):
        quota = 4
    if today in {"weekend", "holiday"}:
        quota = 6
    return quota


@pytest.fixture
async def world(
    app_settings: Settings, aiohttp_client: Callable[[web.Application], Awaitable[Client]]
) -> AsyncIterator[tuple[Client, asyncpg.Connection, Sim]]:
    assert app_settings.database_url is not None
    sim = Sim()
    await provision_city(app_settings.database_url, CITY, heartbeat_interval_s=86_400)
    api = await aiohttp_client(create_app(app_settings, sweeps=False, clock=lambda: sim.now))
    doc = example_tariff_documents()["zz-zone1-underground"] | {
        "tariff_id": "wk-fees",
        "reservation_fee_fen": 200,
        "no_show_fee_fen": 1000,
    }
    assert (await api.put("/v1/admin/tariffs/wk-fees", json=doc, headers=ADMIN)).status in {200, 201}
    conn = await asyncpg.connect(app_settings.database_url)
    await conn.execute("UPDATE lots SET tariff_id = 'wk-fees'")
    rules = [
        {"rule_id": "nights", "day_types": ["weekday"], "start": "19:00", "end": "08:00", "spaces": 4},
        {
            "rule_id": "days-off",
            "day_types": ["weekend", "holiday"],
            "start": "00:00",
            "end": "24:00",
            "spaces": 6,
        },
    ]
    body = {
        "owner_name": "写字楼",
        "owner_share_percent": 70,
        "rules": rules,
        "members": ["豫A88888"],
        "reminder_before_min": 30,
        "overstay_unit_min": 60,
        "overstay_unit_fee_fen": OVERSTAY_FEE,
    }
    assert (
        await api.put(f"/v1/operator/lots/{OFFICE.lot_id}/sharing", json=body, headers=ADMIN)
    ).status == 200
    for spot in CITY.lots[0].spots + CITY.lots[1].spots:
        await sense(conn, sim, spot.spot_id, occupied=False)
    yield api, conn, sim
    await conn.close()


DEVICES = {s.spot_id: s.device_id for lot in CITY.lots for s in lot.spots}


async def sense(conn: asyncpg.Connection, sim: Sim, spot_id: str, *, occupied: bool) -> None:
    """A bay sensor reports, through the gateway's own decoding and batch SQL."""
    device = DEVICES[spot_id]
    sim.seq[device] = sim.seq.get(device, 0) + 1
    got = decode(
        f"{P}/sensors/{device}/state", encode_state(sim.seq[device], sim.now, occupied), P, sim.now, Limits()
    )
    assert isinstance(got, SensorReading)
    await write_batch(conn, [got], [], [], sim.now)


async def spot_status(conn: asyncpg.Connection, lot_id: str) -> dict[str, str]:
    return {
        r["spot_id"]: r["status"]
        for r in await conn.fetch("SELECT spot_id, status FROM spots WHERE lot_id = $1", lot_id)
    }


async def driver_token(api: Client, plates: list[str] = PLATES) -> dict[str, str]:
    resp = await api.post("/v1/admin/tokens", json={"role": "driver", "plates": plates}, headers=ADMIN)
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def book(api: Client, conn: asyncpg.Connection, sim: Sim, driver: dict[str, str]) -> None:
    """Drivers without a hold reserve at the public lot; each hold gets a plan."""
    held = {r["plate"] for r in await conn.fetch("SELECT plate FROM reservations WHERE status = 'held'")}
    for plate in PLATES:
        if plate in held or sim.rng.random() > 0.3:
            continue
        start = sim.now + timedelta(minutes=sim.rng.choice([0, 30, 60]))
        window = {
            "arrival_from": start.isoformat(),
            "arrival_to": (start + timedelta(minutes=30)).isoformat(),
        }
        resp = await api.post(
            "/v1/reservations", json={"lot_id": PUBLIC.lot_id, "plate": plate} | window, headers=driver
        )
        assert resp.status in {201, 409}, await resp.text()
        if resp.status == 201:
            sim.plans[(await resp.json())["reservation_id"]] = sim.rng.choice(PLANS)


async def act(api: Client, conn: asyncpg.Connection, sim: Sim, driver: dict[str, str]) -> None:
    """Play each held reservation's plan once its window has begun."""
    rows = await conn.fetch(
        "SELECT reservation_id, spot_id, arrival_from FROM reservations WHERE status = 'held'"
    )
    for row in rows:
        if row["arrival_from"] > sim.now:
            continue
        plan = sim.plans[row["reservation_id"]]
        if plan == "keep":
            await sense(conn, sim, row["spot_id"], occupied=True)
            sim.leave_at[row["spot_id"]] = sim.now + sim.rng.choice([STEP, 3 * STEP])
        elif plan == "cancel":
            assert (
                await api.delete(f"/v1/reservations/{row['reservation_id']}", headers=driver)
            ).status == 200
        elif plan == "taken":
            await sense(conn, sim, row["spot_id"], occupied=True)
            sim.leave_at[row["spot_id"]] = sim.now + STEP
            moved = await report_plate_in_spot(conn, row["reservation_id"], "豫B99999", sim.now)
            assert moved is not None
            assert row["spot_id"] in moved["moved_from"]
            # Moved to another spot (and then the driver does not come), or no spot left: ended free.
            sim.plans[row["reservation_id"]] = "no_show" if moved["status"] == "held" else "cancel"


async def traffic(conn: asyncpg.Connection, sim: Sim) -> None:
    """Walk-ins take free public spots; office staff park in the working day; cars leave."""
    for spot, when in list(sim.leave_at.items()):
        if when <= sim.now:
            await sense(conn, sim, spot, occupied=False)
            del sim.leave_at[spot]
    public = await spot_status(conn, PUBLIC.lot_id)
    free = sorted(s for s, status in public.items() if status == "free")
    if free and sim.rng.random() < 0.4:
        spot = sim.rng.choice(free)
        await sense(conn, sim, spot, occupied=True)
        sim.leave_at[spot] = sim.now + sim.rng.choice([STEP, 2 * STEP, 4 * STEP])
    clock = sim.now.astimezone(SHANGHAI)
    working = CALENDAR.day_type(clock.date()).value == "weekday" and 8 <= clock.hour < 18
    for staff in OFFICE.spots[:3]:
        await sense(conn, sim, staff.spot_id, occupied=working)


async def visitors(api: Client, conn: asyncpg.Connection, sim: Sim, driver: dict[str, str]) -> None:
    """In the office's windows the public parks on its other bays (the driver names the bay in the
    app) for half an hour to three hours: some leave after the window has ended."""
    for spot, (_, leaves) in list(sim.visitors.items()):
        if leaves <= sim.now:
            await sense(conn, sim, spot, occupied=False)
            del sim.visitors[spot]
    free = [s.spot_id for s in OFFICE.spots[3:] if s.spot_id not in sim.visitors]
    plates = [p for p in VISITORS if p not in {plate for plate, _ in sim.visitors.values()}]
    rng = sim.visitor_rng
    if office_quota(sim.now) == 0 or not free or not plates or rng.random() > 0.5:
        return
    spot, plate = rng.choice(free), rng.choice(plates)
    await sense(conn, sim, spot, occupied=True)
    resp = await api.post(f"/v1/plates/{plate}/spot", json={"spot_id": spot}, headers=driver)
    assert resp.status == 200, await resp.text()
    sim.visitors[spot] = (plate, sim.now + STEP * rng.randint(1, 6))


def window_end(started: datetime) -> datetime:
    """Independent truth: the first half hour from *started* on that the office does not share."""
    at = started
    while office_quota(at) > 0:
        at += STEP
    return at


async def check_ends_of_windows(conn: asyncpg.Connection) -> int:
    """Every visit that left after its window's end is surcharged once, to the fen, on its own invoice;
    no other is; each visit inside at the sweep 30 minutes before the end was reminded once."""
    visits = await conn.fetch(
        "SELECT s.session_id, s.started_at, s.ended_at, c.amount_fen, i.amount_fen AS invoiced,"
        " (SELECT count(*) FROM driver_notifications d WHERE d.session_id = s.session_id) AS reminders"
        " FROM sessions s LEFT JOIN overstay_charges c USING (session_id)"
        " LEFT JOIN invoices i ON i.session_id = 'overstay-' || s.session_id::text"
        " WHERE s.lot_id = $1 AND s.plate LIKE '豫C%'",
        OFFICE.lot_id,
    )
    overstays = 0
    for visit in visits:
        end = window_end(visit["started_at"])
        late = visit["ended_at"] - end
        if late > timedelta(0):
            overstays += 1
            fee = -(-late // OVERSTAY_UNIT) * OVERSTAY_FEE
            assert (visit["amount_fen"], visit["invoiced"]) == (fee, fee), visit
        else:
            assert (visit["amount_fen"], visit["invoiced"]) == (None, None), visit
        due = end - timedelta(minutes=30)  # the sweep runs on the half hour
        assert visit["reminders"] == int(visit["started_at"] <= due < visit["ended_at"]), visit
    charges = await conn.fetchval("SELECT count(*) FROM overstay_charges")
    assert charges == overstays  # one per overstay, however many sweeps ran
    return overstays


async def check(api: Client, conn: asyncpg.Connection, sim: Sim) -> None:
    """Vacancies never offer a held space or the office outside its windows; 0 ≤ free ≤ capacity."""
    body = await (await api.get(f"/v1/vacancies?lat={PUBLIC.lat}&lon={PUBLIC.lon}&radius_m=50000")).json()
    items = {i["lot_id"]: i for i in body["items"]}
    for item in items.values():
        assert 0 <= item["free"] <= item["capacity"]
    public = await spot_status(conn, PUBLIC.lot_id)
    if PUBLIC.lot_id in items:
        assert items[PUBLIC.lot_id]["free"] == sum(s == "free" for s in public.values())
    loose = await conn.fetchval(
        "SELECT count(*) FROM reservations r JOIN spots s USING (spot_id)"
        " WHERE r.status = 'held' AND s.status <> 'reserved'"
    )
    assert loose == 0
    lot = await (await api.get(f"/v1/lots/{PUBLIC.lot_id}")).json()
    held = await conn.fetchval("SELECT count(*) FROM reservations WHERE status = 'held'")
    assert lot["reserved"] == held
    assert 0 <= lot["free"] <= lot["capacity"]
    quota = office_quota(sim.now)
    office = await (await api.get(f"/v1/lots/{OFFICE.lot_id}")).json()
    if quota == 0:
        assert OFFICE.lot_id not in items
        assert office["status"] == "closed"
    else:
        assert office["capacity"] == quota
        assert 0 <= office["free"] <= quota


async def test_a_week_of_reservations_and_night_sharing(
    world: tuple[Client, asyncpg.Connection, Sim],
) -> None:
    """336 half-hour steps: every hold ends by its deadline as the plan says, with its fees."""
    api, conn, sim = world
    driver = await driver_token(api)
    visitor = await driver_token(api, VISITORS)
    pricer = StayPricer()
    shared_hours = 0
    while sim.now < START + timedelta(days=7):
        await book(api, conn, sim, driver)
        await act(api, conn, sim, driver)
        await traffic(conn, sim)
        await visitors(api, conn, sim, visitor)
        await price_closed_sessions(conn, pricer)  # the gateway's sweep prices stays that ended
        await sweep(api.app[DB_POOL], sim.now)
        await check(api, conn, sim)
        shared_hours += office_quota(sim.now) > 0
        sim.now += STEP
    sim.now += timedelta(hours=3)
    for spot in list(sim.visitors):
        await sense(conn, sim, spot, occupied=False)
    await price_closed_sessions(conn, pricer)
    await sweep(api.app[DB_POOL], sim.now)
    assert await check_ends_of_windows(conn) > 0
    rows = await conn.fetch(
        "SELECT r.reservation_id, r.status, r.late_cancellation, r.moved_from,"
        " coalesce(array_agg(c.kind ORDER BY c.kind) FILTER (WHERE c.kind IS NOT NULL), '{}') AS fees"
        " FROM reservations r LEFT JOIN reservation_charges c USING (reservation_id)"
        " GROUP BY r.reservation_id"
    )
    outcomes = {r["status"] for r in rows}
    assert outcomes == {"arrived", "cancelled", "no_show"}
    for r in rows:
        plan = sim.plans[r["reservation_id"]]
        expected = {"keep": "arrived", "cancel": "cancelled", "no_show": "no_show"}[plan]
        assert r["status"] == expected, (r, plan)
        fees = list(r["fees"])
        if r["status"] == "no_show":
            assert fees == ["no_show", "reservation"]
        elif r["status"] == "arrived" or r["late_cancellation"]:
            assert fees == ["reservation"]
        else:
            assert fees == []
    assert any(r["moved_from"] for r in rows)
    unbilled = await conn.fetchval(
        "SELECT count(*) FROM (SELECT reservation_id, sum(amount_fen) AS fees FROM reservation_charges"
        " GROUP BY reservation_id) c LEFT JOIN invoices i ON i.session_id = c.reservation_id"
        " WHERE i.amount_fen IS DISTINCT FROM c.fees"
    )
    assert unbilled == 0  # every reservation's fees invoiced once, to the fen
    assert 0 < shared_hours < 336
