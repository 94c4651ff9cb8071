"""Gateway benchmark: bare broker/database limits, the gateway's drain rate, latency and memory."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from bench.backlog import (
    create_session,
    drain_with_aiomqtt,
    drain_with_mosquitto_sub,
    drain_with_paho,
    drop_session,
    publish,
)
from bench.summary import Figure, load_average, record
from device_gateway.config import GatewaySettings
from device_gateway.decode import SensorReading
from device_gateway.store import STAGE_COLUMNS, write_batch
from parking_core.adapters.settings import MqttEndpoint
from parking_core.devtools.harness import ServiceHarness
from parking_core.devtools.processes import Process, environment, log_line, python_module, running
from simulators.city import generate_city
from simulators.provision import provision_city

SPOTS_PER_LOT = 100
POLL_MIN_S, POLL_MAX_S = 0.02, 0.5  # drain_rate's polls
TARGET_MSG_S = 10_000  # issue 12: the default deployment, end to end on this machine


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench.gateway_bench",
        description=(
            "Measure, in one run on this machine with the harness's broker and database (or those "
            "named by PARKING_DATABASE_URL / PARKING_MQTT_URL): a QoS 1 backlog drained by "
            "mosquitto_sub and by a bare paho loop, the COPY rate into sensor_readings, the gateway's "
            "end-to-end drain rate of the same backlog, its publish-to-commit latency under a steady "
            "stream, and its memory. Prints figures and ratios; asserts nothing."
        ),
    )
    p.add_argument("--spots", type=int, default=10_000, help="spots (and sensors) provisioned")
    p.add_argument("--backlog", type=int, default=100_000, help="queued QoS 1 messages per drain")
    p.add_argument(
        "--processes",
        type=int,
        default=2,
        help="gateway processes on the shared subscription (make run starts 2)",
    )
    p.add_argument("--stream-rate", type=float, default=3000.0, help="steady stream, msg/s")
    p.add_argument("--stream-seconds", type=float, default=10.0)
    p.add_argument("--batch-rows", type=int, default=2000)
    p.add_argument("--flush-ms", type=int, default=50)
    p.add_argument("--skip-bare", action="store_true", help="skip the bare broker/database limits")
    return p.parse_args(argv)


@contextmanager
def gateways(
    harness: ServiceHarness, url: str, prefix: str, args: argparse.Namespace, log_dir: Path
) -> Iterator[list[Process]]:
    """Run ``--processes`` gateway processes until their subscriptions are acknowledged; stop them after."""
    base = harness.settings(url, topic_prefix=prefix).model_dump()
    with ExitStack() as stack:
        procs = []
        for index in range(args.processes):
            settings = GatewaySettings.model_validate(
                base
                | {
                    "gateway_client_id": f"bench-gw-{index}",
                    "gateway_batch_rows": args.batch_rows,
                    "gateway_flush_interval_ms": args.flush_ms,
                }
            )
            procs.append(
                stack.enter_context(
                    running(
                        f"gateway {index}",
                        python_module("device_gateway"),
                        env=environment(settings),
                        log_path=log_dir / f"gw-{index}.log",
                        ready=log_line("mqtt.subscribed", times=1),
                    )
                )
            )
        yield procs


def cpu_seconds(pid: int) -> float:
    """Return the CPU time (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    """Return a process's peak resident memory (VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def count_since(conn: asyncpg.Connection, since: datetime) -> int:
    """Return the number of stored readings stamped at or after *since* (by the ts index: a count of
    the whole table every few ms was a sequential scan competing with the gateway for the cores).
    """
    return int(await conn.fetchval("SELECT count(*) FROM sensor_readings WHERE ts >= $1", since))


async def drain_rate(conn: asyncpg.Connection, since: datetime, n: int) -> float:
    """Return msg/s from the first committed row of the backlog to the last (start-up excluded).

    The backlog is the readings stamped at or after *since*. Polls are spaced by the estimated time
    left (at most POLL_MAX_S, at least POLL_MIN_S apart), so the probe costs the database little
    while the finish is still timed to POLL_MIN_S.
    """
    first_count, first_at = 0, 0.0
    while True:
        count = await count_since(conn, since)
        now = time.monotonic()
        if count and not first_count:
            first_count, first_at = count, now
        if count >= n:
            return (n - first_count) / (now - first_at)
        wait = POLL_MIN_S
        if first_count and count > first_count:
            left_s = (n - count) / ((count - first_count) / (now - first_at))
            wait = min(POLL_MAX_S, max(POLL_MIN_S, left_s / 4))
        await asyncio.sleep(wait)


async def copy_rate(conn: asyncpg.Connection, devices: list[str], spots: list[str], n: int) -> float:
    """Return rows/s of a bare COPY of *n* readings into sensor_readings."""
    now = datetime.now(UTC)
    rows = [
        (
            now,
            devices[i % len(devices)],
            50_000_000 + i,
            spots[i % len(spots)],
            now,
            "state",
            i % 2 == 0,
            None,
            None,
        )
        for i in range(n)
    ]
    began = time.perf_counter()
    await conn.copy_records_to_table(
        "sensor_readings",
        records=rows,
        columns=STAGE_COLUMNS,
    )
    return n / (time.perf_counter() - began)


async def writer_rate(conn: asyncpg.Connection, devices: list[str], n: int, batch: int) -> float:
    """Return rows/s of the gateway's own batch transaction on decoded readings (no MQTT)."""
    now = datetime.now(UTC)
    readings = [
        SensorReading(
            devices[i % len(devices)],
            "state",
            60_000_000 + i,
            now + timedelta(microseconds=i),
            i % 3 == 0,
            None,
            None,
            None,
            now,
        )
        for i in range(n)
    ]
    began = time.perf_counter()
    for start in range(0, n, batch):
        await write_batch(conn, readings[start : start + batch], [], [], now)
    return n / (time.perf_counter() - began)


# The latency stream's rows committed since *since* (the ts index; the stream's seq are its own).
STREAM_ROWS = "SELECT seq, ts FROM sensor_readings WHERE ts >= $1 AND seq >= $2"
STREAM_SEQ = 90_000_000


async def latency(  # noqa: PLR0913, PLR0917 -- bench plumbing
    conn: asyncpg.Connection,
    probe: asyncpg.Connection,
    endpoint: MqttEndpoint,
    prefix: str,
    devices: list[str],
    rate: float,
    seconds: float,
) -> list[float]:
    """Stream at *rate* and return each message's publish-to-commit latency in seconds.

    One publisher stamps ts in seq order. The probe polls for the stream's rows committed since the
    oldest one it has not seen yet; a row's latency is the time of the first poll that saw it minus
    its ts. (The newest committed ts, polled before, flattered the figure: with two gateway
    processes, one commits later messages while the other still holds earlier ones.)
    """
    count = int(rate * seconds)
    seen: dict[int, datetime] = {}  # seq -> when a poll first saw it committed
    done = asyncio.Event()
    began = datetime.now(UTC)

    async def poll() -> None:
        since, waiting_for, stamps = began, STREAM_SEQ, {}
        while not done.is_set():
            rows = await probe.fetch(STREAM_ROWS, since, STREAM_SEQ)
            now = datetime.now(UTC)
            for seq, ts in rows:
                if seq not in seen:
                    seen[seq], stamps[seq] = now, ts
            while waiting_for in seen:
                waiting_for += 1
            if waiting_for > STREAM_SEQ:
                since = stamps[waiting_for - 1]
            await asyncio.sleep(0.005)

    poller = asyncio.create_task(poll())
    await asyncio.to_thread(
        publish, endpoint, prefix, devices, count, processes=1, rate=rate, start_seq=STREAM_SEQ
    )
    while True:
        got = await count_since(conn, began)
        if got >= count:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.05)
    done.set()
    await poller
    rows = await conn.fetch("SELECT seq, ts FROM sensor_readings WHERE seq >= $1", STREAM_SEQ)
    return [(seen[r["seq"]] - r["ts"]).total_seconds() for r in rows if r["seq"] in seen]


