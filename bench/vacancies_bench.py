"""Guidance benchmark: ``/v1/vacancies`` of the real API against a bare aiohttp + asyncpg endpoint."""

# ruff: noqa: S311  (benchmark randomness is not cryptographic)

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from parking_core.devtools.embedded import free_port
from parking_core.devtools.harness import ServiceHarness
from parking_core.liveness import default_stale_after
from simulators.city import CENTRE_LAT, CENTRE_LON

HALF_LAT = 0.18  # ±20 km north–south
HALF_LON = 0.20  # ±18 km east–west at 34.7° N: a ~40 × 37 km built-up Zhengzhou
DISTRICT_GRID = 4  # 4 × 4 districts over the city
CHUNK_LOTS = 5000  # lots (and their spots and sensors) per COPY round
SEED = 20_260_101
PATHS = 20_000  # distinct request URLs, the same list for both servers
RAW_POOL_SIZE = 20  # the same pool size as guidance_api.app.POOL_MAX_SIZE
M_PER_DEG = 111_195.0


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
    p.add_argument("--quick", action="store_true", help="2,000 lots × 20 spots, 5 s phases")
    p.add_argument(
        "--ingest-rate", type=float, default=5000.0, help="sensor msg/s through the gateway; 0 = off"
    )
    p.add_argument("--publishers", type=int, default=2, help="publisher processes for the sensor stream")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    p.add_argument("--duration", type=float, help="seconds per measured phase (default 10, quick 5)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of (a) and (b)")
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
    if args.duration is None:
        args.duration = 5.0 if args.quick else 10.0
    if args.loadgen == "auto":
        args.loadgen = "wrk" if shutil.which("wrk") else "aiohttp"
    return args


def log(message: str) -> None:
    """Print a progress line with the time."""
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


# --- seeding -------------------------------------------------------------------------------------


def _clip(value: float, half: float) -> float:
    return max(-half, min(half, value))


def _lot_place(rng: random.Random) -> tuple[float, float]:
    """Return a lot's (dlat, dlon) from the centre: denser in the middle, some everywhere."""
    if rng.random() < 0.6:
        return _clip(rng.gauss(0, HALF_LAT / 3), HALF_LAT), _clip(rng.gauss(0, HALF_LON / 3), HALF_LON)
    return rng.uniform(-HALF_LAT, HALF_LAT), rng.uniform(-HALF_LON, HALF_LON)


def _tariff_for(kind: str, dlat: float, dlon: float, n: int) -> str | None:
    """Return a lot's example tariff by ring (zone 1 < 5 km < zone 2 < 12 km < zone 3) and kind."""
    if n % 10 == 9:
        return None  # one lot in ten has no tariff published
    km = math.hypot(dlat, dlon * math.cos(math.radians(CENTRE_LAT))) * M_PER_DEG / 1000
    if km < 5:
        if kind == "off_street":
            return "zz-zone1-underground" if n % 2 else "zz-zone1-above-ground"
        return "zz-zone1-on-street"
    return "zz-zone2-on-street" if km < 12 else "zz-zone3-on-street"


def device_id(lot: int, spot: int) -> str:
    """Return the id of the bay sensor of spot *spot* of lot *lot*."""
    return f"sen-bl{lot}-s{spot:04d}"


@dataclass
class Chunk:
    """Rows of some lots, their spots and sensors, ready for COPY."""

    lots: list[tuple[Any, ...]]
    spots: list[tuple[Any, ...]]
    devices: list[tuple[Any, ...]]


