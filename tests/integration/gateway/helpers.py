"""Helpers for gateway tests: gateway settings on the harness, an in-process gateway runner."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from device_gateway.config import GatewaySettings
from device_gateway.pg_store import open_pool
from device_gateway.service import Gateway, compose
from parking_core.adapters.settings import Settings


def gateway_settings(app_settings: Settings, **overrides: object) -> GatewaySettings:
    """Return gateway settings for this module's database and prefix, with a fresh client id.

    Each gets its own share group too: Mosquitto keeps sending a group's share to a member whose
    persistent session is offline, so an earlier test's stopped gateway would swallow messages.
    """
    token = secrets.token_hex(4)
    values = app_settings.model_dump() | {
        "gateway_client_id": f"gw-test-{token}",
        "gateway_share_group": f"gw{token}",
        "gateway_session_expiry_s": 120,
        "gateway_flush_interval_ms": 20,
        "gateway_liveness_interval_s": 0.2,
        "gateway_availability_interval_s": 0.1,
    }
    return GatewaySettings.model_validate(values | overrides)


@asynccontextmanager
async def running_gateway(settings: GatewaySettings) -> AsyncIterator[Gateway]:
    """Run a gateway in this event loop until the block ends (then a graceful stop)."""
    stop = asyncio.Event()
    pool = await open_pool(settings, stop)
    assert pool is not None
    gateway = compose(settings, pool, stop)
    task = asyncio.create_task(gateway.run())
    try:
        await asyncio.wait_for(gateway.link.subscribed.wait(), 10)  # the SUBACK came back
        yield gateway
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await pool.close()


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 30.0, state: object = None
) -> None:
    """Poll *check* until it holds; fail after a generous deadline (never a timed assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not reached before the deadline: {state}")
        await asyncio.sleep(0.05)
