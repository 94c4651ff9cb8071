"""End to end: a day of pay-later drivers; the API killed mid-notification; every fen exactly once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import asyncpg
import pytest

from billing.adapters.arrears_store import plate_arrears
from billing.adapters.reconcile_store import StatementDay, reconcile_statement
from billing.adapters.worker import MoneyWorker
from billing.reconcile import MismatchReason
from parking_core.adapters.settings import Settings
from parking_core.devtools.embedded import free_port
from simulators.payment_provider import ProviderFaults, ProviderSimulator
from tests.e2e.money_day import (
    Day,
    api_process,
    lots_for_day,
    now_utc,
    pay_at_rails,
    pay_order,
    rails,
    raise_invoices,
    settle,
    simulate_day,
)
from tests.integration.gateway.helpers import eventually

pytestmark = [pytest.mark.db]
SHANGHAI = ZoneInfo("Asia/Shanghai")
FAULTS = ProviderFaults(duplicate=0.4, max_delay_s=0.3, late=0.2, late_delay_s=1.0)


async def test_a_day_of_pay_later_drivers_collects_every_fen_once(
    app_settings: Settings, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Pay at once, late, never or twice; notifications duplicated, reordered, delayed; the API
    SIGKILLed while they arrive. Then: invoices = re-pricing, applied = captured − refunded,
    arrears = unpaid past due, and the statements reconcile (and planted mismatches are found)."""
    assert app_settings.database_url is not None
    port = free_port()
    api, log = f"http://127.0.0.1:{port}", tmp_path / "api.log"
    day = simulate_day(await lots_for_day(db, 2), plates=12, now=now_utc(), seed=3)
    await raise_invoices(db, day)
    async with rails(FAULTS, seed=3) as (simulator, rails_url), aiohttp.ClientSession() as session:
        async with api_process(app_settings, port, log) as first:
            for stay in day.stays:
                invoice_id = day.invoices.get(stay.session_id)
                kind = day.behaviour[stay.plate]
                if invoice_id is None or kind == "never":
                    continue
                provider = "alipay" if stay.plate.endswith(("1", "3")) else "wechatpay"
                copies = 2 if kind == "twice" else 1
                orders = [await pay_order(session, api, invoice_id, provider) for _ in range(copies)]
                for order in orders:
                    await pay_at_rails(session, rails_url, provider, order)
                    day.orders.append((invoice_id, order["payment_id"], provider))

            async def some_applied() -> bool:
                return bool(await db.fetchval("SELECT count(*) FROM payment_captures") >= 3)

            await eventually(some_applied)
            first.kill()  # notifications keep arriving: refused, then retried
        async with api_process(app_settings, port, log):
            await settle(simulator)
            worker_settings = app_settings.model_copy(
                update={
                    "payment_provider_url": rails_url,
                    "public_url": api,
                }
            )
            pool = await asyncpg.create_pool(app_settings.database_url, min_size=1, max_size=2)
            try:
                worker = MoneyWorker(pool, worker_settings, session)
                await worker.round(now_utc())
            finally:
                await pool.close()
            await settle(simulator)
        await check_money(db, day, simulator)
        await check_reconciliation(db, simulator, app_settings, tmp_path)


