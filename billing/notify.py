# Copyright 2026 city-parking contributors (Apache-2.0)
"""Signed payment notifications: HMAC-SHA256 over timestamp, nonce and body; parsing of the events."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from billing.errors import NotificationRefusedError
from billing.tariff import require_aware

# A notification older or newer than this is refused as stale (WeChat Pay v3 uses 5 minutes too).
SIGNATURE_TOLERANCE = timedelta(minutes=5)
TIMESTAMP_HEADER = "X-Pay-Timestamp"  # Unix seconds, decimal
NONCE_HEADER = "X-Pay-Nonce"  # a random string, never used twice by the provider
SIGNATURE_HEADER = "X-Pay-Signature"  # lower-case hex HMAC-SHA256
PROVIDERS = frozenset({"wechatpay", "alipay"})  # the rails the notify route accepts
MAX_NONCE_LENGTH = 64  # a nonce is an id, not a payload
CAPTURE_EVENT = "TRANSACTION.SUCCESS"
REFUND_EVENT = "REFUND.SUCCESS"


def signed_message(timestamp: str, nonce: str, body: bytes) -> bytes:
    """Return what is signed: timestamp, nonce and body, each followed by a newline (WeChat Pay v3's)."""
    return f"{timestamp}\n{nonce}\n".encode() + body + b"\n"


def sign(secret: bytes, timestamp: str, nonce: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 signature of *body* at *timestamp* with *nonce*."""
    return hmac.new(secret, signed_message(timestamp, nonce, body), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    """The three signature headers of a notification, as received (any may be missing)."""

    timestamp: str | None
    nonce: str | None
    signature: str | None


def verify(
    secret: bytes,
    headers: SignedHeaders,
    body: bytes,
    now: datetime,
    tolerance: timedelta = SIGNATURE_TOLERANCE,
) -> str:
    """Return the nonce of a genuine, fresh notification, or raise `NotificationRefusedError`.

    The signature is compared in constant time. Replays (a nonce seen before) are the store's
    to refuse: it keeps every nonce it accepted.
    """
    require_aware("now", now)
    if not headers.timestamp or not headers.nonce or not headers.signature:
        raise NotificationRefusedError("missing_signature", "the signature headers are required")
    if not headers.timestamp.isascii() or not headers.timestamp.isdigit() or len(headers.timestamp) > 12:
        raise NotificationRefusedError("bad_timestamp", "the timestamp must be Unix seconds")
    if len(headers.nonce) > MAX_NONCE_LENGTH or not headers.nonce.isascii():
        raise NotificationRefusedError("bad_nonce", f"the nonce must be at most {MAX_NONCE_LENGTH} ASCII")
    expected = sign(secret, headers.timestamp, headers.nonce, body)
    if not hmac.compare_digest(
        expected.encode(), headers.signature.strip().lower().encode("ascii", "replace")
    ):
        raise NotificationRefusedError("bad_signature", "the signature does not match")
    sent_at = datetime.fromtimestamp(int(headers.timestamp), UTC)
    if abs(now - sent_at) > tolerance:
        raise NotificationRefusedError(
            "stale_timestamp", f"sent at {sent_at.isoformat()}, now {now.isoformat()}"
        )
    return headers.nonce


@dataclass(frozen=True, slots=True)
class Capture:
    """The provider captured money for one of our payments."""

    notification_id: str
    transaction_id: str  # the provider's id: the unit of idempotency
    payment_id: str  # our out_trade_no
    amount_fen: int
    captured_at: datetime


@dataclass(frozen=True, slots=True)
class RefundDone:
    """The provider carried out a refund we asked for."""

    notification_id: str
    provider_refund_id: str
    refund_id: str  # our out_refund_no
    amount_fen: int
    refunded_at: datetime


Notification = Capture | RefundDone


def parse_notification(body: bytes) -> Notification:
    """Return the event a verified body carries, or raise `NotificationRefusedError` (`bad_body`)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotificationRefusedError("bad_body", f"not JSON: {exc}") from exc
    reader = _Reader(doc, "")
    event, resource = reader.text("event_type"), _Reader(reader.object("resource"), "resource.")
    notification_id = reader.text("id")
    amount = _Reader(resource.object("amount"), "resource.amount.")
    if amount.optional_text("currency", "CNY") != "CNY":
        raise NotificationRefusedError("bad_body", "resource.amount.currency must be CNY")
    if event == CAPTURE_EVENT:
        if resource.text("trade_state") != "SUCCESS":
            raise NotificationRefusedError("bad_body", "resource.trade_state must be SUCCESS")
        return Capture(
            notification_id,
            resource.text("transaction_id"),
            resource.text("out_trade_no"),
            amount.fen("total"),
            resource.time("success_time"),
        )
    if event == REFUND_EVENT:
        if resource.text("refund_status") != "SUCCESS":
            raise NotificationRefusedError("bad_body", "resource.refund_status must be SUCCESS")
        return RefundDone(
            notification_id,
            resource.text("refund_id"),
            resource.text("out_refund_no"),
            amount.fen("refund"),
            resource.time("success_time"),
        )
    raise NotificationRefusedError("bad_body", f"unknown event_type {event!r}")


@dataclass(frozen=True, slots=True)
class _Reader:
    """Typed access to one JSON object, refusing by field path."""

    doc: Any
    prefix: str

    def _get(self, name: str) -> Any:
        if not isinstance(self.doc, dict) or name not in self.doc:
            raise NotificationRefusedError("bad_body", f"{self.prefix}{name} is required")
        return self.doc[name]

    def text(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str) or not 0 < len(value) <= 64:
            raise NotificationRefusedError("bad_body", f"{self.prefix}{name} must be a string of 1-64")
        return value

    def optional_text(self, name: str, default: str) -> str:
        return self.text(name) if isinstance(self.doc, dict) and name in self.doc else default

    def object(self, name: str) -> dict[str, Any]:
        value = self._get(name)
        if not isinstance(value, dict):
            raise NotificationRefusedError("bad_body", f"{self.prefix}{name} must be an object")
        return value

    def fen(self, name: str) -> int:
        value = self._get(name)
        if type(value) is not int or not 0 < value <= 100_000_000:
            raise NotificationRefusedError("bad_body", f"{self.prefix}{name} must be positive integer fen")
        return value

    def time(self, name: str) -> datetime:
        raw = self.text(name)
        try:
            value = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise NotificationRefusedError("bad_body", f"{self.prefix}{name} is not RFC 3339") from exc
        if value.tzinfo is None:
            raise NotificationRefusedError("bad_body", f"{self.prefix}{name} needs an offset")
        return value
