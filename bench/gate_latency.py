"""Gate latency: plate read → command through the real gateway, against a bare echo through the broker."""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import queue
import secrets
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.backlog import publish
from bench.summary import Figure, load_average, record
from billing import load_example_tariffs, tariff_to_json
from billing.adapters.drivers_store import bind_plate, put_account, set_consent
from device_gateway.config import GatewaySettings
from parking_core.adapters.settings import MqttEndpoint
from parking_core.devtools.harness import ServiceHarness
from parking_core.devtools.processes import environment, log_line, python_module, running
from simulators.city import generate_city
from simulators.provision import provision_city, provision_gate_lots

TARIFF_ID = "zz-zone1-underground"  # exits are priced with tiers and a daily cap
WAIT_S = 10.0  # a probe that gets no answer in this long is counted lost, not timed
LAYOUTS = {"split": "one gates process + one sensors process", "one": "one process for everything"}


def add_probe_options(p: argparse.ArgumentParser) -> None:
    """Add the options of the setup and the probes (shared with bench.gate_profile)."""
    p.add_argument("--spots", type=int, default=10_000, help="bay sensors of the background load")
    p.add_argument("--load-rate", type=float, default=5000.0, help="background sensor readings, msg/s")
    p.add_argument("--reads", type=int, default=1000, help="plate reads per lane (and echoes)")
    p.add_argument("--gap-ms", type=float, default=10.0, help="pause between probes")
    p.add_argument(
        "--layout",
        choices=("split", "one"),
        default="split",
        help="split: a gateway process for gates (--paths gates) beside one for sensors (--paths "
        "sensors), as a site with gates runs them (docs/gateway.md); one: one process takes everything",
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench.gate_latency",
        description=(
            "Plate read → gate command latency (entry, and exit including pricing and the pay-later "
            "decision: every other probe plate belongs to a consenting driver, so half the exits open "
            "pay_later and raise their invoice, half hold for payment) measured by a paho "
            "client against the real gateway process, under a steady background of bay-sensor "
            "readings; in the same run the floor: a bare paho echo of the same message through the "
            "same broker. Both clients set TCP_NODELAY. Prints p50/p95/p99 and the ratios; asserts "
            "nothing. Uses the harness's broker and database unless PARKING_* name others."
        ),
    )
    add_probe_options(p)
    return p.parse_args(argv)


class Probe:
    """A paho client with TCP_NODELAY that publishes a message and waits for the answer topic."""

    def __init__(self, endpoint: MqttEndpoint, answer_topic: str) -> None:
        self.answers: queue.Queue[tuple[float, bytes]] = queue.Queue()
        self.client = _client(endpoint, f"probe-{secrets.token_hex(3)}")
        self.client.on_message = lambda _c, _u, m: self.answers.put((time.perf_counter(), bytes(m.payload)))
        _connect(self.client, endpoint)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.subscribe(answer_topic, qos=1)
        subscribed.wait(WAIT_S)

    def round_trip(self, topic: str, payload: bytes, matches: Callable[[bytes], bool]) -> float | None:
        """Return seconds from publish to the matching answer (None if lost)."""
        began = time.perf_counter()
        self.client.publish(topic, payload, qos=1)
        deadline = began + WAIT_S
        while (left := deadline - time.perf_counter()) > 0:
            try:
                at, got = self.answers.get(timeout=left)
            except queue.Empty:
                return None
            if matches(got):
                return at - began
        return None

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()


