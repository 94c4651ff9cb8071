"""End to end over the broker: pay-later exits at closed lots, the gateway SIGKILLed mid-exits, the
invoices paid through the rails, a deny-listed plate held at its next exit and let out after repaying."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web

from billing import VehicleClass, load_example_tariffs, price_stay
from billing.adapters.arrears_store import plate_arrears, run_arrears
from billing.adapters.drivers_store import bind_plate, put_account, set_consent
from billing.arrears import ArrearsPolicy
from guidance_api.app import create_app
from parking_core.adapters.settings import Settings
from parking_core.devtools.embedded import free_port
from parking_core.devtools.processes import Process, environment, log_line, python_module, running_async
from parking_core.gates import Lane
from parking_core.ids import LotId
from parking_core.topics import gate_topic
from simulators.payment_provider import ProviderFaults
from tests.e2e.money_day import pay_at_rails, pay_order, rails, settle
from tests.integration.gates.gate_helpers import TARIFF_ID, provision_gate_lots
from tests.integration.gateway.helpers import eventually, gateway_settings
from tests.mqtt_helpers import Collector, connect
from tests.strategies_gates import gate_device

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
TARIFF = load_example_tariffs()[TARIFF_ID]
LOTS = [LotId("gmd-1"), LotId("gmd-2")]
KINDS = ("at_once", "never", "twice", "at_once")


@dataclass(frozen=True)
class Car:
    """One stay of the ground truth."""

    plate: str
    lot: LotId
    entry: datetime
    exit: datetime
    kind: str
    seq: int

    @property
    def amount_fen(self) -> int:
        """The stay re-priced independently of the gate path (one stay per plate and lot)."""
        return price_stay(self.entry, self.exit, VehicleClass.SMALL_CAR, TARIFF).amount_fen


def simulate(now: datetime, plates: int, seed: int) -> list[Car]:
    """Stays of the last ten hours, each plate at most once per lot (no daily cap across stays)."""
    rng = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
    cars = []
    for i in range(plates):
        plate = f"豫G{8000 + i:05d}"
        for n, lot in enumerate(rng.sample(LOTS, rng.randint(1, 2))):
            entry = now - timedelta(hours=rng.uniform(3, 10))
            exit_at = min(
                now - timedelta(minutes=5), entry + timedelta(minutes=rng.choice([10, 50, 130, 240]))
            )
            cars.append(
                Car(
                    plate,
                    lot,
                    entry.replace(microsecond=0),
                    exit_at.replace(microsecond=0),
                    KINDS[i % 4],
                    10 * i + n,
                )
            )
    return cars


def read(car: Car, lane: Lane, seq: int, at: datetime) -> bytes:
    body = {"seq": seq, "ts": at.isoformat(), "lane": lane.value, "plate": car.plate, "plate_color": "blue"}
    return json.dumps(body | {"confidence": 0.98}, ensure_ascii=False).encode()


def gateway(settings: Settings, client_id: str, log: Path) -> AbstractAsyncContextManager[Process]:
    """Run ``python -m device_gateway`` with a persistent session of *client_id* until subscribed."""
    gw = gateway_settings(
        settings,
        gateway_client_id=client_id,  # both runs resume the same session
        gateway_share_group=client_id,
        gateway_session_expiry_s=300,
        gateway_gate_sweep_interval_s=3600,  # old reads: no expiry sweep mid-test
        gateway_gate_resend_after_s=3600,
    )
    return running_async(
        "gateway",
        python_module("device_gateway"),
        env=environment(gw),
        log_path=log,
        ready=log_line("mqtt.subscribed"),
    )


def exit_commands(gate: Collector) -> dict[str, dict[str, Any]]:
    """The last command each exit plate got, by plate."""
    found: dict[str, dict[str, Any]] = {}
    for topic, payload in list(gate.messages):
        body = json.loads(payload)
        if topic.endswith("-exit/command"):
            found[str(body["plate"])] = body
    return found


@asynccontextmanager
async def api_server(settings: Settings) -> AsyncIterator[str]:
    """Serve the API on a free port (the rails must reach its notify route over TCP)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    runner = web.AppRunner(create_app(settings.model_copy(update={"public_url": base})))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield base
    finally:
        await runner.cleanup()


