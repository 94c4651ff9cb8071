"""A day's money per lot and per operator scope: the route and `parking-reconcile totals` agree."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from billing.adapters.ledger_store import WriteOff, raise_invoice, write_off
from billing.adapters.notify_store import Delivery, receive
from billing.adapters.payments_store import start_payment
from tests.integration.api.conftest import ADMIN
from tests.integration.money.helpers import make_lot, stay
from tests.strategies_money import SECRET, T0, capture_body, signed

pytestmark = pytest.mark.db
Client = TestClient[Any, Any]
DAY = "2026-11-23"  # T0 and the helpers' stays fall on this day in Asia/Shanghai


async def test_an_operator_sees_its_lots_day_and_the_cli_prints_the_same(
    api: Client, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        mine, theirs = await make_lot(conn, "dd-a"), await make_lot(conn, "dd-b")
        paid_stay, open_stay, other = (
            stay(mine, "豫F10001"),
            stay(mine, "豫F10002", 1.2),
            stay(theirs, "豫F10003"),
        )
        invoices = [await raise_invoice(conn, s, s.quote.exit) for s in (paid_stay, open_stay, other)]
        assert None not in invoices
        order = await start_payment(conn, str(invoices[0]), "wechatpay", None, T0)
        assert order is not None
        body = capture_body("EV", "tx-daily", order.payment_id, order.amount_fen)
        async with asyncpg.create_pool(database_url, min_size=1, max_size=1) as pool:
            assert (
                await receive(pool, Delivery("wechatpay", signed(body, T0, "n-daily"), body), SECRET, T0)
            ).answer.ok
        await write_off(conn, WriteOff(str(invoices[1]), 100, "goodwill", "op"), open_stay.quote.exit)
    finally:
        await conn.close()
    token = await api.post(
        "/v1/admin/tokens", json={"role": "operator", "district_ids": ["dd-a"]}, headers=ADMIN
    )
    operator = {"Authorization": f"Bearer {(await token.json())['token']}"}
    resp = await api.get(f"/v1/operator/money/daily?day={DAY}", headers=operator)
    assert resp.status == 200, await resp.text()
    got = await resp.json()
    assert [i["lot_id"] for i in got["items"]] == [mine]
    paid, unpaid = paid_stay.quote.amount_fen, open_stay.quote.amount_fen
    assert got["total"] == {
        "invoiced_fen": paid + unpaid,
        "adjusted_fen": 0,
        "captured_fen": paid,
        "refunded_fen": 0,
        "written_off_fen": 100,
        "outstanding_fen": unpaid - 100,
    }
    assert (await api.get("/v1/operator/money/daily?day=yesterday", headers=operator)).status == 400
    assert (
        await api.get(f"/v1/operator/money/daily?day={DAY}&time_zone=Mars/Base", headers=operator)
    ).status == 400
    argv = [sys.executable, "-m", "billing.adapters.reconcile_cli", "--database-url", database_url]
    argv += ["totals", "--day", DAY, "--district", "dd-a"]
    cli = await asyncio.to_thread(subprocess.run, argv, capture_output=True, text=True, check=True)
    total = next(line for line in cli.stdout.splitlines() if line.startswith("TOTAL")).split("\t")[1:]
    assert [int(v) for v in total] == list(got["total"].values())
