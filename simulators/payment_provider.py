"""A payment provider's rails, simulated: pay and refund, signed notifications with faults, statements."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import random
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import structlog
from aiohttp import web

from billing.notify import (
    CAPTURE_EVENT,
    NONCE_HEADER,
    PROVIDERS,
    REFUND_EVENT,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
)
from billing.reconcile import STATEMENT_COLUMNS

log = structlog.get_logger("simulators.payments")
SHANGHAI = ZoneInfo("Asia/Shanghai")
# WeChat Pay retries a notification 15 times over 24 h (15 s, 15 s, 30 s, 3 min, 10 min, ...); the
# simulation keeps the shape on a short clock.
RETRY_DELAYS_S = (0.05, 0.05, 0.1, 0.2, 0.5, 1.0, 1.0, 2.0, 2.0, 2.0)


@dataclass(frozen=True)
class ProviderFaults:
    """How badly the rails behave: extra copies, random delays (reordering), late deliveries."""

    duplicate: float = 0.0  # chance a notification is sent twice (two independent deliveries)
    max_delay_s: float = 0.0  # every delivery waits up to this long first: notifications reorder
    late: float = 0.0  # chance a notification is held back by `late_delay_s`
    late_delay_s: float = 2.0
    retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S


@dataclass(frozen=True)
class Movement:
    """A payment or refund the provider carried out: a line of its daily statement."""

    provider: str
    kind: str  # payment or refund
    at: datetime
    transaction_id: str
    out_trade_no: str
    amount_fen: int
    refund_id: str = ""
    out_refund_no: str = ""


@dataclass
class _Delivery:
    url: str
    body: bytes
    due: float  # loop time
    attempt: int = 0


class SignatureError(ValueError):
    """Raised when a merchant's request to the provider is not signed with the shared secret."""


