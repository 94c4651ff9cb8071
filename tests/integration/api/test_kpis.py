"""Operator KPIs on a small simulated day, against hand-computed values (real PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from guidance_api.history_sql import HOURLY_SERIES, TIME_WEIGHTED_SERIES
from guidance_api.lot_periods import period_starts, series_for
from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime.now(SHANGHAI).date() - timedelta(days=2)  # a whole local day in the past
# The day, per lot: (local hour and minute on DAY, or -2 h for the evening before), counts.
# K1 (north, 10 spaces): 2 occupied from 00:00, 8 from 08:00, 10 from 08:30, 4 from 18:00.
# K2 (north, 20 spaces): 5 from the evening before, 15 from 09:00, 15 unknown 10:00-11:00, 10 from 11:00.
# K3 (south, 10 spaces): nothing until 12:30, then 5.
# Stays at K1 (gate sessions): 08:05-08:35, 08:10-09:10, 08:20-08:30, and a cancelled entry at 08:40.
# Money at K1: ¥12 invoiced 08:35 and paid 09:00; ¥8 invoiced 09:10, due 10:00, never paid (arrears).
LOTS = {"K1": ("north", 10), "K2": ("north", 20), "K3": ("south", 10)}
SAMPLES = [
    ("K1", (0, 0), 2, 0),
    ("K1", (8, 0), 8, 0),
    ("K1", (8, 30), 10, 0),
    ("K1", (18, 0), 4, 0),
    ("K2", (-2, 0), 5, 0),
    ("K2", (9, 0), 15, 0),
    ("K2", (10, 0), 5, 15),
    ("K2", (11, 0), 10, 0),
    ("K3", (12, 30), 5, 0),
]
STAYS = [
    ((8, 5), (8, 35), "closed"),
    ((8, 10), (9, 10), "closed"),
    ((8, 20), (8, 30), "closed"),
    ((8, 40), None, "cancelled"),
]


def local(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    """Return a Shanghai time on *day* (a negative hour is the evening before)."""
    return datetime.combine(day, time(0), SHANGHAI) + timedelta(hours=hour, minutes=minute)


@pytest.fixture(scope="module")
def simulated_day(database_url: str) -> None:
    """Provision the districts and lots in SQL and write the day's lot_occupancy samples."""
    asyncio.run(write_day(database_url))


async def write_day(database_url: str) -> None:
    """Write the districts, lots and samples of the simulated day."""
    conn = await asyncpg.connect(database_url)
    try:
        for district in ("north", "south"):
            await conn.execute("INSERT INTO districts (district_id, name) VALUES ($1, $1)", district)
        for lot_id, (district, capacity) in LOTS.items():
            await conn.execute(
                "INSERT INTO lots (lot_id, district_id, name, kind, lat, lon, capacity)"
                " VALUES ($1, $2, $1, 'off_street', 34.75, 113.65, $3)",
                lot_id,
                district,
                capacity,
            )
        await conn.executemany(
            "INSERT INTO lot_occupancy (ts, lot_id, capacity, free, occupied, reserved, unknown, closed)"
            " VALUES ($1, $2, $3::int, $3::int - $4::int - $5::int, $4, 0, $5, 0)",
            [(local(*at), lot, LOTS[lot][1], occ, unk) for lot, at, occ, unk in SAMPLES],
        )
        await conn.executemany(
            "INSERT INTO sessions (session_id, lot_id, kind, state, plate, started_at, ended_at, closed_by)"
            " VALUES (gen_random_uuid(), 'K1', 'gate', $1, $2, $3, $4, $5)",
            [
                (state, f"豫A1234{n}", local(*start), local(*end) if end else None, "exit" if end else None)
                for n, (start, end, state) in enumerate(STAYS)
            ],
        )
        await write_money(conn)
    finally:
        await conn.close()


