# Copyright 2026 city-parking contributors (Apache-2.0)
"""The notify procedure in memory: the reference the database store is checked against."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from billing.errors import NotificationRefusedError
from billing.ledger import Balance, LedgerEntry
from billing.notify import PROVIDERS, Capture, RefundDone, SignedHeaders, parse_notification, verify
from billing.payments import NotifyAnswer, PaymentOrder, RefundOrder, settle_capture


def refusal_answer(exc: NotificationRefusedError) -> NotifyAnswer:
    """Return the answer for a refused notification (its reason names the answer)."""
    return NotifyAnswer(exc.reason)


@dataclass
class PaymentBook:
    """Invoices, payment orders and the ledger in memory, receiving notifications as the store does.

    Steps, in order: known provider; signature and freshness (`verify`); a nonce seen before is a
    replay; the body parses; a capture whose provider transaction is known is a duplicate;
    an unknown payment is refused; otherwise `settle_capture`. A refund confirmation marks its
    refund once. The store does the same with row locks and unique constraints.
    """

    secret: bytes
    orders: dict[str, PaymentOrder] = field(default_factory=dict)
    balances: dict[str, Balance] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)
    nonces: set[tuple[str, str]] = field(default_factory=set)
    transactions: set[str] = field(default_factory=set)
    refunds: dict[str, RefundOrder] = field(default_factory=dict)
    confirmed_refunds: set[str] = field(default_factory=set)

    def record(self, entry: LedgerEntry) -> None:
        """Append *entry* to the ledger (refusing an illegal one)."""
        self.balances[entry.invoice_id] = self.balances.get(entry.invoice_id, Balance()).with_entry(entry)
        self.entries.append(entry)

    def receive(self, provider: str, headers: SignedHeaders, body: bytes, now: datetime) -> NotifyAnswer:
        """Handle one delivery of a notification and return the answer for the provider."""
        if provider not in PROVIDERS:
            return NotifyAnswer.UNKNOWN_PROVIDER
        try:
            nonce = verify(self.secret, headers, body, now)
        except NotificationRefusedError as exc:
            return refusal_answer(exc)
        if (provider, nonce) in self.nonces:
            return NotifyAnswer.REPLAYED
        self.nonces.add((provider, nonce))
        try:
            notification = parse_notification(body)
        except NotificationRefusedError as exc:
            return refusal_answer(exc)
        if isinstance(notification, Capture):
            return self._capture(notification, now)
        return self._refund_done(notification)

    def _refund_done(self, notification: RefundDone) -> NotifyAnswer:
        if notification.refund_id not in self.refunds:
            return NotifyAnswer.UNKNOWN_REFUND
        if notification.refund_id in self.confirmed_refunds:
            return NotifyAnswer.DUPLICATE
        self.confirmed_refunds.add(notification.refund_id)
        return NotifyAnswer.REFUND_CONFIRMED

    def _capture(self, capture: Capture, now: datetime) -> NotifyAnswer:
        if capture.transaction_id in self.transactions:
            return NotifyAnswer.DUPLICATE
        order = self.orders.get(capture.payment_id)
        if order is None:
            return NotifyAnswer.UNKNOWN_PAYMENT
        settlement = settle_capture(capture, order, self.balances.get(order.invoice_id, Balance()), now)
        for entry in settlement.entries:
            self.record(entry)
        self.transactions.add(capture.transaction_id)
        if settlement.refund is not None:
            self.refunds[settlement.refund.refund_id] = settlement.refund
        return NotifyAnswer.APPLIED
