"""Gateway processes and their sessions: slots name them, a client id used twice stops the newcomer."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_gateway.config import GatewaySettings, slot_client_id
from parking_core.adapters.settings import Settings
from parking_core.devtools.processes import environment, log_line, python_module, running, start

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
WAIT_S = 60.0  # generous: interpreters start on a shared, loaded machine


def slot_env(app_settings: Settings, slot: int, **extra: str) -> dict[str, str]:
    """The environment of gateway *slot* on this module's database and prefix (no client id given)."""
    settings = GatewaySettings.model_validate(
        app_settings.model_dump() | {"gateway_session_expiry_s": 60, "gateway_broker_check": "off"}
    )
    env = environment(settings, PARKING_GATEWAY_SLOT=str(slot), **extra)
    env.pop("PARKING_GATEWAY_CLIENT_ID")  # the slot names the session, as in a deployment
    return env


def test_a_slot_names_the_session(app_settings: Settings, tmp_path: Path) -> None:
    """`PARKING_GATEWAY_SLOT=2` connects as parking-gateway-<host>-2, without anyone writing a client id."""
    with running(
        "slot 2",
        python_module("device_gateway"),
        env=slot_env(app_settings, 2),
        log_path=tmp_path / "slot.log",
        ready=log_line("mqtt.subscribed"),
    ) as gateway:
        assert f'"client_id": "{slot_client_id(2)}"' in gateway.log_text()
    assert gateway.popen.returncode == 0


def test_a_second_process_with_the_same_slot_stops_instead_of_flapping(
    app_settings: Settings, tmp_path: Path
) -> None:
    """The newcomer exits 4 naming the id, before touching the broker; the first keeps its session."""
    env = slot_env(app_settings, 7, PARKING_GATEWAY_SHARE_GROUP="slots")
    argv = python_module("device_gateway")
    with running(
        "first", argv, env=env, log_path=tmp_path / "first.log", ready=log_line("mqtt.subscribed")
    ) as first:
        second = start("second", argv, env, tmp_path / "second.log")
        try:
            assert second.popen.wait(WAIT_S) == 4, second.log_text()
        finally:
            second.stop()
        assert "mqtt.client_id_in_use" in second.log_text()
        assert slot_client_id(7) in second.log_text()
        assert "mqtt.connected" not in second.log_text()
        assert first.popen.poll() is None
    assert first.popen.returncode == 0
    assert first.log_text().count("mqtt.connected") == 1  # never lost its session
