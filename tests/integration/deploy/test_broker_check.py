"""The start-up broker check: a stock Mosquitto is caught with the fix named; ours and the shipped pass."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from parking_core.adapters.broker_check import check_broker
from parking_core.devtools.embedded import free_port
from parking_core.devtools.harness import ServiceHarness
from tests.integration.deploy.shipped_broker import ShippedBroker
from tests.mqtt_helpers import wait_until

pytestmark = [pytest.mark.mqtt]
BATCH = 200


@pytest.fixture(scope="module")
def stock_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run Mosquitto with its defaults (what `apt install mosquitto` gives), anonymous on loopback."""
    port = free_port()
    conf = Path(tmp_path_factory.mktemp("stock-broker")) / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: not _port_free(port))
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_stock_broker_is_caught_with_the_setting_to_change(stock_broker: str) -> None:
    """Mosquitto's defaults keep 1000 queued messages: more than a batch is lost, and the report says so."""
    report = check_broker(stock_broker, "t/parking/v1", 1500)
    assert report.kept == 1000
    assert len(report.problems) == 1
    assert "max_queued_messages 0" in report.problems[0]
    assert report.receive_maximum == 20
    assert any("max_inflight_messages 0" in w for w in report.warnings)


def test_the_harness_broker_passes(harness: ServiceHarness) -> None:
    """The broker the tests and the demo start keeps a whole burst and sends it without waiting."""
    assert harness.mqtt_url is not None
    report = check_broker(harness.mqtt_url, "t/parking/v1", BATCH)
    assert report.burst > 1000
    assert (report.kept, report.window) == (report.burst, report.burst)
    assert report.problems == []


def test_the_shipped_broker_config_passes(tmp_path: Path) -> None:
    """deploy/mosquitto/mosquitto.conf has what the gateway needs, with no warning either."""
    broker = ShippedBroker(tmp_path).start()
    try:
        report = check_broker(broker.backend_url, "parking/v1", BATCH)
    finally:
        broker.stop()
    assert report.kept == report.burst
    assert report.problems == []
    assert report.warnings == []
    assert report.maximum_packet_size == 65536


def test_the_gateway_refuses_a_stock_broker_and_says_what_to_change(stock_broker: str) -> None:
    """`parking-gateway` exits 3 before touching the database, naming the setting."""
    env = os.environ | {
        "PARKING_MQTT_URL": stock_broker,
        "PARKING_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",  # never reached
        "PARKING_GATEWAY_BATCH_ROWS": str(BATCH),
    }
    done = subprocess.run(
        [sys.executable, "-m", "device_gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "max_queued_messages 0" in done.stdout
    assert "gateway.refused" in done.stdout
