"""The money store on a real PostgreSQL: one invoice per session, append-only ledger, notify like the book."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.adapters.ledger_store import raise_invoice
from billing.adapters.notify_store import Delivery, receive
from billing.adapters.payments_store import start_payment
from billing.ledger import Balance, EntryKind, LedgerEntry
from billing.payment_book import PaymentBook
from billing.payments import InvoiceSettledError, NotifyAnswer, PaymentOrder
from tests.integration.money.helpers import invoice, make_lot, stay
from tests.strategies_money import SECRET, T0, World, capture_body, signed, worlds

pytestmark = pytest.mark.db


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(database_url, min_size=1, max_size=4) as created:
        yield created


async def test_an_invoice_is_raised_once_per_session_even_concurrently(pool: asyncpg.Pool) -> None:
    """Ten concurrent raises of one session's invoice leave one invoice and one `invoiced` entry."""
    async with pool.acquire() as conn:
        lot = await make_lot(conn)
    priced = stay(lot, "豫A10001")

    async def raise_once() -> str | None:
        async with pool.acquire() as conn:
            return await raise_invoice(conn, priced, priced.quote.exit)

    ids = set(await asyncio.gather(*(raise_once() for _ in range(10))))
    assert len(ids) == 1
    (invoice_id,) = ids
    entries = await pool.fetch(
        "SELECT kind, amount_fen FROM ledger_entries WHERE invoice_id = $1", invoice_id
    )
    assert [(r["kind"], r["amount_fen"]) for r in entries] == [("invoiced", priced.quote.amount_fen)]
    lines = await pool.fetchval(
        "SELECT jsonb_array_length(lines) FROM invoices WHERE invoice_id = $1", invoice_id
    )
    assert lines == len(priced.quote.lines)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger_entries SET amount_fen = 1",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_entries CASCADE",
        "UPDATE invoices SET amount_fen = 1",
        "DELETE FROM invoices",
    ],
)
async def test_money_records_refuse_update_and_delete(pool: asyncpg.Pool, statement: str) -> None:
    """The ledger and the invoices are append-only: SQLSTATE 23001 (restrict_violation)."""
    async with pool.acquire() as conn:
        await invoice(conn, await make_lot(conn), "豫A10002")
        with pytest.raises(asyncpg.RestrictViolationError, match="append-only"):
            await conn.execute(statement)


async def test_a_capture_applies_and_a_second_capture_is_refunded(pool: asyncpg.Pool) -> None:
    """Two payments of one invoice: the first applies, the second is recorded and refunded whole."""
    async with pool.acquire() as conn:
        invoice_id, amount = await invoice(conn, await make_lot(conn), "豫A10003")
        first = await start_payment(conn, invoice_id, "wechatpay", None, T0)
        second = await start_payment(conn, invoice_id, "wechatpay", None, T0)
    assert first is not None
    assert second is not None
    for number, order in enumerate((first, second)):
        body = capture_body(f"EV-{number}", f"tx-{order.payment_id}", order.payment_id, amount)
        delivery = Delivery("wechatpay", signed(body, T0, f"n-{order.payment_id}"), body)
        assert (await receive(pool, delivery, SECRET, T0)).answer is NotifyAnswer.APPLIED
    row = await pool.fetchrow("SELECT * FROM invoice_balances WHERE invoice_id = $1", invoice_id)
    assert row is not None
    assert (row["captured_fen"], row["refunded_fen"], row["due_fen"]) == (2 * amount, amount, 0)
    refund = await pool.fetchrow(
        "SELECT payment_id, amount_fen FROM refunds WHERE invoice_id = $1", invoice_id
    )
    assert refund is not None
    assert tuple(refund) == (second.payment_id, amount)
    async with pool.acquire() as conn:
        with pytest.raises(InvoiceSettledError):
            await start_payment(conn, invoice_id, "wechatpay", None, T0)


async def test_concurrent_deliveries_of_one_capture_apply_it_once(pool: asyncpg.Pool) -> None:
    """The provider's retries racing each other (fresh nonces): one capture, the rest duplicates."""
    async with pool.acquire() as conn:
        invoice_id, amount = await invoice(conn, await make_lot(conn), "豫A10004")
        order = await start_payment(conn, invoice_id, "alipay", None, T0)
    assert order is not None
    body = capture_body("EV-x", "tx-race", order.payment_id, amount)
    answers = await asyncio.gather(
        *(
            receive(pool, Delivery("alipay", signed(body, T0, f"race-{i}"), body), SECRET, T0)
            for i in range(8)
        )
    )
    assert sorted(a.answer.value for a in answers) == ["applied"] + ["duplicate"] * 7
    captured = await pool.fetchval(
        "SELECT count(*) FROM ledger_entries WHERE invoice_id = $1 AND kind = 'captured'", invoice_id
    )
    assert captured == 1


