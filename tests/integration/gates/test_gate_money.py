"""Money at the gate: pay-later exits raise one invoice; arrears and the deny list hold; repayment opens."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from itertools import count

import asyncpg
import pytest

from billing.adapters.arrears_store import list_plate, run_arrears
from billing.adapters.drivers_store import bind_plate, put_account, set_consent
from billing.adapters.ledger_store import WriteOff, write_off
from billing.adapters.notify_store import Delivery, receive
from billing.adapters.payments_store import start_payment
from billing.arrears import ArrearsPolicy
from device_gateway.gate_pricing import StayPricer, price_closed_sessions
from device_gateway.gate_store import StoredCommand, decide_read
from parking_core.gates import Action, Lane, PlateRead, Reason
from parking_core.ids import LotId
from tests.integration.gates.gate_helpers import provision_gate_lots
from tests.strategies_gates import gate_device
from tests.strategies_money import SECRET, capture_body, signed

pytestmark = [pytest.mark.db]
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
SEQ = count(1)


@pytest.fixture
def conn(db: asyncpg.Connection) -> asyncpg.Connection:
    """The test's connection (the shared ``db`` fixture)."""
    return db


async def gated_lot(conn: asyncpg.Connection) -> LotId:
    lot = LotId(f"gm-{secrets.token_hex(3)}")
    await provision_gate_lots(conn, [lot], capacity=10)
    return lot


async def driver(conn: asyncpg.Connection, plate: str, *, consent: bool = True) -> None:
    account = f"acc-{secrets.token_hex(4)}"
    await put_account(conn, account, "")
    await bind_plate(conn, account, plate, "test", T0)
    await set_consent(conn, account, consent, "test", T0)


async def read(conn: asyncpg.Connection, lot: LotId, lane: Lane, plate: str, at: datetime) -> StoredCommand:
    message = PlateRead(gate_device(lot, lane), lot, next(SEQ), at, lane, plate)
    return await decide_read(conn, message, "blue", at, StayPricer())


async def stay(
    conn: asyncpg.Connection, lot: LotId, plate: str, entry: datetime, hours: float
) -> StoredCommand:
    entered = await read(conn, lot, Lane.ENTRY, plate, entry)
    assert entered.command.action is Action.OPEN
    return await read(conn, lot, Lane.EXIT, plate, entry + timedelta(hours=hours))


async def invoice_of(conn: asyncpg.Connection, command: StoredCommand) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT i.invoice_id, i.amount_fen, s.state FROM invoices i JOIN sessions s"
        " ON s.session_id::text = i.session_id WHERE i.session_id = $1",
        str(command.session_id),
    )
    assert row is not None
    return row


async def pay(pool_url: str, conn: asyncpg.Connection, invoice_id: str, at: datetime) -> None:
    order = await start_payment(conn, invoice_id, "wechatpay", None, at)
    assert order is not None
    body = capture_body("EV", f"tx-{order.payment_id}", order.payment_id, order.amount_fen)
    async with asyncpg.create_pool(pool_url, min_size=1, max_size=1) as pool:
        got = await receive(pool, Delivery("wechatpay", signed(body, at, order.payment_id), body), SECRET, at)
    assert got.answer.ok


async def test_an_eligible_plate_leaves_at_once_and_one_invoice_follows(conn: asyncpg.Connection) -> None:
    """open / pay_later with the amount; the same read again: the same command, still one invoice."""
    lot, plate = await gated_lot(conn), "豫A31001"
    await driver(conn, plate)
    exit_command = await stay(conn, lot, plate, T0, 3.1)
    c = exit_command.command
    assert (c.action, c.reason) == (Action.OPEN, Reason.PAY_LATER)
    assert c.amount_fen > 0
    invoice = await invoice_of(conn, exit_command)
    assert (invoice["amount_fen"], invoice["state"]) == (c.amount_fen, "invoiced")
    again = await decide_read(
        conn,
        PlateRead(
            gate_device(lot, Lane.EXIT), lot, next(SEQ) - 1, T0 + timedelta(hours=3.1), Lane.EXIT, plate
        ),
        "blue",
        T0,
        StayPricer(),
    )
    assert again.duplicate
    assert again.command_id == exit_command.command_id
    assert await conn.fetchval("SELECT count(*) FROM invoices WHERE plate = $1", plate) == 1


@pytest.mark.parametrize("consent", [False, None])
async def test_without_an_account_or_consent_the_exit_holds_for_payment(
    conn: asyncpg.Connection, consent: bool | None
) -> None:
    lot, plate = await gated_lot(conn), f"豫A3{secrets.randbelow(9000) + 1000}"
    if consent is not None:
        await driver(conn, plate, consent=consent)
    c = (await stay(conn, lot, plate, T0, 2)).command
    assert (c.action, c.reason) == (Action.HOLD, Reason.PAYMENT_DUE)
    assert c.amount_fen > 0
    assert await conn.fetchval("SELECT count(*) FROM invoices WHERE plate = $1", plate) == 0