@dataclass
class ProviderSimulator:
    """Both providers' rails in one process; `app()` serves them over HTTP."""

    secret: bytes
    faults: ProviderFaults = field(default_factory=ProviderFaults)
    seed: int = 0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    movements: list[Movement] = field(default_factory=list)
    orders: dict[tuple[str, str], Movement] = field(default_factory=dict)  # (provider, out_trade_no)
    refunds: dict[tuple[str, str], Movement] = field(default_factory=dict)  # (provider, out_refund_no)
    delivered: Counter[str] = field(default_factory=Counter)  # notification id -> 2xx answers
    answers: Counter[int] = field(default_factory=Counter)  # HTTP status -> count
    _pending: list[_Delivery] = field(default_factory=list)
    _in_flight: int = 0
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def pay(self, provider: str, params: dict[str, Any]) -> Movement:
        """The driver pays an order in the provider's app: the capture, and its notification queued.

        Refuses parameters not signed by the merchant; paying an order twice returns the first
        payment (ORDERPAID), as the real rails do.
        """
        keys = ("out_trade_no", "amount_fen", "currency", "notify_url", "time_expire")
        order = {k: params[k] for k in keys}
        canonical = json.dumps(order, sort_keys=True, separators=(",", ":")).encode()
        if (
            sign(self.secret, str(params["timestamp"]), str(params["nonce"]), canonical)
            != params["signature"]
        ):
            raise SignatureError("the order is not signed by the merchant")
        key = (provider, str(order["out_trade_no"]))
        if key in self.orders:
            return self.orders[key]
        payment = Movement(provider, "payment", self.clock(), _txn_id(), key[1], int(order["amount_fen"]))
        self.orders[key] = payment
        self.movements.append(payment)
        self._notify(str(order["notify_url"]), _capture_event(payment))
        return payment

    def refund(self, provider: str, request: dict[str, Any]) -> Movement:
        """The merchant asks for a refund; idempotent per out_refund_no; REFUND.SUCCESS follows."""
        key = (provider, str(request["out_refund_no"]))
        if key in self.refunds:
            return self.refunds[key]
        paid = next((m for m in self.orders.values() if m.transaction_id == request["transaction_id"]), None)
        if paid is None or int(request["amount"]["refund"]) > paid.amount_fen:
            raise LookupError("no such transaction, or a refund larger than it")
        refund = Movement(
            provider,
            "refund",
            self.clock(),
            paid.transaction_id,
            paid.out_trade_no,
            int(request["amount"]["refund"]),
            refund_id=f"5030{secrets.token_hex(8)}",
            out_refund_no=key[1],
        )
        self.refunds[key] = refund
        self.movements.append(refund)
        self._notify(str(request["notify_url"]), _refund_event(refund))
        return refund

    def statement(self, provider: str, day: date, tz: ZoneInfo = SHANGHAI) -> str:
        """Return the provider's statement of *day* (a CSV file, our form of a 对账单)."""
        start = datetime.combine(day, time(0), tz)
        end = start + timedelta(days=1)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(STATEMENT_COLUMNS)
        for m in self.movements:
            if m.provider == provider and start <= m.at < end:
                row = (m.at.isoformat(), m.kind, m.transaction_id, m.out_trade_no, m.refund_id)
                writer.writerow((*row, m.out_refund_no, m.amount_fen))
        return out.getvalue()

    def _notify(self, url: str, event: dict[str, Any]) -> None:
        body = json.dumps(event, ensure_ascii=False).encode()
        copies = 2 if self._rng.random() < self.faults.duplicate else 1
        now = asyncio.get_running_loop().time()
        for _ in range(copies):
            delay = self._rng.uniform(0, self.faults.max_delay_s)
            if self._rng.random() < self.faults.late:
                delay += self.faults.late_delay_s
            self._pending.append(_Delivery(url, body, now + delay))
        self._wakeup.set()

    @property
    def pending(self) -> int:
        """Return how many notifications are waiting to be delivered, retried, or on their way."""
        return len(self._pending) + self._in_flight

    async def deliver(self, session: aiohttp.ClientSession) -> None:
        """Deliver notifications for ever: each attempt freshly signed, retried until a 2xx."""
        loop = asyncio.get_running_loop()
        while True:
            self._wakeup.clear()
            now = loop.time()
            due = [d for d in self._pending if d.due <= now]
            for delivery in sorted(due, key=lambda d: d.due):
                self._pending.remove(delivery)
                self._in_flight += 1
                try:
                    await self._attempt(session, delivery, loop.time())
                finally:
                    self._in_flight -= 1
            later = [d.due for d in self._pending]
            timeout = max(0.0, min(later) - loop.time()) if later else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _attempt(self, session: aiohttp.ClientSession, delivery: _Delivery, now: float) -> None:
        timestamp, nonce = str(int(self.clock().timestamp())), secrets.token_hex(16)
        headers = {
            TIMESTAMP_HEADER: timestamp,
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: sign(self.secret, timestamp, nonce, delivery.body),
            "Content-Type": "application/json",
        }
        try:
            async with session.post(delivery.url, data=delivery.body, headers=headers) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = 0
            log.debug("payments.delivery_failed", url=delivery.url, error=repr(exc))
        self.answers[status] += 1
        if 200 <= status < 300:
            self.delivered[json.loads(delivery.body)["id"]] += 1
            return
        delays = self.faults.retry_delays_s
        if delivery.attempt < len(delays):
            delivery.attempt += 1
            delivery.due = now + delays[delivery.attempt - 1]
            self._pending.append(delivery)

    def app(self) -> web.Application:
        """Return the HTTP face of the rails: pay (the app's SDK), refund and bill (the merchant)."""
        app = web.Application()
        app.router.add_post("/{provider}/sim/pay", self._pay_route)
        app.router.add_post("/{provider}/v3/refund/domestic/refunds", self._refund_route)
        app.router.add_get("/{provider}/v3/bill", self._bill_route)
        return app

    def _provider(self, request: web.Request) -> str:
        provider = request.match_info["provider"]
        if provider not in PROVIDERS:
            raise web.HTTPNotFound(text="unknown provider")
        return provider

    async def _pay_route(self, request: web.Request) -> web.Response:
        provider = self._provider(request)
        try:
            payment = self.pay(provider, await request.json())
        except (SignatureError, KeyError, TypeError, ValueError) as exc:
            return web.json_response({"code": "PARAM_ERROR", "message": str(exc)}, status=400)
        return web.json_response({"transaction_id": payment.transaction_id, "trade_state": "SUCCESS"})

    async def _refund_route(self, request: web.Request) -> web.Response:
        provider = self._provider(request)
        body = await request.read()
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        nonce = request.headers.get(NONCE_HEADER, "")
        if sign(self.secret, timestamp, nonce, body) != request.headers.get(SIGNATURE_HEADER):
            return web.json_response({"code": "SIGN_ERROR", "message": "bad signature"}, status=401)
        try:
            refund = self.refund(provider, json.loads(body))
        except (LookupError, TypeError, ValueError) as exc:
            return web.json_response({"code": "PARAM_ERROR", "message": str(exc)}, status=400)
        return web.json_response({"refund_id": refund.refund_id, "status": "PROCESSING"})

    async def _bill_route(self, request: web.Request) -> web.Response:
        provider = self._provider(request)
        try:
            day = date.fromisoformat(request.query["bill_date"])
        except (KeyError, ValueError):
            return web.json_response({"code": "PARAM_ERROR", "message": "bill_date=YYYY-MM-DD"}, status=400)
        return web.Response(text=self.statement(provider, day), content_type="text/csv")


def _txn_id() -> str:
    return f"4200{secrets.token_hex(10)}"


def _capture_event(payment: Movement) -> dict[str, Any]:
    return {
        "id": f"EV-{secrets.token_hex(8)}",
        "create_time": payment.at.isoformat(),
        "event_type": CAPTURE_EVENT,
        "resource": {
            "transaction_id": payment.transaction_id,
            "out_trade_no": payment.out_trade_no,
            "trade_state": "SUCCESS",
            "amount": {"total": payment.amount_fen, "currency": "CNY"},
            "success_time": payment.at.isoformat(),
        },
    }


def _refund_event(refund: Movement) -> dict[str, Any]:
    return {
        "id": f"EV-{secrets.token_hex(8)}",
        "create_time": refund.at.isoformat(),
        "event_type": REFUND_EVENT,
        "resource": {
            "refund_id": refund.refund_id,
            "out_refund_no": refund.out_refund_no,
            "transaction_id": refund.transaction_id,
            "out_trade_no": refund.out_trade_no,
            "refund_status": "SUCCESS",
            "amount": {"refund": refund.amount_fen, "currency": "CNY"},
            "success_time": refund.at.isoformat(),
        },
    }
