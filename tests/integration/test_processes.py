"""Starting processes: readiness without blind sleeps, SIGTERM then SIGKILL, logs shown on failure."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from parking_core.adapters.settings import BrokerAuth, Settings
from parking_core.devtools.processes import (
    ProcessFailedError,
    environment,
    http_ok,
    log_line,
    running,
    start,
)

# A process that says it is ready, then waits for SIGTERM and says goodbye (exit 0).
POLITE = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print("bye", flush=True), sys.exit(0)))
print("warming up", flush=True)
print("service.ready", flush=True)
while True:
    time.sleep(1)
"""
# One that ignores SIGTERM: only SIGKILL stops it.
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("service.ready", flush=True)
while True:
    time.sleep(1)
"""


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_ready_by_log_line_then_a_graceful_stop(tmp_path: Path) -> None:
    """The block runs once the line is logged; leaving it sends SIGTERM and the process exits 0."""
    log = tmp_path / "polite.log"
    with running(
        "polite", python(POLITE), env=environment(), log_path=log, ready=log_line("service.ready")
    ) as p:
        assert "service.ready" in p.log_text()
    assert p.popen.returncode == 0
    assert p.log_text().endswith("bye\n")


def test_a_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    """After the stop timeout, SIGKILL."""
    process = start("stubborn", python(STUBBORN), environment(), tmp_path / "stubborn.log")
    process.wait_ready(log_line("service.ready"))
    assert process.stop(timeout_s=0.5) == -9


def test_an_early_exit_fails_with_the_log_tail(tmp_path: Path) -> None:
    """A process that dies before it is ready fails at once, and the error quotes its last words."""
    code = "import sys; print('config: PARKING_DATABASE_URL is missing', flush=True); sys.exit(2)"
    with (
        pytest.raises(ProcessFailedError, match="exited with code 2") as failed,
        running("broken", python(code), env=environment(), log_path=tmp_path / "b.log", ready=log_line("x")),
    ):
        pytest.fail("the block must not run")
    assert "PARKING_DATABASE_URL is missing" in str(failed.value)


def test_an_error_in_the_block_carries_the_log(tmp_path: Path) -> None:
    """A failing assertion inside the block shows what the process logged."""
    with (
        pytest.raises(AssertionError) as failed,
        running(
            "polite", python(POLITE), env=environment(), log_path=tmp_path / "p.log", ready=log_line("ready")
        ),
    ):
        raise AssertionError("the check failed")
    assert any("warming up" in note for note in failed.value.__notes__)


def test_http_readiness_waits_for_an_answer(tmp_path: Path) -> None:
    """http_ok holds only once the server answers 200 with the expected text."""
    from parking_core.devtools.embedded import free_port

    port = free_port()
    code = f"import http.server as h; h.test(h.SimpleHTTPRequestHandler, port={port}, bind='127.0.0.1')"
    (tmp_path / "hello.txt").write_text("hello")
    argv = python(f"import os; os.chdir({str(tmp_path)!r}); {code}")
    ready = http_ok(f"http://127.0.0.1:{port}/hello.txt", contains="hello")
    with running("http", argv, env=environment(), log_path=tmp_path / "h.log", ready=ready) as p:
        assert ready(p)
    assert not http_ok(f"http://127.0.0.1:{port}/hello.txt")(p)


def test_the_environment_is_exactly_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """PARKING_* of the caller do not leak; every set field becomes a variable the child reads back."""
    settings = Settings(
        database_url="postgresql://u@h/db",
        mqtt_url="mqtt://h:1883",
        http_port=9999,
        broker_auth=BrokerAuth.FILE,
        payment_secret=SecretStr("s3cret"),
    )
    monkeypatch.setenv("PARKING_ADMIN_TOKEN", "leaked")
    env = environment(settings, EXTRA="1")
    assert "PARKING_ADMIN_TOKEN" not in env
    assert (env["PARKING_HTTP_PORT"], env["PARKING_BROKER_AUTH"], env["EXTRA"]) == ("9999", "file", "1")
    monkeypatch.delenv("PARKING_ADMIN_TOKEN")
    for name, value in env.items():
        if name.startswith("PARKING_"):
            monkeypatch.setenv(name, value)
    assert Settings() == settings