async def write_money(conn: asyncpg.Connection) -> None:
    """Two invoices of K1 with their ledger entries and balances, as the money store keeps them."""
    for invoice, amount, issued, paid in (
        ("I1", 1200, local(8, 35), local(9, 0)),
        ("I2", 800, local(9, 10), None),
    ):
        await conn.execute(
            "INSERT INTO invoices (invoice_id, session_id, lot_id, plate, entry_at, exit_at, amount_fen,"
            " lines, tariff_id, tariff_version, issued_at, due_at)"
            " VALUES ($1, $1, 'K1', $2, $3, $3, $4, '[]', 'zz', 1, $3, $5)",
            invoice,
            f"豫B{invoice}000",
            issued,
            amount,
            local(10),
        )
        entries = [("invoiced", amount, issued)] + ([("captured", amount, paid)] if paid else [])
        for kind, fen, at in entries:
            await conn.execute(
                "INSERT INTO ledger_entries (invoice_id, lot_id, kind, amount_fen, at)"
                " VALUES ($1, 'K1', $2, $3, $4)",
                invoice,
                kind,
                fen,
                at,
            )
        await conn.execute(
            "INSERT INTO invoice_balances (invoice_id, plate, lot_id, due_at, invoiced_fen, captured_fen)"
            " VALUES ($1, $2, 'K1', $3, $4, $5)",
            invoice,
            f"豫B{invoice}000",
            local(10),
            amount,
            amount if paid else 0,
        )


@pytest.fixture
async def day_api(api: Client, simulated_day: None) -> Client:
    """The API over the simulated day."""
    return api


