"""Payment orders and refunds in PostgreSQL: starting a payment, the refund outbox."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime

from billing.adapters.ledger_store import Conn, lock_invoice
from billing.payments import Payable, PaymentOrder, RefundOrder, order_payment

INSERT_PAYMENT = """
INSERT INTO payments (payment_id, invoice_id, provider, amount_fen, account_id, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
OPEN_ORDERS = """
SELECT count(*) FROM payments p
WHERE p.invoice_id = $1 AND p.expires_at > $2
  AND NOT EXISTS (SELECT 1 FROM payment_captures c WHERE c.payment_id = p.payment_id)
"""
CLAIM_REFUNDS = """
SELECT refund_id, invoice_id, payment_id, transaction_id, amount_fen, requested_at, provider
FROM refunds WHERE sent_at IS NULL AND attempts < $1 ORDER BY requested_at LIMIT $2 FOR UPDATE SKIP LOCKED
"""
MARK_SENT = "UPDATE refunds SET sent_at = $2, attempts = attempts + 1 WHERE refund_id = $1"
MARK_FAILED = "UPDATE refunds SET attempts = attempts + 1, last_error = $2 WHERE refund_id = $1"


def new_payment_id() -> str:
    """Return a fresh out_trade_no (32 characters at most, as WeChat Pay allows)."""
    return "pay_" + secrets.token_hex(12)


async def start_payment(
    conn: Conn, invoice_id: str, provider: str, account_id: str | None, now: datetime
) -> PaymentOrder | None:
    """Record a payment order for what is due on an invoice; None if there is no such invoice.

    Raises `InvoiceSettledError` when nothing is due. Each call is a new order (a new out_trade_no):
    an app that pays two orders pays twice, and the second capture is refunded.
    """
    async with conn.transaction():
        locked = await lock_invoice(conn, invoice_id)
        if locked is None:
            return None
        open_orders = await conn.fetchval(OPEN_ORDERS, invoice_id, now)
        payable = Payable(invoice_id, locked.balance, open_orders)
        order = order_payment(payable, provider, new_payment_id(), now)
        await conn.execute(
            INSERT_PAYMENT,
            order.payment_id,
            order.invoice_id,
            order.provider,
            order.amount_fen,
            account_id,
            order.created_at,
            order.expires_at,
        )
    return order


async def send_refunds(
    conn: Conn,
    send: Callable[[str, RefundOrder], Awaitable[None]],
    now: datetime,
    batch: int = 100,
    max_attempts: int = 20,
) -> int:
    """Ask the provider to carry out pending refunds through *send*; return how many were accepted.

    A refund is sent at least once: a crash after the provider accepted it sends it again, and the
    provider deduplicates by out_refund_no (the refund id), as real rails do.
    """
    sent = 0
    async with conn.transaction():
        for row in await conn.fetch(CLAIM_REFUNDS, max_attempts, batch):
            refund = RefundOrder(
                row["refund_id"],
                row["invoice_id"],
                row["payment_id"],
                row["transaction_id"],
                row["amount_fen"],
                row["requested_at"],
            )
            try:
                await send(row["provider"], refund)
            except Exception as exc:  # any failure of the provider is recorded and retried
                await conn.execute(MARK_FAILED, refund.refund_id, repr(exc)[:500])
                continue
            await conn.execute(MARK_SENT, refund.refund_id, now)
            sent += 1
    return sent
