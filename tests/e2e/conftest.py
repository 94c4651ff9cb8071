"""Fixtures of the page tests: the real application on a port, an HTTP client, a Chromium page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from guidance_api.app import create_app
from parking_core.adapters.settings import Settings
from tests.e2e.browser import CHROMIUM_FLAGS, Cdp, chromium_binary, close_browser, stop, wait_for_port_file


@pytest.fixture
async def base_url(app_settings: Settings) -> AsyncIterator[str]:
    """Serve the real application on a free loopback port and return its URL."""
    runner = web.AppRunner(create_app(app_settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """Return an HTTP client session."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def page(base_url: str, http: aiohttp.ClientSession, tmp_path: Path) -> AsyncIterator[Cdp]:
    """Start headless Chromium with a fresh profile and return a DevTools client of its page."""
    binary = chromium_binary()
    profile, log = tmp_path / "profile", tmp_path / "chromium.log"
    profile.mkdir()
    with log.open("wb") as log_file:
        proc = await asyncio.create_subprocess_exec(
            binary,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # its own process group, so a stuck browser can be stopped whole
        )
    try:
        port, browser_path = await wait_for_port_file(proc, profile, log)
        try:
            targets = await (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
            target = next(t for t in targets if t["type"] == "page")
            async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                cdp = Cdp(ws)
                await cdp.send("Runtime.enable")
                yield cdp
        finally:
            await close_browser(http, f"ws://127.0.0.1:{port}{browser_path}")
    finally:
        await stop(proc)
