"""Gateway processes and their sessions: slots name them, a client id used twice stops the newcomer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from device_gateway.config import slot_client_id
from parking_core.adapters.settings import Settings
from tests.mqtt_helpers import wait_until

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
START_S = 60.0  # generous: two interpreters start on a shared, loaded machine


def start_gateway(settings: Settings, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """Start ``python -m device_gateway`` on this module's database and prefix."""
    assert settings.database_url is not None
    assert settings.mqtt_url is not None
    variables = os.environ | {
        "PARKING_DATABASE_URL": settings.database_url,
        "PARKING_MQTT_URL": settings.mqtt_url,
        "PARKING_TOPIC_PREFIX": settings.topic_prefix,
        "PARKING_GATEWAY_SESSION_EXPIRY_S": "60",
        "PARKING_GATEWAY_BROKER_CHECK": "off",  # tested on its own in tests/integration/deploy
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "device_gateway"],
            env=variables | env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM and wait; return the exit status."""
    if proc.poll() is None:
        proc.terminate()
    return proc.wait(60)


def test_a_slot_names_the_session(app_settings: Settings, tmp_path: Path) -> None:
    """`--slot 2` connects as parking-gateway-<host>-2, without anyone writing a client id."""
    log = tmp_path / "slot.log"
    proc = start_gateway(app_settings, log, PARKING_GATEWAY_SLOT="2")
    try:
        assert wait_until(lambda: "mqtt.subscribed" in log.read_text(), START_S), log.read_text()
        assert f'"client_id": "{slot_client_id(2)}"' in log.read_text()
    finally:
        assert stop(proc) == 0


def test_a_second_process_with_the_same_slot_stops_instead_of_flapping(
    app_settings: Settings, tmp_path: Path
) -> None:
    """The newcomer exits 4 naming the id, before touching the broker; the first keeps its session."""
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    slot = {"PARKING_GATEWAY_SLOT": "7", "PARKING_GATEWAY_SHARE_GROUP": "slots"}
    first = start_gateway(app_settings, first_log, **slot)
    second = None
    try:
        assert wait_until(lambda: "mqtt.subscribed" in first_log.read_text(), START_S)
        second = start_gateway(app_settings, second_log, **slot)
        assert second.wait(START_S) == 4, second_log.read_text()
        assert "mqtt.client_id_in_use" in second_log.read_text()
        assert slot_client_id(7) in second_log.read_text()
        assert "mqtt.connected" not in second_log.read_text()
        assert first.poll() is None
    finally:
        if second is not None:
            stop(second)
        assert stop(first) == 0
    assert first_log.read_text().count("mqtt.connected") == 1  # never lost its session
