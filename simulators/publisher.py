"""Publishing simulated messages with aiomqtt, paced or as fast as the broker takes them."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Sequence

import aiomqtt

from parking_core.adapters.settings import MqttEndpoint
from simulators.sensors import CitySimulator, Publication

# aiomqtt warns about every publish beyond 10 awaiting its PUBACK: that is the point here.
_quiet = logging.getLogger("simulators.mqtt")
_quiet.setLevel(logging.ERROR)
CONCURRENT_PUBLISHES = 500  # QoS 1 publishes awaiting their PUBACK at once (packet ids: < 65535)


def mqtt_client(endpoint: MqttEndpoint, identifier: str | None = None) -> aiomqtt.Client:
    """Return an aiomqtt client for *endpoint* (the simulator publishes as the backend user)."""
    password = endpoint.password.get_secret_value() if endpoint.password else None
    return aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        username=endpoint.username,
        password=password,
        identifier=identifier or f"parking-sim-{secrets.token_hex(4)}",
        max_queued_outgoing_messages=0,
        max_inflight_messages=CONCURRENT_PUBLISHES * 2,
        logger=_quiet,
    )


async def publish_all(client: aiomqtt.Client, publications: Sequence[Publication]) -> None:
    """Publish *publications* in order of submission, many in flight at once."""
    for start in range(0, len(publications), CONCURRENT_PUBLISHES):
        chunk = publications[start : start + CONCURRENT_PUBLISHES]
        await asyncio.gather(*(client.publish(p.topic, p.payload, qos=p.qos, retain=p.retain) for p in chunk))


async def run_simulation(  # noqa: PLR0913 -- keyword-only knobs of the CLI
    sim: CitySimulator,
    client: aiomqtt.Client,
    *,
    virtual_s: float,
    step_s: float,
    speed: float | None,
    presence: bool = True,
) -> int:
    """Advance *sim* by *virtual_s* seconds in steps, publishing as it goes; return messages sent.

    With *speed* (virtual seconds per real second) the stream is paced; None publishes as fast as
    the broker acknowledges.
    """
    sent = 0
    if presence:
        batch = sim.presence()
        await publish_all(client, batch)
        sent += len(batch)
    started = time.monotonic()
    elapsed = 0.0
    while elapsed < virtual_s:
        step = min(step_s, virtual_s - elapsed)
        batch = sim.advance(step)
        await publish_all(client, batch)
        sent += len(batch)
        elapsed += step
        if speed:
            ahead = elapsed / speed - (time.monotonic() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    tail = sim.drain()
    await publish_all(client, tail)
    return sent + len(tail)
