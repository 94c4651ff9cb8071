"""``python -m bench.soak``: the whole backend under steady sensor load for minutes: memory and latency.

Not part of ``make test`` or ``make bench`` (it runs for as long as it is told). It starts the
harness's PostgreSQL and Mosquitto (or uses those PARKING_DATABASE_URL / PARKING_MQTT_URL name), a
gateway and an API process, publishes state messages at a steady rate, and every sample interval
prints each process's resident memory, the gateway's commit lag and HTTP latency. At the end it
reports memory growth after the warm-up (the issue's bar: at most 5 %).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from device_gateway.messages import encode_state
from parking_core.adapters.settings import MqttEndpoint
from parking_core.devtools.embedded import free_port
from parking_core.devtools.harness import ServiceHarness
from parking_core.topics import sensor_topic
from simulators.city import generate_city
from simulators.provision import provision_city

PREFIX = "soak/parking/v1"
HTTP_PROBES = 50  # GET requests per sample for the latency figures


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0, help="how long to run (default 30)")
    parser.add_argument("--sensors", type=int, default=2000, help="simulated bay sensors (default 2000)")
    parser.add_argument("--rate", type=float, default=200.0, help="state messages per second (default 200)")
    parser.add_argument("--sample-s", type=float, default=30.0, help="seconds between samples (default 30)")
    parser.add_argument(
        "--warmup-min", type=float, default=5.0, help="minutes before memory growth is measured (default 5)"
    )
    return parser.parse_args(argv)


def rss_mib(pid: int) -> float:
    """Return the resident memory of *pid* in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class SteadyPublisher:
    """Publishes state messages at a steady rate from a thread of its own."""

    endpoint: MqttEndpoint
    devices: list[str]
    rate: float
    sent: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        """Publish until stopped, pacing to the rate."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"soak-{secrets.token_hex(3)}")
        password = self.endpoint.password.get_secret_value() if self.endpoint.password else None
        client.username_pw_set(self.endpoint.username, password)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.connect(self.endpoint.host, self.endpoint.port)
        client.loop_start()
        started = time.monotonic()
        while not self.stop.is_set():
            device = self.devices[self.sent % len(self.devices)]
            payload = encode_state(self.sent, datetime.now(UTC), self.sent % 3 == 0, battery_mv=3600)
            client.publish(sensor_topic(PREFIX, device, "state"), payload, qos=1)
            self.sent += 1
            ahead = self.sent / self.rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
        client.disconnect()
        client.loop_stop()


@contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run one backend process, logging to *log*; stop it at the end."""
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def http_latency_ms(base: str, lot_id: str) -> tuple[float, float]:
    """Return p50 and p99 of GET /v1/lots/{lot_id} in milliseconds."""
    timings = []
    async with aiohttp.ClientSession() as http:
        for _ in range(HTTP_PROBES):
            began = time.perf_counter()
            async with http.get(f"{base}/v1/lots/{lot_id}") as resp:
                await resp.read()
            timings.append((time.perf_counter() - began) * 1000)
    timings.sort()
    return timings[len(timings) // 2], timings[min(len(timings) - 1, int(len(timings) * 0.99))]


async def gateway_lag_s(metrics: str) -> float:
    """Return the gateway's last receipt-to-commit lag from its /metrics."""
    async with aiohttp.ClientSession() as http, http.get(metrics) as resp:
        for line in (await resp.text()).splitlines():
            if line.startswith("gateway_lag_seconds "):
                return float(line.split()[1])
    return float("nan")


async def wait_for_api(base: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait until the API answers."""
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit("soak: the API exited")
            try:
                async with http.get(f"{base}/v1/openapi.json") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("soak: the API did not start")


@dataclass
class Sample:
    """One row of the report."""

    minute: float
    sent: int
    gateway_mib: float
    api_mib: float
    lag_s: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Targets:
    """What is watched: the two processes, the API and the gateway's metrics, a lot to read."""

    gateway_pid: int
    api_pid: int
    base: str
    metrics: str
    lot_id: str


async def observe(args: argparse.Namespace, publisher: SteadyPublisher, at: Targets) -> list[Sample]:
    """Sample until the time is up, printing each row as it comes."""
    samples: list[Sample] = []
    started = time.monotonic()
    print(f"{'min':>6} {'sent':>9} {'gw MiB':>7} {'api MiB':>7} {'lag s':>6} {'p50 ms':>7} {'p99 ms':>7}")
    while (elapsed := time.monotonic() - started) < args.minutes * 60:
        await asyncio.sleep(min(args.sample_s, args.minutes * 60 - elapsed))
        p50, p99 = await http_latency_ms(at.base, at.lot_id)
        row = Sample(
            (time.monotonic() - started) / 60,
            publisher.sent,
            rss_mib(at.gateway_pid),
            rss_mib(at.api_pid),
            await gateway_lag_s(at.metrics),
            p50,
            p99,
        )
        samples.append(row)
        print(
            f"{row.minute:6.1f} {row.sent:9d} {row.gateway_mib:7.1f} {row.api_mib:7.1f} {row.lag_s:6.3f}"
            f" {row.p50_ms:7.2f} {row.p99_ms:7.2f}",
            flush=True,
        )
    return samples


def report(samples: list[Sample], args: argparse.Namespace) -> None:
    """Print memory growth after the warm-up and the latency extremes."""
    settled = [s for s in samples if s.minute >= args.warmup_min] or samples[-1:]
    first, last = settled[0], samples[-1]
    for name, before, after in (
        ("gateway", first.gateway_mib, last.gateway_mib),
        ("api", first.api_mib, last.api_mib),
    ):
        growth = 100 * (after - before) / before if before else float("nan")
        verdict = "ok" if growth <= 5 else "OVER 5 %"
        print(
            f"{name}: {before:.1f} MiB at {first.minute:.1f} min -> {after:.1f} MiB:"
            f" {growth:+.1f} % ({verdict})"
        )
    lag, p99 = max(s.lag_s for s in samples), max(s.p99_ms for s in samples)
    print(
        f"gateway lag max {lag:.3f} s; HTTP p99 max {p99:.2f} ms; {last.sent} messages at"
        f" {args.rate:g}/s to {args.sensors} sensors"
    )


async def run(args: argparse.Namespace, harness: ServiceHarness, logs: Path) -> None:
    """Provision, start the processes and the load, observe, report."""
    url = harness.create_database("soak", template=harness.create_migrated_template("soak_tpl")[0])
    lots = max(1, args.sensors // 100)
    city = generate_city(1, lots, args.sensors // lots, prefix="SOAK")
    await provision_city(url, city, heartbeat_interval_s=3600)
    assert harness.mqtt_url is not None
    http_port, metrics_port = free_port(), free_port()
    env = os.environ | {
        "PARKING_DATABASE_URL": url,
        "PARKING_MQTT_URL": harness.mqtt_url,
        "PARKING_TOPIC_PREFIX": PREFIX,
        "PARKING_HTTP_PORT": str(http_port),
        "PARKING_ADMIN_TOKEN": secrets.token_urlsafe(32),
        "PARKING_GATEWAY_CLIENT_ID": f"soak-gw-{secrets.token_hex(3)}",
        "PARKING_GATEWAY_METRICS_PORT": str(metrics_port),
    }
    base, metrics = f"http://127.0.0.1:{http_port}", f"http://127.0.0.1:{metrics_port}/metrics"
    devices = [spot.device_id for lot in city.lots for spot in lot.spots]
    publisher = SteadyPublisher(MqttEndpoint.from_url(harness.mqtt_url), devices, args.rate)
    with (
        process([sys.executable, "-m", "device_gateway"], env, logs / "gateway.log") as gw,
        process([sys.executable, "-m", "guidance_api"], env, logs / "api.log") as api,
    ):
        await wait_for_api(base, api)
        await asyncio.sleep(1)  # the gateway's subscription
        sender = threading.Thread(target=publisher.run, name="soak-publisher", daemon=True)
        sender.start()
        try:
            targets = Targets(gw.pid, api.pid, base, metrics, city.lots[0].lot_id)
            samples = await observe(args, publisher, targets)
        finally:
            publisher.stop.set()
            sender.join(30)
    report(samples, args)


def main(argv: list[str] | None = None) -> int:
    """Start the harness, soak, stop everything."""
    args = parse_args(argv)
    print(f"soak: {args.minutes:g} min, {args.sensors} sensors, {args.rate:g} msg/s", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="soak-") as tmp,
        ServiceHarness.from_environment(base_dir=Path(tmp) / "services") as harness,
    ):
        asyncio.run(run(args, harness, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