def make_chunk(rng: random.Random, first: int, last: int, spots_per_lot: int, hashed: str) -> Chunk:
    """Build the rows of lots first..last-1 with random occupancy, counters matching the spots."""
    now = datetime.now(UTC)
    read_at = now - timedelta(hours=1)
    stale = int(default_stale_after(timedelta(hours=1)).total_seconds())
    chunk = Chunk([], [], [])
    for n in range(first, last):
        dlat, dlon = _lot_place(rng)
        kind = "on_street" if n % 2 == 0 else "off_street"
        row = min(DISTRICT_GRID - 1, int((dlat + HALF_LAT) / (2 * HALF_LAT) * DISTRICT_GRID))
        col = min(DISTRICT_GRID - 1, int((dlon + HALF_LON) / (2 * HALF_LON) * DISTRICT_GRID))
        lot_id = f"bl{n}"
        silent = rng.random() < 0.02  # every sensor of the lot silent: the lot is unknown
        busy = rng.uniform(0.3, 1.0)
        counts = {"free": 0, "occupied": 0, "unknown": 0}
        for s in range(spots_per_lot):
            spot_id = f"{lot_id}-s{s:04d}"
            if silent or rng.random() < 0.03:
                status, occupied = "unknown", None
            else:
                occupied = rng.random() < busy
                status = "occupied" if occupied else "free"
            counts[status] += 1
            known = occupied is not None
            chunk.spots.append(
                (spot_id, lot_id, status, read_at, read_at if known else None, 0 if known else None, occupied)
            )
            chunk.devices.append(
                (device_id(n, s), "bay_sensor", spot_id, lot_id, 3600, stale, hashed, "sim-bay-1")
            )
        chunk.lots.append(
            (
                lot_id,
                f"bd{row * DISTRICT_GRID + col}",
                f"Lot {n}",
                kind,
                CENTRE_LAT + dlat,
                CENTRE_LON + dlon,
                spots_per_lot,
                _tariff_for(kind, dlat, dlon, n),
                "closed" if rng.random() < 0.03 else "open",
                counts["free"],
                counts["occupied"],
                0,
                counts["unknown"],
                0,
                now - timedelta(seconds=rng.uniform(0, 600)),
            )
        )
    return chunk


LOT_COLUMNS = (
    "lot_id",
    "district_id",
    "name",
    "kind",
    "lat",
    "lon",
    "capacity",
    "tariff_id",
    "status",
    "free_count",
    "occupied_count",
    "reserved_count",
    "unknown_count",
    "closed_count",
    "counts_updated_at",
)
SPOT_COLUMNS = ("spot_id", "lot_id", "status", "since", "last_reading_ts", "last_reading_seq", "occupied")
DEVICE_COLUMNS = (
    "device_id",
    "kind",
    "spot_id",
    "lot_id",
    "heartbeat_interval_s",
    "stale_after_s",
    "credential_hash",
    "model",
)


async def seed_city(url: str, lots: int, spots_per_lot: int) -> float:
    """COPY districts, example tariffs, lots, spots and sensors; return the seconds taken."""
    from billing import parse_tariff, tariff_to_json
    from billing.examples import example_tariff_documents
    from parking_core.adapters.broker_files import hash_password
    from simulators.provision import SIM_DEVICE_PASSWORD

    began = time.perf_counter()
    rng = random.Random(SEED)
    hashed = hash_password(SIM_DEVICE_PASSWORD)  # one hash for every sensor, as provision_city does
    conn = await asyncpg.connect(url)
    try:
        with contextlib.suppress(asyncpg.PostgresError):  # superuser only: FK triggers off, rows consistent
            await conn.execute("SET session_replication_role = replica")
        for document in example_tariff_documents().values():
            tariff = parse_tariff(document)
            await conn.execute(
                "INSERT INTO tariff_versions (tariff_id, version, valid_from, valid_to, document)"
                " VALUES ($1, $2, $3, $4, $5)",
                tariff.tariff_id,
                tariff.version,
                tariff.valid_from,
                tariff.valid_to,
                json.dumps(tariff_to_json(tariff)),
            )
        await conn.executemany(
            "INSERT INTO districts (district_id, name) VALUES ($1, $1)",
            [(f"bd{i}",) for i in range(DISTRICT_GRID * DISTRICT_GRID)],
        )
        for first in range(0, lots, CHUNK_LOTS):
            last = min(lots, first + CHUNK_LOTS)
            chunk = make_chunk(rng, first, last, spots_per_lot, hashed)
            async with conn.transaction():
                await conn.copy_records_to_table("lots", records=chunk.lots, columns=LOT_COLUMNS)
                await conn.copy_records_to_table("spots", records=chunk.spots, columns=SPOT_COLUMNS)
                await conn.copy_records_to_table("devices", records=chunk.devices, columns=DEVICE_COLUMNS)
            took = time.perf_counter() - began
            log(
                f"seeded {last:,}/{lots:,} lots, {last * spots_per_lot:,} spots and sensors "
                f"({last * spots_per_lot / took:,.0f} spots/s)"
            )
        await conn.execute("ANALYZE lots; ANALYZE spots; ANALYZE devices")
    finally:
        await conn.close()
    return time.perf_counter() - began


# --- the two servers -----------------------------------------------------------------------------


