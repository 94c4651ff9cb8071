"""``parking-pay-sim``: serve the simulated payment rails (pay, refund, bill) and deliver notifications."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

import aiohttp
from aiohttp import web

from parking_core.adapters.logs import configure_logging
from parking_core.adapters.settings import Settings
from simulators.payment_provider import ProviderFaults, ProviderSimulator


async def serve(simulator: ProviderSimulator, host: str, port: int) -> None:
    """Serve the rails' HTTP face and deliver their notifications until cancelled."""
    runner = web.AppRunner(simulator.app())
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"payment rails on http://{host}:{port}/{{wechatpay,alipay}}/...", flush=True)
    try:
        async with aiohttp.ClientSession() as session:
            await simulator.deliver(session)
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``parking-pay-sim`` command."""
    parser = argparse.ArgumentParser(
        prog="parking-pay-sim",
        description="Simulated WeChat Pay / Alipay rails for the demo and tests: POST "
        "/{provider}/sim/pay (the app pays an order's pay_params), POST "
        "/{provider}/v3/refund/domestic/refunds (the merchant refunds), GET "
        "/{provider}/v3/bill?bill_date=YYYY-MM-DD (the daily statement CSV). Results are notified "
        "asynchronously to the order's notify_url, signed with PARKING_PAYMENT_SECRET, retried "
        "until answered 2xx, with the faults below.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--duplicate", type=float, default=0.0, help="chance a notification is sent twice")
    parser.add_argument("--max-delay-s", type=float, default=0.0, help="random delay per delivery (reorders)")
    parser.add_argument("--late", type=float, default=0.0, help="chance a notification is held back")
    parser.add_argument("--late-delay-s", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    secret = Settings().payment_secret
    if secret is None:
        parser.error("PARKING_PAYMENT_SECRET is not set")
    faults = ProviderFaults(args.duplicate, args.max_delay_s, args.late, args.late_delay_s)
    simulator = ProviderSimulator(secret.get_secret_value().encode(), faults, args.seed)
    asyncio.run(serve(simulator, args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