def pct(values: list[float], q: float) -> float:
    """Return the q-quantile of *values*."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def paho_drain(endpoint: MqttEndpoint, prefix: str, devices: list[str], n: int, *, buffered: bool) -> float:
    """Queue *n* readings for a fresh persistent session and drain them with a bare paho loop; msg/s."""
    name = "bench-paho-buf" if buffered else "bench-paho"
    topic = f"$share/{name}/{prefix}/sensors/+/state"
    create_session(endpoint, name, topic)
    publish(endpoint, prefix, devices, n, start_seq=1)
    rate = n / drain_with_paho(endpoint, name, topic, n, buffered=buffered)
    drop_session(endpoint, name)
    return rate


async def run(args: argparse.Namespace, harness: ServiceHarness, log_dir: Path) -> None:
    """Run every measurement and print the report."""
    template, _ = harness.create_migrated_template("bench_tpl")
    url = harness.create_database("bench", template=template)
    city = generate_city(1, max(1, args.spots // SPOTS_PER_LOT), SPOTS_PER_LOT, prefix="b")
    began = time.perf_counter()
    await provision_city(url, city, heartbeat_interval_s=3600)
    provision_s = time.perf_counter() - began
    devices = [s.device_id for s in city.spots]
    spots = [s.spot_id for s in city.spots]
    assert harness.mqtt_url is not None
    endpoint = MqttEndpoint.from_url(harness.mqtt_url)
    prefix = f"bench{secrets.token_hex(3)}/parking/v1"
    shared_c = f"$share/bench-c/{prefix}/sensors/+/state"
    shared_aio = f"$share/bench-aio/{prefix}/sensors/+/state"
    conn = await asyncpg.connect(url)
    # TimescaleDB indexes ts on every hypertable; plain mode needs it for the latency probe.
    await conn.execute("CREATE INDEX IF NOT EXISTS sensor_readings_ts ON sensor_readings (ts)")
    report: dict[str, float] = {}
    n = args.backlog
    print(
        f"# gateway benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, {len(spots)} spots "
        f"(provisioned in {provision_s:.1f} s), backlog {n} QoS 1 messages, "
        f"batch {args.batch_rows} rows / {args.flush_ms} ms, {args.processes} gateway process(es)"
    )
    if not args.skip_bare:
        create_session(endpoint, "bench-c", shared_c)
        pub_s = publish(endpoint, prefix, devices, n, start_seq=1)
        report["publish"] = n / pub_s
        report["mosquitto_sub"] = n / drain_with_mosquitto_sub(endpoint, "bench-c", shared_c, n)
        drop_session(endpoint, "bench-c")
        report["paho"] = paho_drain(endpoint, prefix, devices, n, buffered=False)
        report["paho_buffered"] = paho_drain(endpoint, prefix, devices, n, buffered=True)
        create_session(endpoint, "bench-aio", shared_aio)
        publish(endpoint, prefix, devices, n, start_seq=1)
        report["aiomqtt"] = n / await drain_with_aiomqtt(endpoint, "bench-aio", shared_aio, n)
        drop_session(endpoint, "bench-aio")
        report["copy"] = await copy_rate(conn, devices, spots, n)
        report["writer"] = await writer_rate(conn, devices, n, args.batch_rows)
    with gateways(harness, url, prefix, args, log_dir / "first"):  # creates the persistent sessions
        pass
    since = datetime.now(UTC)  # the backlog's readings are stamped at publishing, after this
    publish(endpoint, prefix, devices, n, start_seq=20_000_000)
    with gateways(harness, url, prefix, args, log_dir / "drain") as procs:
        cpu_before = sum(cpu_seconds(p.pid) for p in procs)
        report["gateway"] = await drain_rate(conn, since, n)
        report["cpu_ms_per_1k"] = (sum(cpu_seconds(p.pid) for p in procs) - cpu_before) / n * 1e6
        probe = await asyncpg.connect(url)
        lat = await latency(conn, probe, endpoint, prefix, devices, args.stream_rate, args.stream_seconds)
        await probe.close()
        report["rss_mb"] = max(peak_rss_mb(p.pid) for p in procs)
    await conn.close()
    print_report(report, lat, args)


def print_report(r: dict[str, float], lat: list[float], args: argparse.Namespace) -> None:
    """Print the figures, the ratios to the limits and the targets; add them to the summary."""
    print(f"load average (1 / 5 / 15 min): {load_average()}")

    def line(name: str, key: str) -> None:
        if key in r:
            print(f"{name:<52} {r[key]:>10,.0f} msg/s")

    line("publish (2 lean publisher processes, QoS 1)", "publish")
    line("drain: mosquitto_sub (C), QoS 1 backlog", "mosquitto_sub")
    line("drain: bare paho receive loop, QoS 1 backlog", "paho")
    line("drain: bare paho over buffered reads (gateway's client)", "paho_buffered")
    line("drain: bare aiomqtt async for, QoS 1 backlog", "aiomqtt")
    line("COPY into sensor_readings (asyncpg)", "copy")
    line("gateway batch transaction only (no MQTT)", "writer")
    line(f"gateway end to end ({args.processes} process(es))", "gateway")
    if "paho" in r:
        print(
            f"gateway / bare paho drain = {r['gateway'] / r['paho']:.2f} (target >= 0.6); "
            f"gateway / mosquitto_sub = {r['gateway'] / r['mosquitto_sub']:.2f}; "
            f"gateway / COPY = {r['gateway'] / r['copy']:.2f}; "
            f"gateway / buffered paho drain = {r['gateway'] / r['paho_buffered']:.2f}"
        )
    if lat:
        p50, p95, p99 = pct(lat, 0.5), pct(lat, 0.95), pct(lat, 0.99)
        print(
            f"publish-to-commit at {args.stream_rate:.0f} msg/s for {args.stream_seconds:.0f} s "
            f"({len(lat)} msgs): p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms "
            f"(target p99 <= {args.flush_ms + 100} ms; a row's commit is the first 5 ms poll that saw it)"
        )
    print(
        f"gateway CPU during the drain: {r['cpu_ms_per_1k']:.1f} ms per 1,000 messages "
        f"(all {args.processes} process(es), from ready to the last commit)"
    )
    print(f"gateway peak RSS: {r['rss_mb']:.0f} MB (target <= 200 MB at 1M spots)")
    summarise(r, lat, args)


def summarise(r: dict[str, float], lat: list[float], args: argparse.Namespace) -> None:
    """Add the gateway's figures to `make bench`'s table."""
    load, procs = load_average(), f"{args.processes} process(es), {args.spots:,} spots"
    figures = [
        Figure(
            f"gateway end to end, {procs}",
            r["gateway"],
            "msg/s",
            ">= 10,000 msg/s (aim 20,000); >= 0.6 x bare paho",
            r["gateway"] >= TARGET_MSG_S,
            "bare paho drain" if "paho" in r else "",
            r.get("paho"),
            load,
        ),
        Figure(
            f"gateway CPU per 1,000 messages in the drain, {procs}",
            r["cpu_ms_per_1k"],
            "ms",
            "-",
            None,
            load=load,
        ),
        Figure(
            f"gateway peak RSS, {procs}",
            r["rss_mb"],
            "MB",
            "<= 200 MB at 1M spots",
            r["rss_mb"] <= 200,
            load=load,
        ),
    ]
    if "copy" in r:
        figures.append(
            Figure(
                "gateway batch transaction only", r["writer"], "rows/s", "-", None, "COPY", r["copy"], load
            )
        )
    if lat:
        p99_ms = pct(lat, 0.99) * 1000
        budget = args.flush_ms + 100
        figures.append(
            Figure(
                f"publish-to-commit p99 at {args.stream_rate:,.0f} msg/s",
                p99_ms,
                "ms",
                f"<= flush + 100 ms = {budget} ms",
                p99_ms <= budget,
                load=load,
            )
        )
    record(*figures)


def main(argv: list[str] | None = None) -> int:
    """Start the harness, run the benchmark, stop everything."""
    args = parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp,
        ServiceHarness.from_environment(base_dir=Path(tmp) / "services") as harness,
    ):
        asyncio.run(run(args, harness, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