def _raw_app(database_url: str) -> web.Application:
    """Return the bare endpoint: the same SQL, rows as JSON, nothing else."""
    from guidance_api.guidance import CANDIDATES_PER_RESULT, VACANCIES

    pool_key = web.AppKey("pool", asyncpg.Pool)

    async def vacancies(request: web.Request) -> web.Response:
        """Run the nearest-neighbour query and return the first *limit* rows."""
        q = request.query
        limit = int(q.get("limit", "20"))
        rows = await request.app[pool_key].fetch(
            VACANCIES,
            float(q["lat"]),
            float(q["lon"]),
            float(q.get("radius_m", "1000")),
            limit * CANDIDATES_PER_RESULT,
        )
        items = [
            {
                "lot_id": r["lot_id"],
                "name": r["name"],
                "kind": r["kind"],
                "lat": r["lat"],
                "lon": r["lon"],
                "distance_m": round(r["distance_m"]),
                "free": r["free_count"],
                "capacity": r["capacity"],
                "updated_at": r["counts_updated_at"].isoformat() if r["counts_updated_at"] else None,
            }
            for r in rows[:limit]
        ]
        return web.json_response({"items": items})

    async def database(app: web.Application) -> AsyncIterator[None]:
        async with asyncpg.create_pool(database_url, min_size=1, max_size=RAW_POOL_SIZE) as pool:
            app[pool_key] = pool
            yield

    app = web.Application()
    app.router.add_get("/v1/vacancies", vacancies)
    app.cleanup_ctx.append(database)
    return app


def serve(kind: str, database_url: str, port: int) -> None:
    """Serve (a) the real API or (b) the bare endpoint on *port* until SIGTERM."""
    if kind == "api":
        from guidance_api.app import create_app
        from parking_core.adapters.settings import Settings

        settings = Settings.model_validate({"database_url": database_url, "broker_auth": "none"})
        app = create_app(settings)
    else:
        app = _raw_app(database_url)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


@dataclass
class Server:
    """A server process and where it listens."""

    name: str
    proc: mp.process.BaseProcess
    port: int


@contextlib.contextmanager
def server(kind: str, name: str, database_url: str) -> Iterator[Server]:
    """Run one server process; SIGTERM it at the end (kill if it lingers)."""
    port = free_port()
    proc = mp.get_context("spawn").Process(target=serve, args=(kind, database_url, port), name=kind)
    proc.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            if not proc.is_alive():
                raise RuntimeError(f"{name} exited with code {proc.exitcode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not listen within 60 s")
            time.sleep(0.05)
        yield Server(name, proc, port)
    finally:
        stop_process(proc)


def stop_process(proc: mp.process.BaseProcess) -> None:
    """SIGTERM a child process and wait; kill it if it does not go."""
    if proc.is_alive():
        proc.terminate()
    proc.join(15)
    if proc.is_alive():
        proc.kill()
        proc.join()


# --- background ingest ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    """What one publisher process sends."""

    mqtt_url: str
    prefix: str
    lots: int
    spots_per_lot: int
    rate: float  # msg/s of this publisher
    index: int
    processes: int


