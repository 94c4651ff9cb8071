"""Guidance benchmark: ``/v1/vacancies`` of the real API against a bare aiohttp + asyncpg endpoint."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import asyncpg

from bench.backlog import Stream, publish_until_stopped
from bench.city_seed import SEED, log, seed_city
from bench.summary import Figure, load_average, record
from bench.vacancies_load import (
    Phase,
    Server,
    measure,
    phase_line,
    request_paths,
    summarise,
    write_wrk_script,
)
from device_gateway.config import GatewaySettings
from parking_core.adapters.settings import BrokerAuth, Settings
from parking_core.devtools.embedded import free_port
from parking_core.devtools.harness import ServiceHarness
from parking_core.devtools.processes import environment, http_ok, log_line, python_module, running
from simulators.city import CENTRE_LAT, CENTRE_LON


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench.vacancies_bench",
        description=(
            "Seed a Zhengzhou-sized city by COPY into the harness's database (or PARKING_DATABASE_URL), "
            "optionally run the gateway under a steady MQTT sensor stream, then load (a) the real API's "
            "/v1/vacancies (create_app) and (b) a bare aiohttp + asyncpg endpoint running the same "
            "nearest-neighbour SQL, each in its own process, alternating, with the same random points "
            "and radii (1-3 km) at fixed concurrency. Prints req/s, p50/p95/p99, the ratio (a)/(b) and "
            "the conditions; asserts nothing."
        ),
    )
    p.add_argument("--lots", type=int, default=50_000)
    p.add_argument("--spots-per-lot", type=int, default=20)
    p.add_argument("--quick", action="store_true", help="2,000 lots × 20 spots")
    p.add_argument(
        "--ingest-rate",
        type=float,
        default=2000.0,
        help=(
            "sensor msg/s through the gateway; 0 = off (the default is what one gateway stores here "
            "while both servers are loaded: at 5,000 it fell behind and stored ~2,100/s)"
        ),
    )
    p.add_argument("--publishers", type=int, default=2, help="publisher processes for the sensor stream")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured phase")
    p.add_argument(
        "--rounds",
        type=int,
        default=6,
        help="alternating rounds of (a) and (b) (more, shorter phases: a disturbance hits both)",
    )
    p.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load per server")
    p.add_argument("--limit", type=int, default=20, help="the limit parameter of each request")
    p.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "aiohttp"),
        default="auto",
        help="wrk (Debian package, C) or an aiohttp client process; auto = wrk when on PATH",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.lots, args.spots_per_lot = 2000, 20
    if args.loadgen == "auto":
        args.loadgen = "wrk" if shutil.which("wrk") else "aiohttp"
    return args


# --- the two servers and the ingest ------------------------------------------------------------------


@contextlib.contextmanager
def server(kind: str, name: str, settings: Settings, log_dir: Path) -> Iterator[Server]:
    """Run (a) the real API (``python -m guidance_api``) or (b) the bare endpoint until the block ends."""
    port = free_port()
    module = "guidance_api" if kind == "api" else "bench.bare_vacancies"
    argv = python_module(module, "--port", str(port))
    if kind == "api":
        argv += ["--log-level", "warning"]
    probe = f"http://127.0.0.1:{port}/v1/vacancies?lat={CENTRE_LAT}&lon={CENTRE_LON}&radius_m=1000"
    with running(
        name, argv, env=environment(settings), log_path=log_dir / f"{kind}.log", ready=http_ok(probe)
    ) as process:
        yield Server(name, process, port)


@contextlib.contextmanager
def ingest(args: argparse.Namespace, settings: Settings, log_dir: Path) -> Iterator[list[Synchronized[int]]]:
    """Run the gateway and the publishers while inside; yield the publishers' sent counters."""
    if args.ingest_rate <= 0:
        yield []
        return
    assert settings.mqtt_url is not None
    prefix = f"benchvac{os.getpid()}/parking/v1"
    gateway_settings = GatewaySettings.model_validate(
        settings.model_dump()
        | {
            "topic_prefix": prefix,
            "gateway_client_id": f"bench-vac-gw-{os.getpid()}",
            "gateway_log_level": "info",  # its readiness is the info line mqtt.subscribed
        }
    )
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    counters = [ctx.Value("q", 0) for _ in range(args.publishers)]
    publishers: list[mp.process.BaseProcess] = []
    with running(
        "gateway",
        python_module("device_gateway"),
        env=environment(gateway_settings),
        log_path=log_dir / "gateway.log",
        ready=log_line("mqtt.subscribed"),  # messages published before are not queued for it
    ):
        try:
            for index in range(args.publishers):
                spec = Stream(
                    settings.mqtt_url,
                    prefix,
                    args.lots,
                    args.spots_per_lot,
                    args.ingest_rate / args.publishers,
                    index,
                    args.publishers,
                    SEED,
                )
                publisher = ctx.Process(target=publish_until_stopped, args=(spec, stop, counters[index]))
                publisher.start()
                publishers.append(publisher)
            yield counters
        finally:
            stop.set()
            for proc in publishers:
                proc.join(15)
                if proc.is_alive():
                    proc.kill()
                    proc.join()


