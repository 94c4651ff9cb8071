"""Receiving payment notifications in PostgreSQL: the steps of `PaymentBook`, under locks and constraints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from billing.adapters.arrears_store import lift_if_repaid
from billing.adapters.ledger_store import Conn, append, lock_invoice, session_follows
from billing.errors import NotificationRefusedError
from billing.notify import PROVIDERS, Capture, RefundDone, SignedHeaders, parse_notification, verify
from billing.payment_book import refusal_answer
from billing.payments import NotifyAnswer, PaymentOrder, settle_capture

BODY_KEPT = 4096  # characters of a body kept in the notification log: enough for any real event

LOG_DELIVERY = """
INSERT INTO payment_notifications (provider, nonce, received_at, answer, body)
VALUES ($1, $2, $3, 'received', $4)
ON CONFLICT ON CONSTRAINT one_delivery_per_nonce DO NOTHING
RETURNING notification_pk
"""
ANSWER_DELIVERY = """
UPDATE payment_notifications SET answer = $2, notification_id = $3, transaction_id = $4
WHERE notification_pk = $1
"""
PAYMENT = """
SELECT payment_id, invoice_id, provider, amount_fen, created_at, expires_at
FROM payments WHERE payment_id = $1 AND provider = $2
"""
CAPTURE_SEEN = "SELECT 1 FROM payment_captures WHERE provider = $1 AND transaction_id = $2"
INSERT_CAPTURE = """
INSERT INTO payment_captures (provider, transaction_id, payment_id, invoice_id, amount_fen,
                              applied_fen, captured_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
INSERT_REFUND = """
INSERT INTO refunds (refund_id, provider, transaction_id, payment_id, invoice_id, amount_fen, requested_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
LOCK_REFUND = "SELECT confirmed_at FROM refunds WHERE refund_id = $1 AND provider = $2 FOR UPDATE"
CONFIRM_REFUND = "UPDATE refunds SET confirmed_at = $2, provider_refund_id = $3 WHERE refund_id = $1"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One HTTP delivery of a notification, as received."""

    provider: str
    headers: SignedHeaders
    body: bytes


@dataclass(frozen=True, slots=True)
class Received:
    """The answer to one delivery, and the transaction it named (for the log line)."""

    answer: NotifyAnswer
    transaction_id: str | None = None


def loggable(body: bytes) -> str:
    """Return the text of a body the log can keep: bad UTF-8 and NUL (which text refuses) as U+FFFD."""
    return body.decode("utf-8", "replace").replace("\x00", "\ufffd")[:BODY_KEPT]


async def receive(pool: asyncpg.Pool, delivery: Delivery, secret: bytes, now: datetime) -> Received:
    """Handle one delivery; everything it changes commits together with its nonce, or not at all."""
    provider, headers, body = delivery.provider, delivery.headers, delivery.body
    if provider not in PROVIDERS:
        return Received(NotifyAnswer.UNKNOWN_PROVIDER)
    try:
        nonce = verify(secret, headers, body, now)
    except NotificationRefusedError as exc:
        return Received(refusal_answer(exc))
    async with pool.acquire() as conn, conn.transaction():
        logged = await conn.fetchval(LOG_DELIVERY, provider, nonce, now, loggable(body))
        if logged is None:
            return Received(NotifyAnswer.REPLAYED)
        try:
            notification = parse_notification(body)
        except NotificationRefusedError as exc:
            received = Received(refusal_answer(exc))
            await conn.execute(ANSWER_DELIVERY, logged, received.answer.value, None, None)
            return received
        if isinstance(notification, Capture):
            received = await _capture(conn, provider, notification, now)
        else:
            received = await _refund_done(conn, provider, notification)
        await conn.execute(
            ANSWER_DELIVERY,
            logged,
            received.answer.value,
            notification.notification_id,
            received.transaction_id,
        )
        return received


async def _capture(conn: Conn, provider: str, capture: Capture, now: datetime) -> Received:
    row = await conn.fetchrow(PAYMENT, capture.payment_id, provider)
    if row is None:
        return Received(NotifyAnswer.UNKNOWN_PAYMENT, capture.transaction_id)
    order = PaymentOrder(*row.values())
    locked = await lock_invoice(conn, order.invoice_id)  # serialises every capture of this invoice
    assert locked is not None  # a payment always names an invoice that has a balance row
    if await conn.fetchval(CAPTURE_SEEN, provider, capture.transaction_id):
        return Received(NotifyAnswer.DUPLICATE, capture.transaction_id)
    settlement = settle_capture(capture, order, locked.balance, now)
    await conn.execute(
        INSERT_CAPTURE,
        provider,
        capture.transaction_id,
        order.payment_id,
        order.invoice_id,
        capture.amount_fen,
        settlement.applied_fen,
        capture.captured_at,
    )
    balance = await append(conn, locked, settlement.entries, f"provider:{provider}")
    await session_follows(conn, order.invoice_id, balance, locked.due_at, now)
    if (refund := settlement.refund) is not None:
        await conn.execute(
            INSERT_REFUND,
            refund.refund_id,
            provider,
            refund.transaction_id,
            refund.payment_id,
            refund.invoice_id,
            refund.amount_fen,
            refund.requested_at,
        )
    if settlement.applied_fen:
        await lift_if_repaid(conn, locked.plate, now, f"provider:{provider}")
    return Received(NotifyAnswer.APPLIED, capture.transaction_id)


async def _refund_done(conn: Conn, provider: str, done: RefundDone) -> Received:
    row = await conn.fetchrow(LOCK_REFUND, done.refund_id, provider)
    if row is None:
        return Received(NotifyAnswer.UNKNOWN_REFUND)
    if row["confirmed_at"] is not None:
        return Received(NotifyAnswer.DUPLICATE)
    await conn.execute(CONFIRM_REFUND, done.refund_id, done.refunded_at, done.provider_refund_id)
    return Received(NotifyAnswer.REFUND_CONFIRMED)
