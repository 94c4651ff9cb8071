"""The first README command: ``parking-demo`` brings everything up, live counts show in the API, and a
demo driver can pay for a stay (leave first, pay later) as the printout says.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pytest
import requests

from parking_core.devtools.embedded import free_port

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
DEMO_TIMEOUT_S = 240  # cold start of a cluster, migrations, seeding and the first readings
T = TypeVar("T")


def test_the_demo_comes_up_and_shows_live_counts(tmp_path: Path) -> None:
    """`parking-demo --until-live` exits 0 only after the API reports lots with known counts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKING_")}
    env["PARKING_DATA_DIR"] = str(tmp_path / "var")
    result = subprocess.run(
        [sys.executable, "-m", "simulators.demo", "--until-live", "--http-port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "dashboard" in result.stdout
    assert "admin token" in result.stdout


class DemoOutput:
    """The lines a running demo prints, collected by a thread of their own."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)

    def close(self, process: subprocess.Popen[str]) -> None:
        """Read what is left once the process has ended, and close its pipe."""
        self._thread.join(timeout=30)
        assert process.stdout is not None
        process.stdout.close()

    @property
    def text(self) -> str:
        """Return everything printed so far."""
        return "".join(self.lines)


def wait_for(condition: Callable[[], T | None], what: str, deadline_s: float) -> T:
    """Return the first truthy value of *condition*, polled until *deadline_s* (no timing asserted)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"gave up waiting for {what}")


def printed(output: DemoOutput, label: str) -> list[list[str]]:
    """Return the words after *label* on each line of the printout that starts with it."""
    return [line.split()[1:] for line in output.lines if line.split()[:1] == [label]]


@pytest.mark.slow
def test_a_demo_driver_pays_an_invoice_through_the_demo(tmp_path: Path) -> None:
    """`parking-demo` prints demo drivers with their tokens and the payment rails; as one of them, an
    unpaid stay is listed, a payment started (201, not 503: the demo made its payment secret) and paid
    on the simulated rails, and the invoice reads paid once the rails' signed notification arrived.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKING_")}
    env["PARKING_DATA_DIR"] = str(tmp_path / "var")
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.demo", "--http-port", str(free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = DemoOutput(process)
    try:
        wait_for(
            lambda: "Ctrl-C stops everything" in output.text or process.poll() is not None, "the banner", 240
        )
        assert process.poll() is None, output.text[-3000:]
        base = printed(output, "dashboard")[0][0].removesuffix("/dashboard/")
        rails = printed(output, "payment")[0][1]  # "payment rails  http://…"
        plate, _, token = printed(output, "driver")[0][:3]
        assert len(printed(output, "driver")) >= 3
        secret_file = tmp_path / "var" / "payment-secret"
        assert secret_file.stat().st_mode & 0o777 == 0o600
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        invoices = f"{base}/v1/plates/{quote(plate)}/invoices"

        def unpaid() -> list[dict[str, Any]]:
            return list(http.get(invoices, params={"status": "unpaid"}, timeout=10).json()["items"])

        invoice = wait_for(unpaid, "the gateway to invoice the driver's stay", 120)[0]
        started = http.post(
            f"{base}/v1/invoices/{invoice['invoice_id']}/payments", json={"provider": "wechatpay"}, timeout=10
        )
        assert started.status_code == 201, started.text
        assert started.json()["amount_fen"] == invoice["due_fen"] > 0
        paid = requests.post(f"{rails}/wechatpay/sim/pay", json=started.json()["pay_params"], timeout=10)
        assert paid.json()["trade_state"] == "SUCCESS", paid.text

        def settled() -> list[dict[str, Any]]:
            items = http.get(invoices, params={"status": "all"}, timeout=10).json()["items"]
            return [i for i in items if i["invoice_id"] == invoice["invoice_id"] and i["status"] == "paid"]

        wait_for(settled, "the rails' notification to settle the invoice", 60)
        assert http.get(f"{base}/v1/driver/account", timeout=10).json()["plates"][0]["plate"] == plate
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output.close(process)
