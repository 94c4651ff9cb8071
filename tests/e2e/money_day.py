"""A simulated day of pay-later drivers against the real API process and the simulated payment rails."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from billing import price_stay
from billing.adapters.ledger_store import raise_invoice
from billing.invoices import PricedStay
from billing.tariff import VehicleClass
from parking_core.adapters.settings import BrokerAuth, Settings
from parking_core.devtools.embedded import free_port
from parking_core.devtools.processes import Process, environment, http_ok, python_module, running_async
from simulators.payment_provider import ProviderFaults, ProviderSimulator
from tests.integration.gateway.helpers import eventually
from tests.integration.money.helpers import TARIFF, make_lot

ADMIN = {"Authorization": "Bearer test-admin-token-of-32-characters-or-more"}
BEHAVIOURS = ("at_once", "late", "never", "twice")


@dataclass(frozen=True)
class Stay:
    """One stay of the ground truth: who, where, when, and what it costs re-priced independently."""

    session_id: str
    lot_id: str
    plate: str
    entry: datetime
    exit: datetime
    amount_fen: int


@dataclass
class Day:
    """The simulated day's ground truth: stays, each plate's behaviour, the invoices raised."""

    stays: list[Stay]
    behaviour: dict[str, str]
    invoices: dict[str, str] = field(default_factory=dict)  # session_id -> invoice_id
    orders: list[tuple[str, str, str]] = field(default_factory=list)  # (invoice_id, payment_id, provider)


def simulate_day(lots: list[str], plates: int, now: datetime, seed: int) -> Day:
    """Draw stays: late payers' day ended five days ago (past due), everyone else's yesterday."""
    rng = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
    behaviour = {f"豫A{7000 + i:05d}": BEHAVIOURS[i % len(BEHAVIOURS)] for i in range(plates)}
    stays = []
    for plate, kind in behaviour.items():
        day = now - timedelta(days=5 if kind == "late" else 1)
        start = day.replace(hour=0, minute=0, second=0, microsecond=0)
        for n in range(rng.randint(1, 3)):
            entry = start + timedelta(hours=rng.randint(0, 20), minutes=rng.randint(0, 59))
            exit_at = entry + timedelta(minutes=rng.choice([5, 40, 95, 200, 610]))
            quote = price_stay(entry, exit_at, VehicleClass.SMALL_CAR, TARIFF)
            stays.append(
                Stay(
                    f"day-{seed}-{plate[-4:]}-{n}", rng.choice(lots), plate, entry, exit_at, quote.amount_fen
                )
            )
    return Day(stays, behaviour)


async def raise_invoices(conn: asyncpg.Connection, day: Day) -> None:
    """Raise the invoice of every stay (twice, as a retried exit would): free stays raise none."""
    for stay in day.stays:
        quote = price_stay(stay.entry, stay.exit, VehicleClass.SMALL_CAR, TARIFF)
        priced = PricedStay(stay.session_id, stay.lot_id, stay.plate, quote)
        first = await raise_invoice(conn, priced, stay.exit)
        assert await raise_invoice(conn, priced, stay.exit) == first
        if first is not None:
            day.invoices[stay.session_id] = first


def api_process(settings: Settings, port: int, log: Path) -> AbstractAsyncContextManager[Process]:
    """Run ``python -m guidance_api`` on *port* until it answers; SIGTERM (then SIGKILL) at the end."""
    base = f"http://127.0.0.1:{port}"
    api = settings.model_copy(update={"http_port": port, "public_url": base, "broker_auth": BrokerAuth.NONE})
    return running_async(
        "api",
        python_module("guidance_api", "--port", str(port)),
        env=environment(api),
        log_path=log,
        ready=http_ok(f"{base}/v1/openapi.json"),
    )


@asynccontextmanager
async def rails(faults: ProviderFaults, seed: int) -> AsyncIterator[tuple[ProviderSimulator, str]]:
    """Serve the simulated rails on a free port and deliver their notifications in the background."""
    simulator = ProviderSimulator(b"test-payment-secret", faults, seed)
    runner = web.AppRunner(simulator.app())
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(simulator.deliver(session))
        try:
            yield simulator, f"http://127.0.0.1:{port}"
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await runner.cleanup()


async def pay_order(
    session: aiohttp.ClientSession, api: str, invoice_id: str, provider: str
) -> dict[str, Any]:
    async with session.post(
        f"{api}/v1/invoices/{invoice_id}/payments",
        json={"provider": provider},
        headers={"Authorization": "Bearer test-admin-token-of-32-characters-or-more"},
    ) as resp:
        assert resp.status == 201, await resp.text()
        return dict(await resp.json())


async def pay_at_rails(
    session: aiohttp.ClientSession, rails_url: str, provider: str, order: dict[str, Any]
) -> None:
    async with session.post(f"{rails_url}/{provider}/sim/pay", json=order["pay_params"]) as resp:
        assert resp.status == 200, await resp.text()


async def settle(simulator: ProviderSimulator) -> None:
    """Wait until the rails have nothing left to deliver (every notification answered 2xx)."""

    async def quiet() -> bool:
        return simulator.pending == 0

    await eventually(quiet, timeout_s=90)


async def lots_for_day(conn: asyncpg.Connection, count: int) -> list[str]:
    """Create *count* lots under the day's tariff."""
    return [await make_lot(conn, "d-day") for _ in range(count)]


def now_utc() -> datetime:
    """The test's clock (the API reads its own; both are the real time)."""
    return datetime.now(UTC)
