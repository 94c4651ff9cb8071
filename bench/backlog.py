"""Benchmark building blocks: backlogs for persistent sessions, bare consumers, steady publishers."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as MpEvent

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.city_seed import device_id
from bench.lean_publisher import LeanPublisher
from device_gateway.messages import encode_state
from device_gateway.mqtt_buffered import BufferedClient
from parking_core.adapters.settings import MqttEndpoint
from parking_core.topics import sensor_topic

PUBLISH_WINDOW = 2000  # QoS 1 publishes in flight: far below the 65,535 packet ids


def _client(
    endpoint: MqttEndpoint, client_id: str, *, clean: bool = True, buffered: bool = False
) -> mqtt.Client:
    kind = BufferedClient if buffered else mqtt.Client
    client = kind(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
    if endpoint.username:
        secret = endpoint.password.get_secret_value() if endpoint.password else None
        client.username_pw_set(endpoint.username, secret)
    client.max_inflight_messages_set(PUBLISH_WINDOW)
    client.max_queued_messages_set(0)
    return client


def _connect(client: mqtt.Client, endpoint: MqttEndpoint, *, nodelay: bool = True) -> None:
    client.connect(endpoint.host, endpoint.port, 60)
    sock = client.socket()
    if nodelay and isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _publish_worker(  # noqa: PLR0913, PLR0917 -- a process target takes positional args
    endpoint: MqttEndpoint,
    prefix: str,
    devices: list[str],
    count: int,
    start_seq: int,
    rate: float,
    done: mp.Queue[float],
    stop: MpEvent | None = None,
) -> None:
    client = LeanPublisher(endpoint, f"bench-pub-{start_seq}", PUBLISH_WINDOW)
    began = time.monotonic()
    for i in range(count):
        if stop is not None and i % 100 == 0 and stop.is_set():
            break
        device = devices[(start_seq + i) % len(devices)]
        payload = encode_state(start_seq + i, datetime.now(UTC), i % 2 == 0)
        client.publish(sensor_topic(prefix, device, "state"), payload)
        paced(client, began, i + 1, rate)
    client.close()
    done.put(time.monotonic() - began)


def paced(client: LeanPublisher, began: float, sent: int, rate: float) -> None:
    """Write what is due and sleep until the next message is (flat out, 0: write every 64)."""
    ahead = began + sent / rate - time.monotonic() if rate else 0.0
    if ahead > 0:
        client.flush()  # a message goes out when it is stamped, not with the next burst
        time.sleep(ahead)
    elif sent % 64 == 0:
        client.flush()


def publish(  # noqa: PLR0913 -- bench plumbing
    endpoint: MqttEndpoint,
    prefix: str,
    devices: list[str],
    count: int,
    *,
    processes: int = 2,
    rate: float = 0.0,
    start_seq: int = 0,
    stop: MpEvent | None = None,
) -> float:
    """Publish *count* QoS 1 state messages from *processes* publishers; return the seconds taken.

    *rate* (messages per second, all publishers together) paces the stream; 0 = flat out. Setting
    *stop* (an event of the spawn context) ends the stream early.
    """
    ctx = mp.get_context("spawn")
    done: mp.Queue[float] = ctx.Queue()
    share = count // processes
    procs = [
        ctx.Process(
            target=_publish_worker,
            args=(
                endpoint,
                prefix,
                devices,
                share + (count % processes if p == 0 else 0),
                start_seq + p * 10_000_000,
                rate / processes,
                done,
                stop,
            ),
        )
        for p in range(processes)
    ]
    for proc in procs:
        proc.start()
    took = max(done.get() for _ in procs)
    for proc in procs:
        proc.join()
    done.close()
    done.join_thread()
    return took


@dataclass(frozen=True)
class Stream:
    """What one steady publisher sends: random sensors of a seeded city, at a rate."""

    mqtt_url: str
    prefix: str
    lots: int
    spots_per_lot: int
    rate: float  # msg/s of this publisher
    index: int
    processes: int
    seed: int


def publish_until_stopped(spec: Stream, stop: MpEvent, sent: Synchronized[int]) -> None:
    """Process target: publish QoS 1 state readings of random sensors at the spec's rate until *stop*."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    endpoint = MqttEndpoint.from_url(spec.mqtt_url)
    client = LeanPublisher(endpoint, f"bench-stream-{spec.index}-{os.getpid()}", PUBLISH_WINDOW)
    rng = random.Random(spec.seed + spec.index)  # noqa: S311 -- benchmark randomness
    total = spec.lots * spec.spots_per_lot
    began = time.monotonic()
    i = 0
    while not stop.is_set():
        spot = rng.randrange(total)
        device = device_id(spot // spec.spots_per_lot, spot % spec.spots_per_lot)
        payload = encode_state(i * spec.processes + spec.index + 1, datetime.now(UTC), rng.random() < 0.5)
        client.publish(sensor_topic(spec.prefix, device, "state"), payload)
        i += 1
        paced(client, began, i, spec.rate)
        if i % 100 == 0:  # the parent reads the count while measuring
            sent.value = i
    sent.value = i
    client.close()


def create_session(endpoint: MqttEndpoint, client_id: str, topic: str) -> None:
    """Create a persistent QoS 1 session subscribed to *topic*, then leave it offline."""
    client = _client(endpoint, client_id, clean=False)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_args: subscribed.set()
    _connect(client, endpoint)
    client.loop_start()
    client.subscribe(topic, qos=1)
    subscribed.wait(10)
    client.disconnect()
    client.loop_stop()


def drain_with_mosquitto_sub(endpoint: MqttEndpoint, client_id: str, topic: str, count: int) -> float:
    """Drain *count* queued messages with the C client ``mosquitto_sub``; return seconds."""
    cmd = [
        "mosquitto_sub",
        "-h",
        endpoint.host,
        "-p",
        str(endpoint.port),
        "-c",
        "-i",
        client_id,
        "-q",
        "1",
        "-t",
        topic,
        "-C",
        str(count),
    ]
    if endpoint.username:
        cmd += ["-u", endpoint.username]
    if endpoint.password:
        cmd += ["-P", endpoint.password.get_secret_value()]
    began = time.monotonic()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True, timeout=600)
    return time.monotonic() - began


