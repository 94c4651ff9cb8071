"""The vacancies benchmark's load: request paths, wrk or an aiohttp client process, phase figures."""

# ruff: noqa: S311  (benchmark randomness is not cryptographic)

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.city_seed import HALF_LAT, HALF_LON, SEED
from parking_core.devtools.processes import Process
from simulators.city import CENTRE_LAT, CENTRE_LON

PATHS = 20_000  # distinct request URLs, the same list for both servers


@dataclass
class Server:
    """A server process and where it listens."""

    name: str
    process: Process
    port: int


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


def write_wrk_script(path: Path, limit: int) -> Path:
    """Write wrk's Lua script: the same city, radii and limit as :func:`request_paths`."""
    values = {"seed": SEED, "lat": CENTRE_LAT, "lon": CENTRE_LON, "hlat": HALF_LAT, "hlon": HALF_LON}
    path.write_text(WRK_SCRIPT % (values | {"limit": limit}))
    return path


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU seconds a process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(srv: Server, args: argparse.Namespace, paths: list[str], script: Path, duration: float) -> Phase:
    """Load *srv* for *duration* s at the configured concurrency and return the figures."""
    base = f"http://127.0.0.1:{srv.port}"
    cpu_before = cpu_seconds(srv.process.pid)
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
            proc.join(15)  # it ends by itself after *duration*; kill one that lingers
            if proc.is_alive():
                proc.kill()
                proc.join()
        phase = Phase(
            srv.name,
            len(latencies),
            errors,
            seconds,
            _quantile(latencies, 0.5) * 1000,
            _quantile(latencies, 0.95) * 1000,
            _quantile(latencies, 0.99) * 1000,
        )
    phase.cpu_s = cpu_seconds(srv.process.pid) - cpu_before
    return phase


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
