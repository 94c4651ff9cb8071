"""Hypothesis strategies for money: invoices, payment orders and provider deliveries good and bad."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from billing.notify import CAPTURE_EVENT, SignedHeaders, sign

SECRET = b"test-payment-secret"
T0 = datetime(2026, 11, 23, 2, 15, tzinfo=UTC)


def capture_body(notification_id: str, transaction_id: str, payment_id: str, amount_fen: int) -> bytes:
    """Return a TRANSACTION.SUCCESS body as the provider sends it."""
    doc = {
        "id": notification_id,
        "create_time": T0.isoformat(),
        "event_type": CAPTURE_EVENT,
        "resource": {
            "transaction_id": transaction_id,
            "out_trade_no": payment_id,
            "trade_state": "SUCCESS",
            "amount": {"total": amount_fen, "currency": "CNY"},
            "success_time": T0.isoformat(),
        },
    }
    return json.dumps(doc).encode()


def signed(body: bytes, at: datetime, nonce: str, secret: bytes = SECRET) -> SignedHeaders:
    """Return the headers a provider sends with *body* at *at*."""
    timestamp = str(int(at.timestamp()))
    return SignedHeaders(timestamp, nonce, sign(secret, timestamp, nonce, body))


@dataclass(frozen=True)
class Genuine:
    """A real capture the provider made: payment *order* index, transaction id, amount."""

    order: int
    transaction_id: str
    amount_fen: int


@dataclass(frozen=True)
class Delivery:
    """One HTTP delivery: of which capture, how (fresh, stale, forged, tampered, replay), when."""

    capture: int
    how: str
    delay_s: int


@dataclass(frozen=True)
class World:
    """Invoices (amounts), orders (invoice index each), captures and the deliveries, in order."""

    invoices: tuple[int, ...]
    orders: tuple[int, ...]
    captures: tuple[Genuine, ...]
    deliveries: tuple[Delivery, ...]


HOWS = ("fresh", "fresh", "fresh", "stale", "forged", "tampered", "replay")


@st.composite
def worlds(draw: st.DrawFn) -> World:
    """Draw invoices, orders (an invoice may be ordered twice), captures and shuffled deliveries."""
    invoices = tuple(draw(st.lists(st.integers(1, 5000), min_size=1, max_size=4)))
    # At most five orders: an invoice takes no more open ones (billing.payments.MAX_OPEN_ORDERS).
    orders = tuple(draw(st.lists(st.integers(0, len(invoices) - 1), min_size=1, max_size=5)))
    picked = draw(st.lists(st.integers(0, len(orders) - 1), min_size=1, max_size=6))
    captures = tuple(
        Genuine(order, f"42000{i:05d}", draw(st.sampled_from([invoices[orders[order]], 1, 9999])))
        for i, order in enumerate(picked)
    )
    deliveries = draw(
        st.lists(
            st.builds(
                Delivery,
                st.integers(0, len(captures) - 1),
                st.sampled_from(HOWS),
                st.integers(0, 200),
            ),
            min_size=1,
            max_size=20,
        )
    )
    return World(invoices, orders, captures, tuple(deliveries))


__all__ = ["SECRET", "T0", "Delivery", "Genuine", "World", "capture_body", "signed", "timedelta", "worlds"]