async def drive(gate: Collector, prefix: str, cars: list[Car], db: asyncpg.Connection) -> None:
    """Enter every car (read, then passage once the gate opened), then wait for the sessions."""
    for car in cars:
        entry = gate_device(car.lot, Lane.ENTRY)
        gate.client.publish(
            gate_topic(prefix, entry, "plate"), read(car, Lane.ENTRY, car.seq, car.entry), qos=1
        )
    for car in cars:
        entry = gate_device(car.lot, Lane.ENTRY)

        async def decided(car: Car = car) -> bool:
            return bool(
                await db.fetchval(
                    "SELECT count(*) FROM sessions WHERE plate = $1 AND lot_id = $2", car.plate, car.lot
                )
            )

        await eventually(decided)
        passage = {
            "seq": car.seq + 100_000,
            "ts": (car.entry + timedelta(seconds=4)).isoformat(),
            "lane": "entry",
            "plate": car.plate,
        }
        gate.client.publish(
            gate_topic(prefix, entry, "passage"), json.dumps(passage, ensure_ascii=False), qos=1
        )

    async def all_open() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM sessions WHERE state = 'open'") == len(cars))

    await eventually(all_open)


async def test_pay_later_exits_survive_a_gateway_kill_and_repayment_opens_the_next_exit(
    app_settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """One invoice per priced session equal to the re-priced stay; one command per exit read."""
    now = datetime.now(UTC).replace(microsecond=0)
    cars = simulate(now, plates=8, seed=5)
    await provision_gate_lots(db, list(map(str, LOTS)), capacity=50)
    for lot in LOTS:  # invoices fall due an hour after the exit: "never" payers are in arrears today
        await db.execute("INSERT INTO lot_money_policies (lot_id, pay_within_s) VALUES ($1, 3600)", lot)
    for plate in {c.plate for c in cars}:
        await put_account(db, f"acc-{plate[-4:]}", "")
        await bind_plate(db, f"acc-{plate[-4:]}", plate, "e2e", now)
        await set_consent(db, f"acc-{plate[-4:]}", True, "e2e", now)
    gate = connect(str(app_settings.mqtt_url))
    gate.client.subscribe(f"{app_settings.topic_prefix}/gates/+/command", qos=1)
    log, client_id = tmp_path / "gateway.log", "gw-money-e2e"
    prefix = app_settings.topic_prefix
    try:
        async with gateway(app_settings, client_id, log) as first:
            await drive(gate, prefix, cars, db)
            for car in cars:  # every exit read, some twice (a gate's redelivery)
                device = gate_device(car.lot, Lane.EXIT)
                for _ in range(2 if car.seq % 3 == 0 else 1):
                    gate.client.publish(
                        gate_topic(prefix, device, "plate"), read(car, Lane.EXIT, car.seq, car.exit), qos=1
                    )

            async def some_exits() -> bool:
                return bool(await db.fetchval("SELECT count(*) FROM gate_commands WHERE lane = 'exit'") >= 3)

            await eventually(some_exits)
            first.kill()
        async with gateway(app_settings, client_id, log):

            async def all_exits() -> bool:
                n = await db.fetchval("SELECT count(*) FROM gate_commands WHERE lane = 'exit'")
                return bool(n == len(cars))

            await eventually(all_exits, timeout_s=60)
            await check_exits(db, cars)
            never = next(c for c in cars if c.kind == "never")
            await pay_and_check(app_settings, db, cars, never.plate)
            await deny_then_repay(app_settings, db, gate, never, now)
    finally:
        gate.close()


async def check_exits(db: asyncpg.Connection, cars: list[Car]) -> None:
    """Each exit read got one command; each paying stay one invoice at the re-priced amount."""
    rows = await db.fetch(
        "SELECT plate, lot_id, reason, amount_fen, session_id FROM gate_commands WHERE lane = 'exit'"
    )
    assert len(rows) == len(cars)
    by_car = {(r["plate"], r["lot_id"]): r for r in rows}
    for car in cars:
        row = by_car[car.plate, car.lot]
        assert row["reason"] == ("pay_later" if car.amount_fen else "free"), (car, row["reason"])
        assert row["amount_fen"] == car.amount_fen
    invoices = await db.fetch(
        "SELECT session_id, plate, lot_id, amount_fen FROM invoices WHERE plate LIKE '豫G%'"
    )
    assert sorted((r["plate"], r["lot_id"], r["amount_fen"]) for r in invoices) == sorted(
        (c.plate, c.lot, c.amount_fen) for c in cars if c.amount_fen
    )
    assert len({r["session_id"] for r in invoices}) == len(invoices)
    states = await db.fetch(
        "SELECT state, count(*) AS n FROM sessions WHERE plate LIKE '豫G%' GROUP BY state"
    )
    assert {r["state"]: r["n"] for r in states} == {
        s: n for s, n in (("invoiced", len(invoices)), ("paid", len(cars) - len(invoices))) if n
    }


async def pay_and_check(settings: Settings, db: asyncpg.Connection, cars: list[Car], never: str) -> None:
    """Pay by behaviour through the rails; then applied = captured − refunded, arrears = unpaid past due."""
    faults = ProviderFaults(duplicate=0.5, max_delay_s=0.2, late=0.2, late_delay_s=0.5)
    invoices = {
        (r["plate"], r["lot_id"]): r["invoice_id"]
        for r in await db.fetch("SELECT invoice_id, plate, lot_id FROM invoices WHERE plate LIKE '豫G%'")
    }
    async with (
        rails(faults, seed=5) as (simulator, rails_url),
        api_server(settings) as api,
        aiohttp.ClientSession() as session,
    ):
        for car in cars:
            invoice_id = invoices.get((car.plate, car.lot))
            if invoice_id is None or car.kind == "never":
                continue
            orders = [
                await pay_order(session, api, invoice_id, "wechatpay")
                for _ in range(2 if car.kind == "twice" else 1)
            ]
            for order in orders:
                await pay_at_rails(session, rails_url, "wechatpay", order)
        await settle(simulator)
    sums = {
        r["kind"]: r["total"]
        for r in await db.fetch(
            "SELECT e.kind, sum(e.amount_fen)::bigint AS total"
            " FROM ledger_entries e JOIN invoices i USING (invoice_id)"
            " WHERE i.plate LIKE '豫G%' GROUP BY e.kind"
        )
    }
    applied = await db.fetchval(
        "SELECT coalesce(sum(c.applied_fen), 0) FROM payment_captures c JOIN invoices i USING (invoice_id)"
        " WHERE i.plate LIKE '豫G%'"
    )
    assert applied == sums.get("captured", 0) - sums.get("refunded", 0)
    assert applied == sum(c.amount_fen for c in cars if c.kind != "never")
    assert sums.get("refunded", 0) == sum(c.amount_fen for c in cars if c.kind == "twice")
    assert len([m for m in simulator.movements if m.kind == "payment"]) == await db.fetchval(
        "SELECT count(*) FROM payment_captures c JOIN invoices i USING (invoice_id) WHERE i.plate LIKE '豫G%'"
    )
    later = datetime.now(UTC) + timedelta(hours=2)  # every invoice of the day is past due by then
    for plate in {c.plate for c in cars}:
        owed = sum(c.amount_fen for c in cars if c.plate == plate and c.kind == "never")
        assert await plate_arrears(db, plate, later) == owed
    paid_states = await db.fetchval(
        "SELECT count(*) FROM sessions s JOIN invoices i ON i.session_id = s.session_id::text"
        " WHERE s.state = 'paid' AND i.plate LIKE '豫G%'"
    )
    assert paid_states == len([c for c in cars if c.kind != "never" and c.amount_fen])
    assert never in {c.plate for c in cars}


async def deny_then_repay(
    settings: Settings, db: asyncpg.Connection, gate: Collector, car: Car, now: datetime
) -> None:
    """The never-payer is listed; its next exit is held `blacklisted`; it repays; the re-read opens."""
    assert (
        await run_arrears(db, now + timedelta(hours=12), ArrearsPolicy(blacklist_after=timedelta(hours=1)))
    ).listed >= 1
    prefix, again = settings.topic_prefix, now - timedelta(minutes=3)
    entry, exit_gate = gate_device(car.lot, Lane.ENTRY), gate_device(car.lot, Lane.EXIT)
    visit = Car(car.plate, car.lot, again - timedelta(hours=2), again, car.kind, 900_000)
    gate.client.publish(
        gate_topic(prefix, entry, "plate"), read(visit, Lane.ENTRY, visit.seq, visit.entry), qos=1
    )
    gate.client.publish(
        gate_topic(prefix, exit_gate, "plate"), read(visit, Lane.EXIT, visit.seq, visit.exit), qos=1
    )

    async def held() -> bool:
        found = exit_commands(gate).get(car.plate)
        return found is not None and found["reason"] == "blacklisted"

    await eventually(held)
    assert exit_commands(gate)[car.plate]["action"] == "hold"
    owed = [
        r["invoice_id"]
        for r in await db.fetch(
            "SELECT invoice_id FROM invoice_balances WHERE plate = $1 AND due_fen > 0", car.plate
        )
    ]
    async with (
        rails(ProviderFaults(), seed=6) as (simulator, rails_url),
        api_server(settings) as api,
        aiohttp.ClientSession() as session,
    ):
        for invoice_id in owed:
            await pay_at_rails(
                session, rails_url, "alipay", await pay_order(session, api, invoice_id, "alipay")
            )
        await settle(simulator)
    assert not await db.fetchval(
        "SELECT count(*) FROM money_deny_list WHERE plate = $1 AND lifted_at IS NULL", car.plate
    )
    gate.client.publish(
        gate_topic(prefix, exit_gate, "plate"),
        read(visit, Lane.EXIT, visit.seq + 1, visit.exit + timedelta(seconds=30)),
        qos=1,
    )

    async def opened() -> bool:
        found = exit_commands(gate).get(car.plate)
        return found is not None and found["reason"] == "pay_later"

    await eventually(opened)
    assert exit_commands(gate)[car.plate]["action"] == "open"
