"""The demo's drivers: accounts with a plate and pay-later consent, a stay each to pay, the payment secret."""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg

SECRET_FILE_NAME = "payment-secret"  # noqa: S105 -- a file name: in the data directory, mode 0600
DEMO_DRIVERS = 3
STAY_HOURS = (9, 11)  # each demo driver's stay: the last morning, 9:00-11:00 local (a charged time)


@dataclass(frozen=True)
class DemoDriver:
    """A demo driver: its account, its plate and its bearer token (shown once)."""

    account_id: str
    plate: str
    token: str


def payment_secret(data_dir: Path) -> str:
    """Return the demo's payment secret, created on first use in *data_dir* (owner-only file)."""
    path = data_dir / SECRET_FILE_NAME
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        path.chmod(0o600)  # a copy made with a looser mode is made private again
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def demo_plate(index: int) -> str:
    """Return the plate of demo driver *index* (1-based), e.g. 豫ADM001."""
    return f"豫ADM{index:03d}"


async def create_drivers(base: str, admin_token: str, count: int = DEMO_DRIVERS) -> list[DemoDriver]:
    """Through the API: accounts demo-driver-N, a token each, its plate bound, pay-later consent."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    drivers = []
    async with aiohttp.ClientSession(raise_for_status=True) as http:
        for index in range(1, count + 1):
            account_id, plate = f"demo-driver-{index}", demo_plate(index)
            await http.put(
                f"{base}/v1/admin/drivers/{account_id}", json={"name": f"Demo driver {index}"}, headers=admin
            )
            issued = await http.post(
                f"{base}/v1/admin/tokens",
                json={"role": "driver", "account_id": account_id, "label": "parking-demo"},
                headers=admin,
            )
            token = str((await issued.json())["token"])
            own = {"Authorization": f"Bearer {token}"}
            await http.put(f"{base}/v1/driver/plates/{quote(plate)}", headers=own)
            await http.put(f"{base}/v1/driver/consent", json={"pay_later": True}, headers=own)
            drivers.append(DemoDriver(account_id, plate, token))
    return drivers


# On-street bays of lots with a tariff (a stay elsewhere would cost nothing), one lot per driver.
PRICED_BAYS = """
SELECT DISTINCT ON (l.lot_id) l.lot_id, l.time_zone, s.spot_id FROM lots l JOIN spots s USING (lot_id)
WHERE l.kind = 'on_street' AND l.tariff_id IS NOT NULL ORDER BY l.lot_id, s.spot_id DESC LIMIT $1
"""


def last_morning(now: datetime, time_zone: str) -> tuple[datetime, datetime]:
    """Return the latest 9:00-11:00 (local) stay that ended before *now*: on-street tariffs charge in
    the daytime, so a stay in the small hours would cost nothing.
    """
    tz = ZoneInfo(time_zone)
    day = now.astimezone(tz).date()
    end = datetime.combine(day, time(STAY_HOURS[1]), tz)
    if end > now:
        day -= timedelta(days=1)
        end = datetime.combine(day, time(STAY_HOURS[1]), tz)
    return datetime.combine(day, time(STAY_HOURS[0]), tz), end


async def record_stays(database_url: str, drivers: list[DemoDriver], now: datetime) -> None:
    """Give each driver a bay stay of the last morning that was left unpaid (leave first, pay later):
    the gateway prices it and raises its invoice, as for any plated stay a sensor closed.
    """
    conn = await asyncpg.connect(database_url)
    try:
        bays = await conn.fetch(PRICED_BAYS, len(drivers))
        for driver, bay in zip(drivers, bays, strict=False):
            start, end = last_morning(now, bay["time_zone"])
            await conn.execute(
                "INSERT INTO sessions (session_id, lot_id, kind, state, plate, spot_id, started_at, ended_at,"
                " closed_by) VALUES ($1, $2, 'bay', 'closed', $3, $4, $5, $6, 'sensor')"
                " ON CONFLICT DO NOTHING",
                uuid.uuid5(
                    uuid.NAMESPACE_URL, f"parking-demo:{driver.account_id}:{start.date()}"
                ),  # once a day
                bay["lot_id"],
                driver.plate,
                bay["spot_id"],
                start,
                end,
            )
    finally:
        await conn.close()


def drivers_banner(base: str, rails: str, drivers: list[DemoDriver]) -> str:
    """Return the printout's part on leaving first and paying later, with each driver's token."""
    first = drivers[0]
    plate = quote(first.plate)
    rows = "\n".join(f"    driver         {d.plate}  token {d.token}" for d in drivers)
    return f"""
  Leave first, pay later: each demo driver parked on a street bay from 9 to 11 this (or the last)
  morning and left without paying; the gateway invoiced the stay (tokens are shown once, and
  each start issues new ones).
{rows}
    payment rails  {rails}  (simulated WeChat Pay / Alipay)
  Try it as {first.plate}:
    export T={first.token}
    curl -H "Authorization: Bearer $T" '{base}/v1/plates/{plate}/invoices'
    curl -H "Authorization: Bearer $T" -H 'Content-Type: application/json' -d '{{"provider": "wechatpay"}}' \\
         {base}/v1/invoices/<invoice_id>/payments
    curl -H 'Content-Type: application/json' -d '<its pay_params>' {rails}/wechatpay/sim/pay
    (the rails notify the API, and the invoice reads "paid"; also GET {base}/v1/driver/account)
"""