async def kpis(api: Client, path: str, headers: dict[str, str] = ADMIN, **params: str) -> dict[str, Any]:
    """GET a KPI route for DAY and return its body."""
    query = {"from": DAY.isoformat(), "to": (DAY + timedelta(days=1)).isoformat(), **params}
    resp = await api.get(path, params=query, headers=headers)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def by_hour(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Return the items keyed by their local hour."""
    return {datetime.fromisoformat(i["start"]).astimezone(SHANGHAI).hour: i for i in body["items"]}


async def test_a_lots_hours_are_weighted_by_time(day_api: Client) -> None:
    """K1 hour 8: 8 for 30 min and 10 for 30 min = 90 %; hours 0-7 are 20 %; 24 local hours."""
    body = await kpis(day_api, "/v1/operator/lots/K1/kpis", period="hour")
    assert (body["scope"], body["lot_id"], body["time_zones"], body["lots"]) == (
        "lot",
        "K1",
        ["Asia/Shanghai"],
        1,
    )
    hours = by_hour(body)
    assert sorted(hours) == list(range(24))
    assert hours[0]["start"] == local(0).isoformat()
    assert [hours[h]["occupancy_percent"] for h in (0, 7, 8, 9, 17, 18, 23)] == [20, 20, 90, 100, 100, 40, 40]
    assert (hours[8]["occupied_avg"], hours[8]["capacity_avg"], hours[8]["samples"]) == (9, 10, 2)


async def test_sessions_give_turnover_and_dwell(day_api: Client) -> None:
    """K1 hour 8: 3 stays began (turnover 0.3), 2 ended (30 and 10 min: mean and median 20); hour 9:
    the hour-long one ended; the cancelled entry is no stay.
    """
    hours = by_hour(await kpis(day_api, "/v1/operator/lots/K1/kpis", period="hour"))
    eight, nine = hours[8], hours[9]
    assert (eight["sessions"], eight["turnover"], eight["sessions_ended"]) == (3, 0.3, 2)
    assert (eight["dwell_mean_min"], eight["dwell_median_min"]) == (20, 20)
    assert (nine["sessions"], nine["sessions_ended"], nine["dwell_mean_min"]) == (0, 1, 60)
    assert (hours[10]["sessions"], hours[10]["dwell_mean_min"], hours[10]["turnover"]) == (0, None, 0)


async def test_money_per_period_and_arrears_now(day_api: Client) -> None:
    """K1: hour 8 invoiced ¥12; hour 9 invoiced ¥8 and collected ¥12; ¥8 owed past due by one plate."""
    body = await kpis(day_api, "/v1/operator/lots/K1/kpis", period="hour")
    hours = by_hour(body)
    assert [(hours[h]["invoiced_fen"], hours[h]["collected_fen"]) for h in (8, 9, 10)] == [
        (1200, 0),
        (800, 1200),
        (0, 0),
    ]
    assert (body["summary"]["arrears_fen"], body["summary"]["plates_in_arrears"]) == (800, 1)
    south = await kpis(day_api, "/v1/operator/districts/south/kpis", period="day")
    assert (south["summary"]["arrears_fen"], south["items"][0]["invoiced_fen"]) == (0, 0)


async def test_an_hour_with_most_spots_unknown_is_minus_one(day_api: Client) -> None:
    """K2 10:00-11:00 has 15 of 20 spots unknown: -1; the carried evening state fills hours 0-8."""
    hours = by_hour(await kpis(day_api, "/v1/operator/lots/K2/kpis", period="hour"))
    assert [hours[h]["occupancy_percent"] for h in (0, 8, 9, 10, 11, 23)] == [25, 25, 75, -1, 50, 50]
    assert (hours[10]["source_offline"], hours[10]["lots_offline"], hours[10]["lots_reporting"]) == (
        True,
        1,
        0,
    )


async def test_less_than_half_an_hour_known_is_offline(day_api: Client) -> None:
    """K3 is unknown until 12:30: hours 0-11 are -1, hour 12 (half known) is 50 %."""
    hours = by_hour(await kpis(day_api, "/v1/operator/lots/K3/kpis", period="hour"))
    assert {hours[h]["occupancy_percent"] for h in range(12)} == {-1}
    assert [hours[h]["occupancy_percent"] for h in (12, 13)] == [50, 50]


async def test_days_are_local_days_and_roll_up_over_reporting_lots(day_api: Client) -> None:
    """One local day: K1 139/240 spot-hours, K2 195/480, K3 offline (11.5 h known); city 334/720."""
    k1 = await kpis(day_api, "/v1/operator/lots/K1/kpis", period="day")
    k2 = await kpis(day_api, "/v1/operator/lots/K2/kpis", period="day")
    k3 = await kpis(day_api, "/v1/operator/lots/K3/kpis", period="day")
    city = await kpis(day_api, "/v1/operator/kpis", period="day")
    assert [b["items"][0]["occupancy_percent"] for b in (k1, k2, k3, city)] == [
        round(100 * 139 / 240, 1),
        round(100 * 195 / 480, 1),
        -1,
        round(100 * 334 / 720, 1),
    ]
    [day] = city["items"]
    assert (day["start"], day["end"]) == (local(0).isoformat(), local(24).isoformat())
    assert (day["lots_reporting"], day["lots_offline"], city["lots"]) == (2, 1, 3)
    assert city["summary"] == {
        "occupancy_percent": round(100 * 334 / 720, 1),
        "source_offline": False,
        "periods": 1,
        "periods_offline": 0,
        "sessions": 3,
        "turnover": round(3 / 40, 3),
        "sessions_ended": 3,
        "dwell_mean_min": round((30 + 60 + 10) / 3, 1),
        "dwell_median_min": None,
        "invoiced_fen": 2000,
        "collected_fen": 1200,
        "written_off_fen": 0,
        "arrears_fen": 800,
        "plates_in_arrears": 1,
    }
    assert (day["sessions"], day["turnover"], day["dwell_median_min"]) == (3, 0.075, 30)


async def test_district_and_city_hours(day_api: Client) -> None:
    """North hour 8: (9 + 5) / 30; hour 10: K1 alone (K2 offline). City hour 12: 1350 / 2100."""
    north = by_hour(await kpis(day_api, "/v1/operator/districts/north/kpis", period="hour"))
    assert north[8]["occupancy_percent"] == round(100 * 14 / 30, 1)
    assert (north[10]["occupancy_percent"], north[10]["lots_reporting"], north[10]["lots_offline"]) == (
        100,
        1,
        1,
    )
    south = by_hour(await kpis(day_api, "/v1/operator/districts/south/kpis", period="hour"))
    assert (south[0]["occupancy_percent"], south[0]["lots_offline"]) == (-1, 1)
    city = by_hour(await kpis(day_api, "/v1/operator/kpis", period="hour"))
    assert city[12]["occupancy_percent"] == round(100 * 1350 / 2100, 1)
    assert (city[12]["occupied_avg"], city[12]["capacity_avg"]) == (25, 40)


async def test_scope(day_api: Client) -> None:
    """A lot token sees its lot alone, also in its district's roll-up; other districts are 403."""
    resp = await day_api.post("/v1/admin/tokens", json={"role": "operator", "lot_ids": ["K1"]}, headers=ADMIN)
    k1 = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    north = await kpis(day_api, "/v1/operator/districts/north/kpis", k1, period="day")
    assert (north["lots"], north["items"][0]["occupancy_percent"]) == (1, round(100 * 139 / 240, 1))
    city = await kpis(day_api, "/v1/operator/kpis", k1, period="day")
    assert city["lots"] == 1
    assert (await day_api.get("/v1/operator/districts/south/kpis", headers=k1)).status == 403
    assert (await day_api.get("/v1/operator/lots/K2/kpis", headers=k1)).status == 403
    assert (await day_api.get("/v1/operator/districts/nowhere/kpis", headers=ADMIN)).status == 404
    assert (await day_api.get("/v1/operator/kpis")).status == 401


@pytest.mark.parametrize("period", ["hour", "day"])
async def test_the_hourly_roll_up_answers_what_the_5_minute_view_answers(
    database_url: str, simulated_day: None, period: str
) -> None:
    """The hand-computed KPIs above come from the hourly roll-up (Shanghai's hours and days are whole
    UTC hours); over the simulated day and the evening before, it gives the 5-minute view's rows.
    """
    bounds = period_starts(DAY - timedelta(days=1), DAY + timedelta(days=1), period, SHANGHAI)
    assert series_for(bounds) == HOURLY_SERIES
    width = timedelta(hours=1) if period == "hour" else timedelta(days=1)
    conn = await asyncpg.connect(database_url)
    try:
        args = (list(LOTS), bounds[0], bounds[-1], width, "Asia/Shanghai")
        hourly = [dict(r) for r in await conn.fetch(HOURLY_SERIES, *args)]
        five_minutes = [dict(r) for r in await conn.fetch(TIME_WEIGHTED_SERIES, *args)]
    finally:
        await conn.close()
    assert hourly == five_minutes
    # K1 from 00:00, K2 from 22:00 the evening before, K3 from 12:30: lot-periods with a known state
    assert len(hourly) == {"hour": 24 + 26 + 12, "day": 1 + 2 + 1}[period]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "week"}, "period"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "from"),
        ({"period": "hour", "from": "2026-01-01", "to": "2026-03-01"}, "to"),
        ({"period": "day", "from": "2024-01-01", "to": "2026-03-01"}, "to"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    day_api: Client, params: dict[str, str], field: str
) -> None:
    """Unknown periods, bad dates, reversed or too long ranges are refused with a problem."""
    resp = await day_api.get("/v1/operator/kpis", params=params, headers=ADMIN)
    assert (resp.status, resp.content_type) == (400, "application/problem+json")
    assert [e["field"] for e in (await resp.json())["errors"]] == [field]


async def test_the_routes_are_in_the_openapi_document(day_api: Client) -> None:
    """The three KPI routes are documented with their parameters."""
    paths = (await (await day_api.get("/v1/openapi.json")).json())["paths"]
    for path in (
        "/v1/operator/kpis",
        "/v1/operator/districts/{district_id}/kpis",
        "/v1/operator/lots/{lot_id}/kpis",
    ):
        assert {"period", "from", "to"} <= {p["name"] for p in paths[path]["get"]["parameters"]}