async def test_a_deny_listed_plate_is_held_and_repayment_opens_the_following_exit(
    conn: asyncpg.Connection, database_url: str
) -> None:
    """Owing past due → listed by the arrears run → held `blacklisted`; repaying lifts it at once."""
    lot, plate = await gated_lot(conn), "豫A31002"
    await driver(conn, plate)
    first = await stay(conn, lot, plate, T0, 3)
    old = await invoice_of(conn, first)
    later = T0 + timedelta(days=20)  # overdue by 17 days: over the 15-day escalation
    assert (await run_arrears(conn, later, ArrearsPolicy())).listed >= 1
    assert (
        await conn.fetchval("SELECT state FROM sessions WHERE session_id = $1", first.session_id)
        == "in_arrears"
    )
    held = await stay(conn, lot, plate, later, 2)
    assert (held.command.action, held.command.reason) == (Action.HOLD, Reason.BLACKLISTED)
    assert held.command.amount_fen > 0
    await pay(database_url, conn, old["invoice_id"], later + timedelta(hours=2, minutes=5))
    assert await conn.fetchval("SELECT state FROM sessions WHERE session_id = $1", first.session_id) == "paid"
    following = await read(conn, lot, Lane.EXIT, plate, later + timedelta(hours=2, minutes=10))
    assert (following.command.action, following.command.reason) == (Action.OPEN, Reason.PAY_LATER)
    assert following.session_id == held.session_id


async def test_arrears_at_the_lot_limit_hold_and_a_lot_may_refuse_entry_to_listed_plates(
    conn: asyncpg.Connection,
) -> None:
    lot, plate = await gated_lot(conn), "豫A31003"
    await driver(conn, plate)
    await conn.execute(
        "INSERT INTO lot_money_policies (lot_id, arrears_limit_fen, deny_entry_when_blacklisted)"
        " VALUES ($1, 1, true)",
        lot,
    )
    first = await stay(conn, lot, plate, T0, 3)
    assert first.command.reason is Reason.PAY_LATER
    later = T0 + timedelta(days=5)  # past due: arrears at the limit of 1 fen
    held = await stay(conn, lot, plate, later, 1)
    assert (held.command.action, held.command.reason) == (Action.HOLD, Reason.ARREARS)
    await list_plate(conn, plate, "test", later, "test")
    refused = await read(conn, lot, Lane.ENTRY, "豫A31003", later + timedelta(days=1))
    assert (refused.command.action, refused.command.reason) == (Action.HOLD, Reason.BLACKLISTED)
    invoice = await invoice_of(conn, first)
    await write_off(conn, WriteOff(invoice["invoice_id"], None, "goodwill", "op"), later)
    assert (
        await conn.fetchval("SELECT state FROM sessions WHERE session_id = $1", first.session_id)
        == "written_off"
    )


async def test_an_on_street_stay_with_a_plate_gets_its_invoice_when_priced(conn: asyncpg.Connection) -> None:
    """A bay stay priced by the gateway's sweep: with a plate, the bill follows it; without, none."""
    lot = await gated_lot(conn)  # its tariff is provisioned; a bay session needs a spot of the lot
    await conn.execute(
        "INSERT INTO spots (spot_id, lot_id) VALUES ($1, $2), ($3, $2)", f"{lot}-s1", lot, f"{lot}-s2"
    )
    ended = T0 + timedelta(hours=3)
    for spot, plate in ((f"{lot}-s1", "豫A31004"), (f"{lot}-s2", None)):
        await conn.execute(
            "INSERT INTO sessions"
            " (session_id, lot_id, kind, state, plate, spot_id, started_at, ended_at, closed_by)"
            " VALUES (gen_random_uuid(), $1, 'bay', 'closed', $2, $3, $4, $5, 'sensor')",
            lot,
            plate,
            spot,
            T0,
            ended,
        )
    assert await price_closed_sessions(conn, StayPricer()) >= 2
    rows = await conn.fetch("SELECT plate, state FROM sessions WHERE lot_id = $1 ORDER BY plate", lot)
    assert [tuple(r) for r in rows] == [("豫A31004", "invoiced"), (None, "priced")]
    invoice = await conn.fetchrow("SELECT amount_fen, due_at FROM invoices WHERE plate = '豫A31004'")
    assert invoice is not None
    assert invoice["amount_fen"] > 0
    assert invoice["due_at"] == ended + timedelta(days=3)
