"""Fixtures of the hostile tier: the real API served on a port (for schemathesis) and a small city."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from guidance_api.app import create_app
from parking_core.adapters.settings import Settings
from parking_core.devtools.embedded import free_port

SERVER_START_S = 30.0


@pytest.fixture(scope="module")
def live_api(app_settings: Settings) -> Iterator[str]:
    """Serve the real application on a free port from a thread of its own; return its base URL."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(create_app(app_settings), access_log=None)
    port = free_port()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="live-api", daemon=True)
    thread.start()
    assert ready.wait(SERVER_START_S), "the API did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(SERVER_START_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(SERVER_START_S)
        loop.close()


@pytest.fixture
async def api(
    app_settings: Settings, aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
) -> TestClient[Any, Any]:
    """Return a client of the real application (own pool, broker in file mode)."""
    return await aiohttp_client(create_app(app_settings))
