"""A broker that says "session taken over" (MQTT 5 reason 142) right after our connect stops us."""

from __future__ import annotations

import asyncio
import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from device_gateway.config import GatewaySettings
from device_gateway.mqtt import NEWCOMER_WINDOW_S, SESSION_TAKEN_OVER, GatewayMqtt

SETTINGS = GatewaySettings(mqtt_url="mqtt://127.0.0.1:1", database_url="postgresql://x@127.0.0.1:1/x")
TAKEN = ReasonCode(PacketTypes.DISCONNECT, identifier=SESSION_TAKEN_OVER)
LOST = ReasonCode(PacketTypes.DISCONNECT, identifier=0x80)


async def disconnect_after(held_s: float, reason: ReasonCode) -> list[str]:
    """Return what reached on_fatal when *reason* arrives *held_s* after our CONNACK."""
    fatal: list[str] = []
    link = GatewayMqtt(SETTINGS, asyncio.get_running_loop(), fatal.append)
    link._connected_at = time.monotonic() - held_s  # the clock of the last CONNACK
    link._on_disconnect(link.client, None, None, reason, None)  # paho's callback
    await asyncio.sleep(0)  # on_fatal runs on the loop
    return fatal


async def test_taken_over_right_after_connecting_stops_with_the_client_id() -> None:
    """Someone else was there first and came back: we are the newcomer."""
    fatal = await disconnect_after(1.0, TAKEN)
    assert len(fatal) == 1
    assert SETTINGS.gateway_client_id in fatal[0]


async def test_taken_over_after_a_long_connection_reconnects() -> None:
    """We were there first: reconnect (the newcomer stops), nothing fatal."""
    assert await disconnect_after(NEWCOMER_WINDOW_S + 60, TAKEN) == []


async def test_a_lost_connection_is_not_a_takeover() -> None:
    """Any other reason is an ordinary disconnection."""
    assert await disconnect_after(1.0, LOST) == []
