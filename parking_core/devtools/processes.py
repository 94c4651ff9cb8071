"""One way to start our processes with an environment, wait until they are ready, and stop them.

Tests, benchmarks and the demo start the gateway, the API and the simulator through this module:
``running(...)`` starts ``python -m <package>`` with ``PARKING_*`` variables made from a settings
object, writes its output to a log file, polls a readiness check (an HTTP answer, a log line) while
watching the process, and on the way out sends SIGTERM, then SIGKILL after a timeout. Whatever goes
wrong (exit before ready, not ready in time, an error in the block) carries the log's last lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Required, TypedDict, Unpack

from pydantic import SecretStr
from pydantic_settings import BaseSettings

READY_TIMEOUT_S = 60.0  # a cold start on a loaded 2-core machine; a real hang fails after this
STOP_TIMEOUT_S = 15.0  # a graceful stop drains and commits; after this the process is killed
POLL_S = 0.05
TAIL_LINES = 40

Ready = Callable[["Process"], bool]


class Options(TypedDict, total=False):
    """How :func:`running` runs a process, besides its name and command line."""

    env: Required[Mapping[str, str]]
    log_path: Required[Path]
    ready: Ready | None
    timeout_s: float


class ProcessFailedError(RuntimeError):
    """A started process exited or was not ready in time; the message ends with its log's tail."""

    def __init__(self, process: Process, why: str) -> None:
        super().__init__(f"{process.name} {why}; its log {process.log_path} ends:\n{process.tail()}")
        self.process_name = process.name


@dataclass
class Process:
    """A started process, its log file, and how to wait for it and stop it."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """Return the process id."""
        return self.popen.pid

    def log_text(self) -> str:
        """Return everything the process wrote so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = TAIL_LINES) -> str:
        """Return the last *lines* lines of the log."""
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_ready(self, ready: Ready, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll *ready* until it holds; raise if the process exits first or *timeout_s* passes."""
        deadline = time.monotonic() + timeout_s
        while not ready(self):
            if (code := self.popen.poll()) is not None:
                raise ProcessFailedError(self, f"exited with code {code} before it was ready")
            if time.monotonic() > deadline:
                raise ProcessFailedError(self, f"was not ready within {timeout_s:.0f} s")
            time.sleep(POLL_S)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Send SIGTERM, wait up to *timeout_s*, then SIGKILL; return the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait()

    def kill(self) -> int:
        """SIGKILL the process (a crash, for recovery tests) and return its exit code."""
        if self.popen.poll() is None:
            self.popen.kill()
        return self.popen.wait()


def python_module(module: str, *args: str) -> list[str]:
    """Return the command line running ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def environment(settings: BaseSettings | None = None, **extra: str) -> dict[str, str]:
    """Return this process's environment without its ``PARKING_*`` variables, plus *settings*'.

    Every field of *settings* that is not None becomes ``PARKING_<NAME>`` (secrets revealed, enums
    by value), so the child reads exactly the settings the caller holds; *extra* is added last.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKING_")}
    if settings is not None:
        prefix = str(settings.model_config.get("env_prefix", ""))
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            if value is not None:
                env[f"{prefix}{name}".upper()] = _text(value)
    return env | extra


def _text(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def start(name: str, argv: list[str], env: Mapping[str, str], log_path: Path) -> Process:
    """Start *argv* with *env*, its output appended to *log_path*; do not wait for anything.

    It gets a session of its own, so a Ctrl-C in a terminal reaches only the caller, which stops
    its children in order.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        popen = subprocess.Popen(
            argv, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Process(name, popen, log_path)


@contextlib.contextmanager
def running(  # noqa: PLR0913 -- keyword-only, each says what it is
    name: str,
    argv: list[str],
    *,
    env: Mapping[str, str],
    log_path: Path,
    ready: Ready | None = None,
    timeout_s: float = READY_TIMEOUT_S,
) -> Iterator[Process]:
    """Start a process, wait until *ready* holds, and stop it (SIGTERM, then SIGKILL) at the end.

    An error inside the block gets the process's log tail attached as a note.
    """
    process = start(name, argv, env, log_path)
    try:
        if ready is not None:
            process.wait_ready(ready, timeout_s)
        yield process
    except Exception as exc:
        _attach_log(exc, process)
        raise
    finally:
        process.stop()


@contextlib.asynccontextmanager
async def running_async(name: str, argv: list[str], **options: Unpack[Options]) -> AsyncIterator[Process]:
    """:func:`running` for asyncio code: waiting and stopping happen in a thread, not on the loop."""
    manager = running(name, argv, **options)
    process = await asyncio.to_thread(manager.__enter__)
    try:
        yield process
    except BaseException as exc:
        if not await asyncio.to_thread(manager.__exit__, type(exc), exc, exc.__traceback__):
            raise
    else:
        await asyncio.to_thread(manager.__exit__, None, None, None)


def _attach_log(exc: Exception, process: Process) -> None:
    if not isinstance(exc, ProcessFailedError):
        exc.add_note(f"--- {process.name} ({process.log_path}), last lines ---\n{process.tail()}")


# -- readiness checks --------------------------------------------------------------------------------


def http_ok(url: str, contains: str | None = None) -> Ready:
    """Ready once GET *url* answers 200 (and its body contains *contains*, if given)."""

    def check(_process: Process) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 -- our own http URL
                body = response.read().decode(errors="replace")
        except (OSError, urllib.error.URLError):
            return False
        return contains is None or contains in body

    return check


def log_line(text: str, times: int = 1) -> Ready:
    """Ready once the process's log holds *text* at least *times* times (e.g. ``mqtt.subscribed``)."""
    return lambda process: process.log_text().count(text) >= times