async def check_money(db: asyncpg.Connection, day: Day, simulator: ProviderSimulator) -> None:
    # Σ invoices = Σ sessions re-priced independently, to the fen; one invoice per priced session.
    rows = await db.fetch("SELECT session_id, amount_fen FROM invoices WHERE session_id LIKE 'day-3-%'")
    invoiced = {r["session_id"]: r["amount_fen"] for r in rows}
    assert invoiced == {s.session_id: s.amount_fen for s in day.stays if s.amount_fen}
    invoice_ids = list(day.invoices.values())
    # Every capture the provider made is in the ledger exactly once.
    payments = [m for m in simulator.movements if m.kind == "payment"]
    captured = await db.fetch(
        "SELECT transaction_id, amount_fen, applied_fen FROM payment_captures WHERE invoice_id = ANY($1)",
        invoice_ids,
    )
    assert sorted(r["transaction_id"] for r in captured) == sorted(m.transaction_id for m in payments)
    rows = await db.fetch(
        "SELECT kind, sum(amount_fen)::bigint AS total FROM ledger_entries"
        " WHERE invoice_id = ANY($1) GROUP BY kind",
        invoice_ids,
    )
    sums: dict[str, int] = {r["kind"]: r["total"] for r in rows}
    applied = sum(r["applied_fen"] for r in captured)
    assert applied == sums.get("captured", 0) - sums.get("refunded", 0)  # Σ applied = Σ captured − Σ refunded
    payers = {s.session_id for s in day.stays if day.behaviour[s.plate] != "never" and s.amount_fen}
    assert applied == sum(invoiced[sid] for sid in payers)  # each paid invoice paid once
    doubles = sum(
        invoiced[s.session_id] for s in day.stays if day.behaviour[s.plate] == "twice" and s.amount_fen
    )
    assert sums.get("refunded", 0) == doubles  # one refund per duplicate payment
    refunds = await db.fetch(
        "SELECT refund_id, confirmed_at FROM refunds WHERE invoice_id = ANY($1)", invoice_ids
    )
    assert all(r["confirmed_at"] is not None for r in refunds)
    assert sorted(r["refund_id"] for r in refunds) == sorted(
        m.out_refund_no for m in simulator.movements if m.kind == "refund"
    )
    # Arrears per plate = its unpaid invoices past due (five days on, every unpaid one is past due).
    later = max(s.exit for s in day.stays) + timedelta(days=5)
    unpaid: dict[str, int] = defaultdict(int)
    for stay in day.stays:
        if day.behaviour[stay.plate] == "never":
            unpaid[stay.plate] += stay.amount_fen
    for plate in day.behaviour:
        assert await plate_arrears(db, plate, later) == unpaid.get(plate, 0)
    assert simulator.answers[204] >= len(payments)


async def check_reconciliation(
    db: asyncpg.Connection, simulator: ProviderSimulator, settings: Settings, tmp_path: Path
) -> None:
    days = {m.at.astimezone(SHANGHAI).date() for m in simulator.movements}
    for provider in ("wechatpay", "alipay"):
        for local_day in days:
            text = simulator.statement(provider, local_day)
            found = await reconcile_statement(
                db, StatementDay(provider, local_day, SHANGHAI), text, now_utc()
            )
            assert found == [], found
    # Planted: a payment the ledger does not know, one missing, one amount changed, one listed twice.
    local_day = max(days)
    lines = simulator.statement("wechatpay", local_day).splitlines()
    header, body = lines[0], [line for line in lines[1:] if ",payment," in line]
    assert len(body) >= 3
    dropped, changed, doubled = body[0], body[1], body[2]
    cols = changed.split(",")
    cols[-1] = str(int(cols[-1]) + 1)
    ghost = dropped.split(",")
    ghost[2] = "4200ghost"
    refunds = [line for line in lines[1:] if ",refund," in line]
    planted = [header, ",".join(cols), doubled, doubled, ",".join(ghost), *body[3:], *refunds]
    statement_file = tmp_path / "planted.csv"
    statement_file.write_text("\n".join(planted) + "\n")
    found = await reconcile_statement(
        db, StatementDay("wechatpay", local_day, SHANGHAI), statement_file.read_text(), now_utc()
    )
    assert {(m.reference, m.reason) for m in found} == {
        (dropped.split(",")[2], MismatchReason.NOT_IN_STATEMENT),
        (cols[2], MismatchReason.AMOUNT_DIFFERS),
        (doubled.split(",")[2], MismatchReason.DUPLICATE_IN_STATEMENT),
        ("4200ghost", MismatchReason.NOT_IN_LEDGER),
    }
    cli = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "billing.adapters.reconcile_cli",
            "--database-url",
            str(settings.database_url),
            "statement",
            "--provider",
            "wechatpay",
            "--day",
            local_day.isoformat(),
            str(statement_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 1, cli.stderr
    assert "4 mismatch(es)" in cli.stdout
    assert "not_in_ledger\tpayment\t4200ghost" in cli.stdout