async def check_like_the_book(url: str, world: World) -> None:
    """Run the same hostile deliveries through the database and the book; compare everything."""
    conn = await asyncpg.connect(url)
    try:
        lot = await make_lot(conn)
        book = PaymentBook(SECRET)
        invoice_ids, owed = [], {}
        for hours in range(len(world.invoices)):
            invoice_id, amount = await invoice(conn, lot, "豫B20000", hours=1 + hours)
            invoice_ids.append(invoice_id)
            owed[world.invoices[hours]] = amount
            book.record(LedgerEntry(invoice_id, EntryKind.INVOICED, amount, T0))
        orders = []
        for invoice_index in world.orders:
            order = await start_payment(conn, invoice_ids[invoice_index], "wechatpay", None, T0)
            assert order is not None
            book.orders[order.payment_id] = PaymentOrder(
                order.payment_id, order.invoice_id, "wechatpay", order.amount_fen, T0, T0
            )
            orders.append(order.payment_id)
    finally:
        await conn.close()
    async with asyncpg.create_pool(url, min_size=1, max_size=2) as pool:
        sent: list[tuple[object, bytes]] = []
        for number, delivery in enumerate(world.deliveries):
            capture = world.captures[delivery.capture]
            tx = f"{orders[0]}-{capture.transaction_id}"
            # A capture of "the invoice's amount" in the drawn world pays the real invoice's amount here.
            amount = owed.get(capture.amount_fen, capture.amount_fen)
            body = capture_body(f"EV-{number}", tx, orders[capture.order], amount)
            now = T0 + timedelta(seconds=delivery.delay_s)
            how = "fresh" if delivery.how == "replay" and not sent else delivery.how
            headers = signed(body, now, f"{orders[0]}-{number}")
            if how == "stale":
                headers = signed(body, now - timedelta(minutes=6), f"{orders[0]}-{number}")
            elif how == "forged":
                headers = signed(body, now, f"{orders[0]}-{number}", b"guessed")
            elif how == "tampered":
                body = body.replace(b'"total": ', b'"total": 1')
            elif how == "replay":
                headers, body = sent[-1]  # type: ignore[assignment]
            if how == "fresh":
                sent.append((headers, body))
            expected = book.receive("wechatpay", headers, body, now)
            got = await receive(pool, Delivery("wechatpay", headers, body), SECRET, now)
            assert got.answer is expected
        for invoice_id in invoice_ids:
            row = await pool.fetchrow("SELECT * FROM invoice_balances WHERE invoice_id = $1", invoice_id)
            assert row is not None
            mine = book.balances[invoice_id]
            assert (row["captured_fen"], row["refunded_fen"], row["due_fen"]) == (
                mine.captured_fen,
                mine.refunded_fen,
                mine.due_fen,
            )
            kinds = await pool.fetch(
                "SELECT kind, amount_fen FROM ledger_entries WHERE invoice_id = $1"
                " AND kind IN ('captured', 'refunded') ORDER BY entry_id",
                invoice_id,
            )
            assert [(r["kind"], r["amount_fen"]) for r in kinds] == [
                (e.kind.value, e.amount_fen)
                for e in book.entries
                if e.invoice_id == invoice_id and e.kind in {EntryKind.CAPTURED, EntryKind.REFUNDED}
            ]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(world=worlds())
def test_the_store_answers_and_moves_money_exactly_like_the_pure_book(
    database_url: str, world: World
) -> None:
    """Hostile deliveries (forged, stale, tampered, replayed, duplicated, reordered) on the real database."""
    asyncio.run(check_like_the_book(database_url, world))


SUMS = st.tuples(*(st.integers(0, 10_000) for _ in range(5)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sums=SUMS)
def test_the_generated_due_column_is_balance_due_fen(database_url: str, sums: tuple[int, ...]) -> None:
    """invoice_balances.due_fen (SQL) agrees with Balance.due_fen (the pure rule); never below zero."""

    async def check() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            invoice_id, _ = await invoice(conn, await make_lot(conn), "豫C30000")
            update = (
                "UPDATE invoice_balances SET invoiced_fen = $2, adjusted_fen = $3, captured_fen = $4,"
                " refunded_fen = $5, written_off_fen = $6 WHERE invoice_id = $1 RETURNING due_fen"
            )
            expected = Balance(*sums).due_fen
            if expected < 0:
                with pytest.raises(asyncpg.CheckViolationError):
                    await conn.fetchval(update, invoice_id, *sums)
            else:
                assert await conn.fetchval(update, invoice_id, *sums) == expected
        finally:
            await conn.close()

    asyncio.run(check())