def _client(endpoint: MqttEndpoint, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if endpoint.username:
        secret = endpoint.password.get_secret_value() if endpoint.password else None
        client.username_pw_set(endpoint.username, secret)
    return client


def _connect(client: mqtt.Client, endpoint: MqttEndpoint) -> None:
    client.connect(endpoint.host, endpoint.port, 60)
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # MACHINE-NOTES: Nagle costs 39 ms
    client.loop_start()


def start_echo(endpoint: MqttEndpoint, request: str, answer: str) -> mqtt.Client:
    """Return a bare client that republishes every *request* message on *answer* (the floor)."""
    client = _client(endpoint, f"echo-{secrets.token_hex(3)}")

    def on_message(c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        c.publish(answer, m.payload, qos=1)

    client.on_message = on_message
    _connect(client, endpoint)
    subscribed = threading.Event()
    client.on_subscribe = lambda *_a: subscribed.set()
    client.subscribe(request, qos=1)
    subscribed.wait(WAIT_S)
    return client


def pct(values: list[float], q: float) -> float:
    """Return the q-quantile of *values* (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(name: str, values: list[float], sent: int) -> str:
    """Return one line of the report."""
    if not values:
        return f"{name:<34} no answers of {sent}"
    ms = [v * 1000 for v in values]
    return (
        f"{name:<34} p50 {pct(ms, 0.50):6.2f} ms  p95 {pct(ms, 0.95):6.2f} ms  p99 {pct(ms, 0.99):6.2f} ms"
        f"  ({len(values)}/{sent} answered)"
    )


def same_number(n: int) -> Callable[[bytes], bool]:
    """Return a test for the echo of message *n*."""
    return lambda payload: bool(json.loads(payload)["n"] == n)


def same_plate(plate: str) -> Callable[[bytes], bool]:
    """Return a test for the command answering a read of *plate*."""
    return lambda payload: bool(json.loads(payload).get("plate") == plate)


def measure(
    args: argparse.Namespace, endpoint: MqttEndpoint, prefix: str, lot: tuple[str, str, str]
) -> dict[str, list[float]]:
    """Probe the echo, then entries, then exits, one at a time with a gap; return the latencies."""
    _, entry, exit_ = lot
    echo = start_echo(endpoint, f"{prefix}/echo/request", f"{prefix}/echo/answer")
    results: dict[str, list[float]] = {"echo": [], "entry": [], "exit": [], "pay_later": [], "held": []}
    start = datetime.now(UTC) - timedelta(hours=5)
    try:
        floor = Probe(endpoint, f"{prefix}/echo/answer")
        for n in range(args.reads):
            echoed = json.dumps({"seq": n, "ts": datetime.now(UTC).isoformat(), "n": n}).encode()
            got = floor.round_trip(f"{prefix}/echo/request", echoed, same_number(n))
            if got is not None:
                results["echo"].append(got)
            time.sleep(args.gap_ms / 1000)
        floor.close()
        for lane, device, hours in (("entry", entry, 0.0), ("exit", exit_, 3.1)):
            gate = Probe(endpoint, f"{prefix}/gates/{device}/command")
            for n in range(args.reads):
                plate = f"豫Q{n:05d}"
                ts = start + timedelta(hours=hours, seconds=n)
                body = {"seq": n, "ts": ts.isoformat(), "lane": lane, "plate": plate, "confidence": 0.97}
                payload = json.dumps(body, ensure_ascii=False).encode()
                got = gate.round_trip(f"{prefix}/gates/{device}/plate", payload, same_plate(plate))
                if got is not None:
                    results[lane].append(got)
                    if lane == "exit":
                        results["pay_later" if n % 2 == 0 else "held"].append(got)
                time.sleep(args.gap_ms / 1000)
            gate.close()
    finally:
        echo.disconnect()
        echo.loop_stop()
    return results


async def prepare(
    harness: ServiceHarness, args: argparse.Namespace
) -> tuple[str, list[str], tuple[str, str, str]]:
    """Create the database, the sensor city, a gated lot with the tariff; return url, devices, lot."""
    template, _ = harness.create_migrated_template("gate_bench_tpl")
    url = harness.create_database("gate_bench", template=template)
    city = generate_city(1, max(1, args.spots // 100), 100, prefix="gb")
    await provision_city(url, city, heartbeat_interval_s=3600)
    tariff = load_example_tariffs()[TARIFF_ID]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO tariff_versions (tariff_id, version, valid_from, valid_to, document)"
            " VALUES ($1, $2, $3, $4, $5::jsonb)",
            tariff.tariff_id, tariff.version, tariff.valid_from, tariff.valid_to,
            json.dumps(tariff_to_json(tariff), ensure_ascii=False),
        )  # fmt: skip
    finally:
        await conn.close()
    lot = ("gb-gated", "gb-gated-in", "gb-gated-out")
    await provision_gate_lots(url, [lot], args.reads + 10, "gb-gates", TARIFF_ID)
    await pay_later_drivers(url, [f"豫Q{n:05d}" for n in range(0, args.reads, 2)])
    return url, [s.device_id for s in city.spots], lot


async def pay_later_drivers(url: str, plates: list[str]) -> None:
    """Bind *plates* to consenting driver accounts: their exits open pay_later and are invoiced."""
    conn = await asyncpg.connect(url)
    try:
        now = datetime.now(UTC)
        for plate in plates:
            account = f"bench-{plate[-5:]}"
            await put_account(conn, account, "")
            await bind_plate(conn, account, plate, "bench", now)
            await set_consent(conn, account, True, "bench", now)
    finally:
        await conn.close()


def probe(  # noqa: PLR0913 -- what prepare() returned, and how the gateway runs
    args: argparse.Namespace,
    harness: ServiceHarness,
    url: str,
    devices: list[str],
    lot: tuple[str, str, str],
    *,
    log_path: Path,
    log_level: str = "info",
) -> dict[str, list[float]]:
    """Start the gateway, load the broker with sensor readings, probe echo, entries, exits; stop."""
    prefix = f"gbench{secrets.token_hex(3)}/parking/v1"
    base = harness.settings(url, topic_prefix=prefix).model_dump() | {"gateway_log_level": log_level}
    # The gates process (or the only one) logs to *log_path*; bench.gate_profile reads its steps.
    layout = [("gates", log_path), ("sensors", log_path.with_name("sensors.log"))]
    if args.layout == "one":
        layout = [("all", log_path)]
    assert harness.mqtt_url is not None
    endpoint = MqttEndpoint.from_url(harness.mqtt_url)
    # The load runs until every probe is answered: a fixed count once ran out during the exits.
    stop_load = multiprocessing.get_context("spawn").Event()
    with ExitStack() as gateways:
        for paths, path_log in layout:
            settings = GatewaySettings.model_validate(
                base | {"gateway_client_id": f"gate-bench-{paths}", "gateway_paths": paths}
            )
            gateways.enter_context(
                running(
                    f"gateway ({paths})",
                    python_module("device_gateway"),
                    env=environment(settings),
                    log_path=path_log,
                    ready=log_line("mqtt.subscribed"),
                )
            )
        count = int(args.load_rate * 3600)  # an hour at most
        load = threading.Thread(
            target=publish,
            args=(endpoint, prefix, devices, count),
            kwargs={"processes": 1, "rate": args.load_rate, "stop": stop_load},
        )
        load.start()
        try:
            results = measure(args, endpoint, prefix, lot)
        finally:
            stop_load.set()
            load.join()
    return results


def main(argv: list[str] | None = None) -> int:
    """Start the harness and the gateway, load the broker, probe, print the report."""
    args = parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="gate-bench-") as tmp,
        ServiceHarness.from_environment(base_dir=Path(tmp) / "services") as harness,
    ):
        url, devices, lot = asyncio.run(prepare(harness, args))
        print(
            f"# gate latency {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, {len(devices)} sensors "
            f"publishing {args.load_rate:.0f} msg/s (QoS 1) in the background, {args.reads} probes per "
            f"kind, {args.gap_ms:.0f} ms apart, TCP_NODELAY on both sides and on the broker, "
            f"gateway layout {LAYOUTS[args.layout]}"
        )
        results = probe(args, harness, url, devices, lot, log_path=Path(tmp) / "gateway.log")
        for name, key in (
            ("bare echo (floor)", "echo"),
            ("entry read → command", "entry"),
            ("exit read → command (priced)", "exit"),
            ("  of which pay later (invoice raised)", "pay_later"),
            ("  of which held for payment", "held"),
        ):
            sent = {"pay_later": (args.reads + 1) // 2, "held": args.reads // 2}.get(key, args.reads)
            print(summary(name, results[key], sent))
        if results["echo"]:
            for key in ("entry", "exit"):
                if results[key]:
                    ratio = pct(results[key], 0.99) / pct(results["echo"], 0.99)
                    print(f"{key} p99 / echo p99: {ratio:.1f}x (target p99 <= 25 ms; contract 200 ms)")
        machine_load = load_average()
        print(f"load average (1 / 5 / 15 min): {machine_load}")
        echo = pct(results["echo"], 0.99) * 1000 if results["echo"] else None
        record(
            *(
                Figure(
                    f"gate {key} read -> command p99 ({args.layout} layout)",
                    pct(results[key], 0.99) * 1000,
                    "ms",
                    "<= 25 ms (contract 200 ms)",
                    pct(results[key], 0.99) <= 0.025,
                    "bare paho echo p99" if echo is not None else "",
                    echo,
                    machine_load,
                )
                for key in ("entry", "exit")
                if results[key]
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