def publish_stream(spec: Stream, stop: MpEvent, sent: Any) -> None:
    """Publish QoS 1 state readings of random sensors at the spec's rate until *stop* is set."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from device_gateway.messages import encode_state
    from parking_core.adapters.settings import MqttEndpoint
    from parking_core.topics import sensor_topic

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us
    endpoint = MqttEndpoint.from_url(spec.mqtt_url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-vac-pub-{spec.index}-{os.getpid()}")
    if endpoint.username:
        client.username_pw_set(
            endpoint.username, endpoint.password.get_secret_value() if endpoint.password else None
        )
    window = 2000
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    acked = threading.Semaphore(0)
    client.on_publish = lambda *_args: acked.release()
    client.connect(endpoint.host, endpoint.port, 60)
    sock = client.socket()
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    rng = random.Random(SEED + spec.index)
    total = spec.lots * spec.spots_per_lot
    began = time.monotonic()
    i = 0
    while not stop.is_set():
        spot = rng.randrange(total)
        payload = encode_state(i * spec.processes + spec.index + 1, datetime.now(UTC), rng.random() < 0.5)
        client.publish(
            sensor_topic(
                spec.prefix, device_id(spot // spec.spots_per_lot, spot % spec.spots_per_lot), "state"
            ),
            payload,
            qos=1,
        )
        i += 1
        if i > window:
            acked.acquire(timeout=5)
        ahead = began + i / spec.rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        if i % 1000 == 0:
            sent.value = i
    sent.value = i
    client.disconnect()
    client.loop_stop()


@contextlib.contextmanager
def ingest(args: argparse.Namespace, harness: ServiceHarness, url: str, log_dir: Path) -> Iterator[list[Any]]:
    """Run the gateway and the publishers while inside; yield the publishers' sent counters."""
    if args.ingest_rate <= 0:
        yield []
        return
    assert harness.mqtt_url is not None
    prefix = f"benchvac{os.getpid()}/parking/v1"
    env = os.environ | {
        "PARKING_DATABASE_URL": url,
        "PARKING_MQTT_URL": harness.mqtt_url,
        "PARKING_TOPIC_PREFIX": prefix,
        "PARKING_BROKER_AUTH": "none",
        "PARKING_GATEWAY_CLIENT_ID": f"bench-vac-gw-{os.getpid()}",
        "PARKING_GATEWAY_LOG_LEVEL": "warning",
    }
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    counters = [ctx.Value("q", 0) for _ in range(args.publishers)]
    publishers: list[mp.process.BaseProcess] = []
    with (log_dir / "gateway.log").open("ab") as out:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "device_gateway"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        time.sleep(2)  # let it subscribe: messages published before are not queued for it
        if gateway.poll() is not None:
            raise RuntimeError(
                f"gateway exited with code {gateway.returncode}: see {log_dir / 'gateway.log'}"
            )
        for index in range(args.publishers):
            spec = Stream(
                harness.mqtt_url,
                prefix,
                args.lots,
                args.spots_per_lot,
                args.ingest_rate / args.publishers,
                index,
                args.publishers,
            )
            publisher = ctx.Process(target=publish_stream, args=(spec, stop, counters[index]))
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
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(60)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait()


# --- load generators -----------------------------------------------------------------------------


@dataclass
class Phase:
    """One measured phase against one server."""

    server: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_s: float = 0.0  # CPU the server process used during the phase

    @property
    def rps(self) -> float:
        """Return requests per second."""
        return self.requests / self.seconds


def request_paths(limit: int) -> list[str]:
    """Return the request paths: uniform points in the city, radius 1-3 km (fixed seed)."""
    rng = random.Random(SEED)
    return [
        f"/v1/vacancies?lat={CENTRE_LAT + rng.uniform(-HALF_LAT, HALF_LAT):.6f}"
        f"&lon={CENTRE_LON + rng.uniform(-HALF_LON, HALF_LON):.6f}"
        f"&radius_m={rng.uniform(1000, 3000):.0f}&limit={limit}"
        for _ in range(PATHS)
    ]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


async def _aiohttp_load(
    base: str, paths: list[str], concurrency: int, duration: float
) -> tuple[list[float], int, float]:
    """Keep *concurrency* requests in flight for *duration* s; return latencies, errors, seconds."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    cursor = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        deadline = began + duration

        async def worker() -> None:
            nonlocal errors, cursor
            while time.perf_counter() < deadline:
                path = paths[cursor % len(paths)]
                cursor += 1
                sent = time.perf_counter()
                async with session.get(base + path) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - sent)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        took = time.perf_counter() - began
    return latencies, errors, took


def aiohttp_loadgen(base: str, paths: list[str], concurrency: int, duration: float, out: Any) -> None:
    """Process entry: run the aiohttp load and put (latencies, errors, seconds) on *out*."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out.put(asyncio.run(_aiohttp_load(base, paths, concurrency, duration)))