def drain_with_paho(
    endpoint: MqttEndpoint, client_id: str, topic: str, count: int, *, buffered: bool = False
) -> float:
    """Drain *count* queued messages with a bare paho loop (auto-ack, no work); return seconds.

    paho's defaults, Nagle included: its per-message PUBACKs then share TCP segments, which makes
    this the faster bare loop here (12k against 8k msg/s with TCP_NODELAY). *buffered*: through
    the gateway's ``BufferedClient`` (large socket reads), the limit of the gateway's own client.
    """
    client = _client(endpoint, client_id, clean=False, buffered=buffered)
    received = 0
    finished = threading.Event()
    began = 0.0

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        nonlocal received
        received += 1
        if received >= count:
            finished.set()

    client.on_message = on_message
    began = time.monotonic()
    _connect(client, endpoint, nodelay=False)
    client.subscribe(topic, qos=1)
    client.loop_start()
    finished.wait(600)
    took = time.monotonic() - began
    client.disconnect()
    client.loop_stop()
    return took


def drop_session(endpoint: MqttEndpoint, client_id: str) -> None:
    """Remove a persistent session (connect clean), so later publishes are not queued for it."""
    client = _client(endpoint, client_id, clean=True)
    _connect(client, endpoint)
    client.disconnect()


async def drain_with_aiomqtt(endpoint: MqttEndpoint, client_id: str, topic: str, count: int) -> float:
    """Drain *count* queued messages with aiomqtt's ``async for`` (auto-ack); return seconds."""
    import aiomqtt

    secret = endpoint.password.get_secret_value() if endpoint.password else None
    began = time.monotonic()
    async with aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        username=endpoint.username,
        password=secret,
        identifier=client_id,
        clean_session=False,
    ) as client:
        del topic  # the resumed session is subscribed already; the backlog floods in on CONNACK
        received = 0
        async for _message in client.messages:
            received += 1
            if received >= count:
                break
    return time.monotonic() - began
