"""The money worker: reminders POSTed to the webhook (retried on failure), refunds sent to the rails."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from billing.adapters.worker import MoneyWorker
from parking_core.adapters.settings import Settings
from tests.integration.money.helpers import invoice, make_lot
from tests.strategies_money import T0

pytestmark = pytest.mark.db


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as created:
        yield created


async def test_reminders_reach_the_webhook_and_a_failing_webhook_is_retried(
    pool: asyncpg.Pool, app_settings: Settings
) -> None:
    received: list[dict[str, Any]] = []
    answers = [503]  # the first delivery fails; the next round succeeds

    async def sink(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=answers.pop(0) if answers else 204)

    app = web.Application()
    app.router.add_post("/reminders", sink)
    async with TestServer(app) as server, aiohttp.ClientSession() as session:
        async with pool.acquire() as conn:
            invoice_id, amount = await invoice(conn, await make_lot(conn), "豫E10001")
            due_at = await conn.fetchval("SELECT due_at FROM invoices WHERE invoice_id = $1", invoice_id)
        settings = app_settings.model_copy(
            update={"reminder_webhook_url": str(server.make_url("/reminders"))}
        )
        worker = MoneyWorker(pool, settings, session)
        first = await worker.round(due_at + timedelta(days=1, hours=1))
        assert first.reminders_written >= 1
        second = await worker.round(due_at + timedelta(days=1, hours=2))
        assert second.reminders_delivered >= 1
    mine = [m for m in received if m["invoice_id"] == invoice_id]
    assert len(mine) == 2  # refused once, delivered once
    assert (mine[-1]["kind"], mine[-1]["due_fen"], mine[-1]["plate"]) == ("overdue", amount, "豫E10001")
    attempts = await pool.fetchval(
        "SELECT attempts FROM arrears_reminders WHERE invoice_id = $1 AND delivered_at IS NOT NULL",
        invoice_id,
    )
    assert attempts == 2


async def test_refunds_wait_without_a_provider_url_and_record_the_error(
    pool: asyncpg.Pool, app_settings: Settings
) -> None:
    async with pool.acquire() as conn:
        invoice_id, _ = await invoice(conn, await make_lot(conn), "豫E10002")
        await conn.execute(
            "INSERT INTO payments (payment_id, invoice_id, provider, amount_fen, created_at, expires_at)"
            " VALUES ('pay_w1', $1, 'wechatpay', 1, $2, $2)",
            invoice_id,
            T0,
        )
        await conn.execute(
            "INSERT INTO refunds (refund_id, provider, transaction_id, payment_id, invoice_id, amount_fen,"
            " requested_at) VALUES ('rf_w1', 'wechatpay', 'tx_w1', 'pay_w1', $1, 1, $2)",
            invoice_id,
            T0,
        )
    settings = app_settings.model_copy(update={"payment_provider_url": None})
    async with aiohttp.ClientSession() as session:
        done = await MoneyWorker(pool, settings, session).round(T0)
    assert done.refunds_sent == 0
    row = await pool.fetchrow("SELECT sent_at, attempts, last_error FROM refunds WHERE refund_id = 'rf_w1'")
    assert row is not None
    assert (row["sent_at"], row["attempts"]) == (None, 1)
    assert "PARKING_PAYMENT_PROVIDER_URL" in row["last_error"]
