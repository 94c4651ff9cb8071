"""Arrears, bindings and write-offs on a real PostgreSQL: reminders, the deny list, lifting on repayment."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from billing.adapters.arrears_store import (
    deliver_reminders,
    list_plate,
    plate_standing,
    run_arrears,
    write_off_and_lift,
)
from billing.adapters.drivers_store import (
    account,
    bind_plate,
    put_account,
    set_consent,
    unbind_plate,
)
from billing.adapters.ledger_store import WriteOff, write_off
from billing.adapters.notify_store import Delivery, receive
from billing.adapters.payments_store import start_payment
from billing.arrears import ArrearsPolicy
from billing.errors import PlateBoundElsewhereError
from billing.payments import NotifyAnswer
from tests.integration.money.helpers import ENTRY, invoice, make_lot
from tests.strategies_money import SECRET, capture_body, signed

pytestmark = pytest.mark.db
DAY = timedelta(days=1)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as created:
        yield created


async def test_a_plate_is_bound_to_one_account_at_a_time_and_every_change_is_audited(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        assert await put_account(conn, "acc-1", "Li")
        assert await put_account(conn, "acc-2", "Wang")
        assert await bind_plate(conn, "acc-1", "豫A55555", "tok_1", ENTRY)
        assert not await bind_plate(conn, "acc-1", "豫A55555", "tok_1", ENTRY)  # idempotent
        with pytest.raises(PlateBoundElsewhereError):
            await bind_plate(conn, "acc-2", "豫A55555", "tok_2", ENTRY)
        assert await set_consent(conn, "acc-1", True, "tok_1", ENTRY)
        standing = await plate_standing(conn, "豫A55555", ENTRY)
        assert (standing.bound, standing.consented, standing.blacklisted) == (True, True, False)
        assert await unbind_plate(conn, "acc-1", "豫A55555", "tok_1", ENTRY + DAY)
        assert await bind_plate(conn, "acc-2", "豫A55555", "tok_2", ENTRY + DAY)
        found = await account(conn, "acc-2")
        assert found is not None
        assert [p for p, _ in found.plates] == ["豫A55555"]
        standing = await plate_standing(conn, "豫A55555", ENTRY)
        assert (standing.bound, standing.consented) == (True, False)  # acc-2 never consented
        actions = await conn.fetch(
            "SELECT action, account_id FROM money_audit WHERE plate = '豫A55555' ORDER BY audit_id"
        )
        assert [tuple(r) for r in actions] == [
            ("plate.bound", "acc-1"),
            ("plate.unbound", "acc-1"),
            ("plate.bound", "acc-2"),
        ]


async def pay(pool: asyncpg.Pool, invoice_id: str, amount: int, at: Any) -> None:
    async with pool.acquire() as conn:
        order = await start_payment(conn, invoice_id, "wechatpay", None, at)
    assert order is not None
    body = capture_body("EV", f"tx-{order.payment_id}", order.payment_id, amount)
    got = await receive(pool, Delivery("wechatpay", signed(body, at, order.payment_id), body), SECRET, at)
    assert got.answer is NotifyAnswer.APPLIED


async def test_reminders_then_the_deny_list_then_repayment_lifts_it_at_once(pool: asyncpg.Pool) -> None:
    """Overdue invoices get reminders by step; a long-overdue plate is listed; paying lifts it."""
    plate, policy = "豫A66666", ArrearsPolicy()
    async with pool.acquire() as conn:
        lot = await make_lot(conn)
        invoice_id, amount = await invoice(conn, lot, plate)
        due_at = await conn.fetchval("SELECT due_at FROM invoices WHERE invoice_id = $1", invoice_id)
        assert (await run_arrears(conn, due_at - 2 * DAY, policy)).reminders == 0
        assert (await run_arrears(conn, due_at - DAY, policy)).reminders == 1
        assert (await run_arrears(conn, due_at - DAY, policy)).reminders == 0  # once per step
        assert (await plate_standing(conn, plate, due_at)).arrears_fen == amount
        run = await run_arrears(conn, due_at + 15 * DAY, policy)
        assert (run.reminders, run.listed) == (1, 1)
        steps = await conn.fetch(
            "SELECT step, kind FROM arrears_reminders WHERE invoice_id = $1 ORDER BY step", invoice_id
        )
        assert [tuple(r) for r in steps] == [(0, "due_soon"), (2, "final_notice")]
        assert (await plate_standing(conn, plate, due_at + 15 * DAY)).blacklisted
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        assert await deliver_reminders(conn, send, due_at + 15 * DAY) == 2
        assert await deliver_reminders(conn, send, due_at + 15 * DAY) == 0
        assert {m["kind"] for m in sent} == {"due_soon", "final_notice"}
    await pay(pool, invoice_id, amount, due_at + 16 * DAY)
    async with pool.acquire() as conn:
        standing = await plate_standing(conn, plate, due_at + 16 * DAY)
        assert (standing.blacklisted, standing.arrears_fen) == (False, 0)
        actions = [r[0] for r in await conn.fetch("SELECT action FROM money_audit WHERE plate = $1", plate)]
        assert actions == ["deny_list.listed", "deny_list.lifted"]


async def test_a_write_off_clears_arrears_with_its_reason_audited(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        invoice_id, amount = await invoice(conn, await make_lot(conn), "豫A77777")
        later = ENTRY + 30 * DAY
        assert (await plate_standing(conn, "豫A77777", later)).arrears_fen == amount
        balance = await write_off(conn, WriteOff(invoice_id, None, "vehicle scrapped", "op-1"), later)
        assert balance is not None
        assert (balance.due_fen, balance.written_off_fen) == (0, amount)
        assert (await plate_standing(conn, "豫A77777", later)).arrears_fen == 0
        row = await conn.fetchrow(
            "SELECT actor, detail->>'reason' FROM money_audit WHERE invoice_id = $1", invoice_id
        )
        assert row is not None
        assert tuple(row) == ("op-1", "vehicle scrapped")
        assert await write_off(conn, WriteOff("inv_none", None, "x", "op-1"), later) is None


async def test_writing_off_what_is_overdue_lifts_the_deny_listing(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        invoice_id, _ = await invoice(conn, await make_lot(conn), "豫A77778")
        later = ENTRY + 30 * DAY
        assert await list_plate(conn, "豫A77778", "test", later, "test")
        await write_off_and_lift(conn, WriteOff(invoice_id, None, "hardship", "op-2"), later)
        assert not (await plate_standing(conn, "豫A77778", later)).blacklisted
