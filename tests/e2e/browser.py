"""Headless Chromium for page tests: a minimal DevTools Protocol client and helpers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

ADMIN = {"Authorization": "Bearer test-admin-token-of-32-characters-or-more"}
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # we run as root in a container
    "--disable-gpu",
    "--disable-background-networking",  # the machine has no internet; nothing may phone home
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB
    "--window-size=1280,900",
    "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
)
DEADLINE_S = 30.0  # generous: a cold Chromium start on two shared cores takes a few seconds


class CdpError(RuntimeError):
    """Raised when Chromium answers a DevTools command with an error."""


class Cdp:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        command_id = self._next_id
        await self._ws.send_json({"id": command_id, "method": method, "params": params})
        while True:
            message: dict[str, Any] = await self._ws.receive_json(timeout=DEADLINE_S)
            if message.get("id") != command_id:
                self.events.append(message)
                continue
            if "error" in message:
                raise CdpError(f"{method}: {message['error']}")
            result: dict[str, Any] = message["result"]
            return result

    async def evaluate(self, expression: str) -> Any:
        """Return the value of a JavaScript expression in the page."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise CdpError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")


def chromium_binary() -> str:
    """Return Chromium's path, or skip (fail on CI) when it is not installed."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        reason = "Chromium is not installed (apt-get install -y chromium; scripts/setup.sh does it)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return found


async def until(read: Callable[[], Awaitable[Any]], expected: Any) -> None:
    """Poll *read* until it returns *expected*; fail with the last value after the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    value = await read()
    while value != expected:
        if loop.time() > deadline:
            pytest.fail(f"expected {expected!r}, still {value!r} after {DEADLINE_S} s")
        await asyncio.sleep(0.1)
        value = await read()


async def wait_for_port_file(proc: asyncio.subprocess.Process, profile: Path, log: Path) -> tuple[int, str]:
    """Return Chromium's DevTools port and browser websocket path once it has written them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE_S
    while (found := read_port_file(profile)) is None:
        if proc.returncode is not None or loop.time() > deadline:
            pytest.fail(f"Chromium did not start (exit {proc.returncode}): {tail(log)}")
        await asyncio.sleep(0.05)
    return found


def read_port_file(profile: Path) -> tuple[int, str] | None:
    """Return the port and browser path from DevToolsActivePort, once both lines are written."""
    try:
        lines = (profile / "DevToolsActivePort").read_text().splitlines()
    except FileNotFoundError:
        return None
    return (int(lines[0]), lines[1]) if len(lines) >= 2 else None


def tail(log: Path) -> str:
    """Return the end of Chromium's log."""
    return log.read_text(errors="replace")[-2000:]


async def stop(proc: asyncio.subprocess.Process) -> None:
    """Wait for Chromium to exit; kill its process group (ours alone) if it lingers."""
    try:
        await asyncio.wait_for(proc.wait(), DEADLINE_S)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


async def close_browser(http: aiohttp.ClientSession, url: str) -> None:
    """Ask Chromium to close itself over its browser websocket (it exits with all its children)."""
    with contextlib.suppress(TimeoutError, aiohttp.ClientError):
        async with http.ws_connect(url) as browser:
            await browser.send_json({"id": 1, "method": "Browser.close"})
            await browser.receive(timeout=DEADLINE_S)


async def shoot(page: Cdp, name: str) -> None:
    """Save a screenshot of the page where PARKING_SCREENSHOT_DIR says (docs/ keeps them)."""
    folder = os.environ.get("PARKING_SCREENSHOT_DIR")
    if folder:
        shot = await page.send("Page.captureScreenshot", format="png")
        (Path(folder) / name).write_bytes(base64.b64decode(shot["data"]))
