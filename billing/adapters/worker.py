"""``parking-money-worker``: the arrears run, reminder delivery and refunds sent to the provider."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import structlog

from billing.adapters.arrears_store import deliver_reminders, run_arrears
from billing.adapters.payments_store import send_refunds
from billing.arrears import ArrearsPolicy
from billing.notify import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from billing.payments import RefundOrder
from parking_core.adapters.logs import configure_logging
from parking_core.adapters.settings import Settings

log = structlog.get_logger("billing.worker")
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)  # a provider or webhook slower than this is retried later


class ChannelError(RuntimeError):
    """Raised when a webhook or provider answers with a failure (the item is retried)."""


@dataclass(frozen=True)
class Round:
    """What one round of the worker did."""

    reminders_written: int
    plates_listed: int
    reminders_delivered: int
    refunds_sent: int


@dataclass
class MoneyWorker:
    """One round at a time: arrears run, reminders out of the outbox, refunds to the provider."""

    pool: asyncpg.Pool
    settings: Settings
    session: aiohttp.ClientSession
    policy: ArrearsPolicy = field(default_factory=ArrearsPolicy)

    async def round(self, now: datetime) -> Round:
        """Run every duty once at *now*."""
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                arrears = await run_arrears(conn, now, self.policy)
            delivered = await deliver_reminders(conn, self._remind, now)
            refunded = await send_refunds(conn, self._refund, now)
        done = Round(arrears.reminders, arrears.listed, delivered, refunded)
        if any((done.reminders_written, done.plates_listed, done.reminders_delivered, done.refunds_sent)):
            log.info("money.round", **done.__dict__)
        return done

    async def _remind(self, message: dict[str, Any]) -> None:
        url = self.settings.reminder_webhook_url
        if url is None:
            log.info("reminder.sent", channel="log", **message)
            return
        async with self.session.post(url, json=message) as resp:
            if resp.status >= 300:
                raise ChannelError(f"webhook answered {resp.status}")

    async def _refund(self, provider: str, refund: RefundOrder) -> None:
        base = self.settings.payment_provider_url
        secret = self.settings.payment_secret
        if base is None or secret is None:
            raise ChannelError(
                "PARKING_PAYMENT_PROVIDER_URL and PARKING_PAYMENT_SECRET are needed for refunds"
            )
        body = json.dumps(
            {
                "out_refund_no": refund.refund_id,
                "transaction_id": refund.transaction_id,
                "out_trade_no": refund.payment_id,
                "amount": {"refund": refund.amount_fen, "currency": "CNY"},
                "notify_url": f"{self.settings.api_base_url()}/v1/payments/notify/{provider}",
            }
        ).encode()
        timestamp, nonce = str(int(datetime.now(UTC).timestamp())), secrets.token_hex(16)
        headers = {
            TIMESTAMP_HEADER: timestamp,
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: sign(secret.get_secret_value().encode(), timestamp, nonce, body),
            "Content-Type": "application/json",
        }
        url = f"{base.rstrip('/')}/{provider}/v3/refund/domestic/refunds"
        async with self.session.post(url, data=body, headers=headers) as resp:
            if resp.status >= 300:
                raise ChannelError(f"provider answered {resp.status}: {(await resp.text())[:200]}")


async def serve(settings: Settings, interval_s: float, *, once: bool) -> None:
    """Run rounds every *interval_s* seconds (or once)."""
    if settings.database_url is None:
        raise SystemExit("parking-money-worker: PARKING_DATABASE_URL is not set")
    async with (
        asyncpg.create_pool(settings.database_url, min_size=1, max_size=2) as pool,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
    ):
        worker = MoneyWorker(pool, settings, session)
        while True:
            await worker.round(datetime.now(UTC))
            if once:
                return
            await asyncio.sleep(interval_s)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``parking-money-worker`` command."""
    parser = argparse.ArgumentParser(
        prog="parking-money-worker",
        description="Money duties, every --interval-s: the arrears run (reminders into the outbox, "
        "plates onto the deny list), delivery of the reminder outbox (POST to "
        "PARKING_REMINDER_WEBHOOK_URL, or to the log), and refunds sent to the provider at "
        "PARKING_PAYMENT_PROVIDER_URL (signed with PARKING_PAYMENT_SECRET). Needs PARKING_DATABASE_URL.",
    )
    parser.add_argument("--interval-s", type=float, default=60.0, help="seconds between rounds (default 60)")
    parser.add_argument("--once", action="store_true", help="run one round and exit")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    asyncio.run(serve(Settings(), args.interval_s, once=args.once))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