# --- conditions ----------------------------------------------------------------------------------


async def conditions(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Return the server version, JIT, table sizes and the plan of one typical query."""
    from guidance_api.guidance import CANDIDATES_PER_RESULT
    from guidance_api.queries import VACANCIES

    conn = await asyncpg.connect(url)
    try:
        plan = await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) " + VACANCIES,
            CENTRE_LAT + 0.01,
            CENTRE_LON - 0.02,
            2000.0,
            args.limit * CANDIDATES_PER_RESULT,
            False,
        )
        return {
            "version": await conn.fetchval("SHOW server_version"),
            "jit": await conn.fetchval("SHOW jit"),
            "timescaledb": await conn.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            ),
            "lots": await conn.fetchval("SELECT count(*) FROM lots"),
            "spots": await conn.fetchval("SELECT count(*) FROM spots"),
            "plan": [r[0] for r in plan],
        }
    finally:
        await conn.close()


async def readings(url: str) -> int:
    """Return the number of sensor readings stored."""
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM sensor_readings"))
    finally:
        await conn.close()


async def wait_for_ingest(url: str, timeout_s: float = 120.0) -> None:
    """Wait until the gateway has stored its first readings."""
    deadline = time.monotonic() + timeout_s
    while await readings(url) == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway stored no reading: see gateway.log")
        await asyncio.sleep(0.5)


# --- report --------------------------------------------------------------------------------------


@dataclass
class Results:
    """Everything one run measured."""

    cond: dict[str, Any]
    seed_s: float
    api: list[Phase]
    raw: list[Phase]
    ingest: tuple[float, float] | None  # (published, stored) readings/s while measuring; None = off


def report(args: argparse.Namespace, res: Results) -> None:
    """Print the conditions, each round, the totals, the ratio and the targets."""
    cond, api, raw, seed_s = res.cond, res.api, res.raw, res.seed_s
    mode = f"TimescaleDB {cond['timescaledb']}" if cond["timescaledb"] else "plain PostgreSQL"
    used = "off"
    if res.ingest is not None:
        used = (
            f"{res.ingest[0]:,.0f} readings/s published, {res.ingest[1]:,.0f}/s stored by the gateway "
            f"(asked {args.ingest_rate:,.0f})"
        )
    print()
    print(
        f"# vacancies benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL {cond['version']} "
        f"({mode}, jit={cond['jit']}), {cond['lots']:,} lots / {cond['spots']:,} spots "
        f"(seeded by COPY in {seed_s:.0f} s), ingest {used}, load generator {args.loadgen}, "
        f"concurrency {args.concurrency}, {args.rounds} rounds × {args.duration:.0f} s per server, "
        f"radius 1-3 km, limit {args.limit}"
    )
    print("plan of one query (2 km, centre):")
    for line in cond["plan"]:
        print(f"    {line}")
    for a, b in zip(api, raw, strict=True):
        print(phase_line(a))
        print(phase_line(b))
    total_a, total_b = summarise(api), summarise(raw)
    print("totals (throughput over all rounds; percentiles: median of the rounds):")
    print(phase_line(total_a))
    print(phase_line(total_b))
    ratio = total_a.rps / total_b.rps
    load = load_average()
    print(
        f"(a)/(b) = {ratio:.2f} (target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'}); "
        f"(a) p99 {total_a.p99_ms:.1f} ms (target <= 25 ms: {'met' if total_a.p99_ms <= 25 else 'NOT met'}); "
        f"(b) p99 {total_b.p99_ms:.1f} ms; load average (1 / 5 / 15 min) {load}"
    )
    size = f"{cond['lots']:,} lots, ingest {'on' if res.ingest else 'off'}"
    record(
        Figure(
            f"/v1/vacancies throughput, {size}",
            total_a.rps,
            "req/s",
            ">= 0.8 x bare",
            ratio >= 0.8,
            "bare aiohttp + asyncpg",
            total_b.rps,
            load,
        ),
        Figure(
            f"/v1/vacancies p99, {size}",
            total_a.p99_ms,
            "ms",
            "<= 25 ms",
            total_a.p99_ms <= 25,
            "bare p99",
            total_b.p99_ms,
            load,
        ),
    )


def run(args: argparse.Namespace, harness: ServiceHarness, log_dir: Path) -> None:
    """Seed, start the servers and the ingest, measure alternately, print the report."""
    template, _ = harness.create_migrated_template("vacbench_tpl")
    url = harness.create_database("vacbench", template=template)
    settings = harness.settings(url).model_copy(update={"broker_auth": BrokerAuth.NONE})
    log(f"seeding {args.lots:,} lots × {args.spots_per_lot} spots by COPY")
    seed_s = asyncio.run(seed_city(url, args.lots, args.spots_per_lot))
    cond = asyncio.run(conditions(url, args))
    paths = request_paths(args.limit)
    script = write_wrk_script(log_dir / "vacancies.lua", args.limit)
    api_phases: list[Phase] = []
    raw_phases: list[Phase] = []
    with (
        server("api", "(a) API /v1/vacancies", settings, log_dir) as api,
        server("raw", "(b) bare aiohttp + asyncpg", settings, log_dir) as raw,
        ingest(args, settings, log_dir) as counters,
    ):
        log(f"servers up: (a) pid {api.process.pid}, (b) pid {raw.process.pid}; logs in {log_dir}")
        if counters:
            asyncio.run(wait_for_ingest(url))
            log("gateway is storing readings")
        for srv in (api, raw):
            measure(srv, args, paths, script, args.warmup)
        stored_before, began = asyncio.run(readings(url)), time.monotonic()
        sent_before = sum(c.value for c in counters)
        for round_ in range(args.rounds):
            order = (api, raw) if round_ % 2 == 0 else (raw, api)
            for srv in order:
                phase = measure(srv, args, paths, script, args.duration)
                (api_phases if srv is api else raw_phases).append(phase)
                log(f"round {round_ + 1}: {phase_line(phase)}")
        rates: tuple[float, float] | None = None
        if counters:
            took = time.monotonic() - began
            stored = asyncio.run(readings(url)) - stored_before
            rates = (sum(c.value for c in counters) - sent_before) / took, stored / took
    report(args, Results(cond, seed_s, api_phases, raw_phases, rates))


def main(argv: list[str] | None = None) -> int:
    """Start the harness, run the benchmark, stop everything (also on Ctrl-C)."""
    args = parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="vac-bench-") as tmp,
        ServiceHarness.from_environment(base_dir=Path(tmp) / "services") as harness,
    ):
        try:
            run(args, harness, Path(tmp))
        except KeyboardInterrupt:
            log("interrupted: stopping everything")
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