WRK_SCRIPT = """
local counter = 0
function setup(thread) counter = counter + 1; thread:set("id", counter) end
function init(args) math.randomseed(%(seed)d + id) end
function request()
  local lat = %(lat)f + (math.random() * 2 - 1) * %(hlat)f
  local lon = %(lon)f + (math.random() * 2 - 1) * %(hlon)f
  local radius = 1000 + math.random() * 2000
  return wrk.format("GET", string.format("/v1/vacancies?lat=%%.6f&lon=%%.6f&radius_m=%%.0f&limit=%(limit)d",
                                         lat, lon, radius))
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(srv: Server, args: argparse.Namespace, paths: list[str], script: Path, duration: float) -> Phase:
    """Load *srv* for *duration* s at the configured concurrency and return the figures."""
    base = f"http://127.0.0.1:{srv.port}"
    assert srv.proc.pid is not None
    cpu_before = cpu_seconds(srv.proc.pid)
    if args.loadgen == "wrk":
        threads = min(2, args.concurrency)
        out = subprocess.run(
            ["wrk", "-t", str(threads), "-c", str(args.concurrency), "-d", f"{duration:.0f}s",
             "--timeout", "10s", "-s", str(script), base],
            capture_output=True, text=True, check=True, timeout=duration + 60,
        )  # fmt: skip
        line = next(x for x in out.stdout.splitlines() if x.startswith("BENCH "))
        n, micros, errors, p50, p95, p99 = (int(v) for v in line.split()[1:])
        phase = Phase(srv.name, n, errors, micros / 1e6, p50 / 1000, p95 / 1000, p99 / 1000)
    else:
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=aiohttp_loadgen, args=(base, paths, args.concurrency, duration, queue))
        proc.start()
        try:
            latencies, errors, seconds = queue.get(timeout=duration + 60)
        finally:
            stop_process(proc)
        phase = Phase(
            srv.name,
            len(latencies),
            errors,
            seconds,
            _quantile(latencies, 0.5) * 1000,
            _quantile(latencies, 0.95) * 1000,
            _quantile(latencies, 0.99) * 1000,
        )
    phase.cpu_s = cpu_seconds(srv.proc.pid) - cpu_before
    return phase


# --- conditions ----------------------------------------------------------------------------------


async def conditions(url: str, args: argparse.Namespace) -> dict[str, Any]:
    """Return the server version, JIT, table sizes and the plan of one typical query."""
    from guidance_api.guidance import CANDIDATES_PER_RESULT, VACANCIES

    conn = await asyncpg.connect(url)
    try:
        plan = await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) " + VACANCIES,
            CENTRE_LAT + 0.01,
            CENTRE_LON - 0.02,
            2000.0,
            args.limit * CANDIDATES_PER_RESULT,
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


def summarise(phases: list[Phase]) -> Phase:
    """Return one server's totals: summed throughput, median of each round's percentiles."""
    return Phase(
        phases[0].server,
        sum(p.requests for p in phases),
        sum(p.errors for p in phases),
        sum(p.seconds for p in phases),
        statistics.median(p.p50_ms for p in phases),
        statistics.median(p.p95_ms for p in phases),
        statistics.median(p.p99_ms for p in phases),
        sum(p.cpu_s for p in phases),
    )


def phase_line(p: Phase) -> str:
    """Return one line of figures."""
    return (
        f"{p.server:<34} {p.rps:>8,.0f} req/s  p50 {p.p50_ms:6.2f} ms  p95 {p.p95_ms:6.2f} ms  "
        f"p99 {p.p99_ms:6.2f} ms  ({p.requests:,} req, {p.errors} errors, server CPU "
        f"{p.cpu_s / p.seconds:.2f} cores)"
    )


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
    print(
        f"(a)/(b) = {ratio:.2f} (target >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'}); "
        f"(a) p99 {total_a.p99_ms:.1f} ms (target <= 25 ms: {'met' if total_a.p99_ms <= 25 else 'NOT met'})"
    )


def run(args: argparse.Namespace, harness: ServiceHarness, log_dir: Path) -> None:
    """Seed, start the servers and the ingest, measure alternately, print the report."""
    template, _ = harness.create_migrated_template("vacbench_tpl")
    url = harness.create_database("vacbench", template=template)
    log(f"seeding {args.lots:,} lots × {args.spots_per_lot} spots by COPY")
    seed_s = asyncio.run(seed_city(url, args.lots, args.spots_per_lot))
    cond = asyncio.run(conditions(url, args))
    paths = request_paths(args.limit)
    script = log_dir / "vacancies.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "seed": SEED,
            "lat": CENTRE_LAT,
            "lon": CENTRE_LON,
            "hlat": HALF_LAT,
            "hlon": HALF_LON,
            "limit": args.limit,
        }
    )
    api_phases: list[Phase] = []
    raw_phases: list[Phase] = []
    with (
        server("api", "(a) API /v1/vacancies", url) as api,
        server("raw", "(b) bare aiohttp + asyncpg", url) as raw,
        ingest(args, harness, url, log_dir) as counters,
    ):
        log(f"servers up: (a) pid {api.proc.pid} port {api.port}, (b) pid {raw.proc.pid} port {raw.port}")
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
