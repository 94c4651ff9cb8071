# Copyright 2026 city-parking contributors (Apache-2.0)
"""Payments: ordering one for an invoice, settling a capture (applied, or refunded), notify answers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from billing.errors import BillingError
from billing.ledger import Balance, EntryKind, LedgerEntry, split_capture
from billing.notify import Capture, sign
from billing.tariff import require_aware

PAYMENT_TTL = timedelta(minutes=30)  # an unpaid order expires, as WeChat Pay's prepay ids do (2 h max)
MAX_OPEN_ORDERS = 5  # unexpired, unpaid orders per invoice: an app retrying is fine, a loop is not


class InvoiceSettledError(BillingError, ValueError):
    """Raised when a payment is asked for an invoice with nothing due."""

    def __init__(self, invoice_id: str) -> None:
        super().__init__(f"invoice {invoice_id!r} has nothing due")
        self.invoice_id = invoice_id


class TooManyOrdersError(BillingError, ValueError):
    """Raised when an invoice already has `MAX_OPEN_ORDERS` unexpired, unpaid payment orders."""

    def __init__(self, invoice_id: str, open_orders: int) -> None:
        super().__init__(f"invoice {invoice_id!r} has {open_orders} open payment orders; pay one or wait")
        self.invoice_id = invoice_id
        self.open_orders = open_orders


@dataclass(frozen=True, slots=True)
class PaymentOrder:
    """One attempt to pay an invoice through one provider; `payment_id` is the out_trade_no."""

    payment_id: str
    invoice_id: str
    provider: str
    amount_fen: int
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Payable:
    """An invoice as a new payment order sees it: what is due, and how many orders are open."""

    invoice_id: str
    balance: Balance
    open_orders: int = 0  # unexpired orders without a capture


def order_payment(payable: Payable, provider: str, payment_id: str, now: datetime) -> PaymentOrder:
    """Return a payment order for what is due on an invoice.

    Raises `InvoiceSettledError` when nothing is due, `TooManyOrdersError` when the open orders
    already reach `MAX_OPEN_ORDERS`.
    """
    require_aware("now", now)
    if payable.balance.due_fen <= 0:
        raise InvoiceSettledError(payable.invoice_id)
    if payable.open_orders >= MAX_OPEN_ORDERS:
        raise TooManyOrdersError(payable.invoice_id, payable.open_orders)
    due = payable.balance.due_fen
    return PaymentOrder(payment_id, payable.invoice_id, provider, due, now, now + PAYMENT_TTL)


def app_parameters(order: PaymentOrder, secret: bytes, nonce: str, notify_url: str) -> dict[str, Any]:
    """Return what the driver's app hands the provider's SDK: the order, signed by us."""
    timestamp = str(int(order.created_at.timestamp()))
    body = {
        "out_trade_no": order.payment_id,
        "amount_fen": order.amount_fen,
        "currency": "CNY",
        "notify_url": notify_url,
        "time_expire": order.expires_at.isoformat(),
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return body | {
        "timestamp": timestamp,
        "nonce": nonce,
        "signature": sign(secret, timestamp, nonce, canonical),
    }


def refund_id_for(transaction_id: str) -> str:
    """Return our refund id (out_refund_no) for the excess of *transaction_id*: one per capture."""
    return "rf_" + hashlib.sha256(transaction_id.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class RefundOrder:
    """Money to send back through the provider: what a capture brought beyond what was due."""

    refund_id: str
    invoice_id: str
    payment_id: str
    transaction_id: str
    amount_fen: int
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class Settlement:
    """What one capture does: its ledger entries and, for an excess, the refund to send."""

    entries: tuple[LedgerEntry, ...]
    applied_fen: int
    refund: RefundOrder | None


def settle_capture(capture: Capture, order: PaymentOrder, balance: Balance, now: datetime) -> Settlement:
    """Return the settlement of a first-seen *capture* on the invoice of *order* at *balance*.

    The capture is always recorded (money the provider holds for us is never lost); what is due
    is applied, the rest is refunded at once: a capture for a paid invoice is refunded whole.
    """
    applied, excess = split_capture(balance, capture.amount_fen)
    captured = LedgerEntry(
        order.invoice_id, EntryKind.CAPTURED, capture.amount_fen, capture.captured_at, capture.transaction_id
    )
    if not excess:
        return Settlement((captured,), applied, None)
    refund = RefundOrder(
        refund_id_for(capture.transaction_id),
        order.invoice_id,
        order.payment_id,
        capture.transaction_id,
        excess,
        now,
    )
    refunded = LedgerEntry(order.invoice_id, EntryKind.REFUNDED, excess, now, refund.refund_id)
    return Settlement((captured, refunded), applied, refund)


class NotifyAnswer(StrEnum):
    """How the notify route answers a provider; `ok` answers stop its retries."""

    APPLIED = "applied"  # a new capture, applied (and any excess refunded)
    DUPLICATE = "duplicate"  # a capture or refund already recorded: nothing moves, answer success
    REFUND_CONFIRMED = "refund_confirmed"  # the provider carried out a refund we asked for
    MISSING_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    BAD_TIMESTAMP = "bad_timestamp"
    BAD_NONCE = "bad_nonce"
    STALE_TIMESTAMP = "stale_timestamp"
    REPLAYED = "replayed"  # the same nonce again: a replay, never a provider retry
    BAD_BODY = "bad_body"
    UNKNOWN_PAYMENT = "unknown_payment"  # no such out_trade_no: the provider retries, reconciliation lists it
    UNKNOWN_REFUND = "unknown_refund"
    UNKNOWN_PROVIDER = "unknown_provider"

    @property
    def ok(self) -> bool:
        """Tell whether the provider is told the notification was received."""
        return self in {NotifyAnswer.APPLIED, NotifyAnswer.DUPLICATE, NotifyAnswer.REFUND_CONFIRMED}

    @property
    def http_status(self) -> int:
        """Return the HTTP status: 204 success; 401 signature problems; 404 unknown; 400 otherwise."""
        if self.ok:
            return 204
        if self in {NotifyAnswer.MISSING_SIGNATURE, NotifyAnswer.BAD_SIGNATURE}:
            return 401
        if self in {NotifyAnswer.UNKNOWN_PAYMENT, NotifyAnswer.UNKNOWN_REFUND, NotifyAnswer.UNKNOWN_PROVIDER}:
            return 404
        return 400

    @property
    def provider_code(self) -> str:
        """Return the ``code`` of the JSON failure body, in WeChat Pay v3's words."""
        if self in {NotifyAnswer.MISSING_SIGNATURE, NotifyAnswer.BAD_SIGNATURE}:
            return "SIGN_ERROR"
        if self in {NotifyAnswer.UNKNOWN_PAYMENT, NotifyAnswer.UNKNOWN_REFUND, NotifyAnswer.UNKNOWN_PROVIDER}:
            return "RESOURCE_NOT_EXISTS"
        return "FAIL" if self.ok else "PARAM_ERROR"
