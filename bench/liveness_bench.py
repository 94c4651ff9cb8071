"""Liveness at 1M sensors: the gateway's start-up, how late silent sensors turn offline, a sweep's cost."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from bench.backlog import publish
from bench.city_seed import seed_city
from bench.gateway_bench import gateways, pct
from bench.summary import Figure, load_average, record
from device_gateway.sweeps import DUE_DEADLINES, SWEEP_LIMIT
from parking_core.adapters.settings import MqttEndpoint
from parking_core.devtools.harness import ServiceHarness

TARGET_LATE_S = 1.0  # issue 12: offline within 1 s of the deadline
STEADY_LEAD_S = 2.0  # the steady-state deadlines fall from this long after they are armed
SLACK_S = 5.0  # after the last deadline, wait this long before collecting

# Every sensor online, as if each had spoken at set-up: its liveness check was armed earlier, so the
# checks come due spread over one window (N / window per second, ~140/s at 1M with 7,260 s windows)
# and the sweep moves them forward. Nothing is silent yet.
SET_UP = """
WITH plan AS (
    SELECT device_id, stale_after_s,
           $1::timestamptz + make_interval(secs => random() * stale_after_s) AS check_at
    FROM devices WHERE kind = 'bay_sensor'
), dev AS (
    UPDATE devices d SET status = 'online', last_seen_at = $1,
                         silent_after = $1::timestamptz + make_interval(secs => p.stale_after_s)
    FROM plan p WHERE d.device_id = p.device_id
)
INSERT INTO device_deadlines (device_id, check_at) SELECT device_id, check_at FROM plan
ON CONFLICT (device_id) DO UPDATE SET check_at = excluded.check_at
"""
# Sensors that never speak again: their last message was one window before a deadline spread over
# [$2, $2 + $3 s], and their checks stand at those deadlines.
ARM_SILENT = """
WITH plan AS (
    SELECT device_id, $2::timestamptz + make_interval(secs => random() * $3::float8) AS deadline,
           make_interval(secs => stale_after_s) AS win
    FROM devices WHERE device_id = ANY($1::text[])
), dev AS (
    UPDATE devices d SET silent_after = p.deadline, last_seen_at = p.deadline - p.win
    FROM plan p WHERE d.device_id = p.device_id
)
INSERT INTO device_deadlines (device_id, check_at) SELECT device_id, deadline FROM plan
ON CONFLICT (device_id) DO UPDATE SET check_at = excluded.check_at
"""
SILENT = "SELECT device_id FROM devices WHERE kind = 'bay_sensor' ORDER BY md5(device_id) LIMIT $1"
LATENESS = """
SELECT d.silent_after, extract(epoch FROM (e.ts - d.silent_after)) AS late_s
FROM devices d JOIN device_presence_changes e ON e.device_id = d.device_id AND e.event = 'comms_lost'
WHERE d.device_id = ANY($1::text[])
"""
# What every sweep cost before sql/0030: a scan of all devices for the silent ones.
OLD_SWEEP = """
SELECT DISTINCT lot_id FROM (SELECT lot_id FROM devices
    WHERE kind = 'bay_sensor' AND status <> 'offline' AND silent_after < $1 LIMIT $2) s
"""
HOT = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'devices'"
# The gateway's start-up, as its log tells it (device_gateway.service): what each step waits for.
STEPS = ("liveness.started", "lots.recounted", "gateway.started", "mqtt.subscribed")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench.liveness_bench",
        description=(
            "Seed a city (default 50,000 lots x 20 = 1,000,000 sensors) and put every sensor online "
            "with its liveness check due somewhere in its window. Then (1) arm --startup-silent "
            "sensors to fall silent over the --startup-seconds after the gateway is launched, launch "
            "the real gateway (its sweep every 0.5 s) and time its start-up to `mqtt.subscribed`; "
            "(2) once it is ready, arm --silent sensors with deadlines spread over --seconds and run "
            "a steady stream from the others. Reports the start-up time and its steps, how late "
            "the sensors whose deadlines fell during start-up turned offline, how late the "
            "steady-state ones did (target: within 1 s, none missed), one sweep's due query against "
            "the old scan of every device, and the share of device updates that stayed HOT. "
            "Prints figures; asserts nothing."
        ),
    )
    p.add_argument("--lots", type=int, default=50_000)
    p.add_argument("--spots-per-lot", type=int, default=20)
    p.add_argument(
        "--silent", type=int, default=2_000, help="sensors that fall silent once the gateway is ready"
    )
    p.add_argument("--seconds", type=float, default=60.0, help="their deadlines spread over this long")
    p.add_argument(
        "--startup-silent",
        type=int,
        default=500,
        help="sensors whose deadlines are spread over the first --startup-seconds after the launch",
    )
    p.add_argument("--startup-seconds", type=float, default=20.0)
    p.add_argument("--stream-rate", type=float, default=1_000.0, help="readings/s of the other sensors")
    p.add_argument("--processes", type=int, default=1, help="gateway processes")
    p.add_argument("--batch-rows", type=int, default=2000)
    p.add_argument("--flush-ms", type=int, default=50)
    return p.parse_args(argv)


async def set_up(url: str, args: argparse.Namespace) -> tuple[list[str], list[str], float]:
    """Put every sensor online; return the steady and the start-up silent sensors, and seconds taken."""
    conn = await asyncpg.connect(url)
    try:
        began = time.perf_counter()
        await conn.execute(SET_UP, datetime.now(UTC))
        await conn.execute("ANALYZE devices; ANALYZE device_deadlines")
        picked = [r["device_id"] for r in await conn.fetch(SILENT, args.silent + args.startup_silent)]
    finally:
        await conn.close()
    return picked[: args.silent], picked[args.silent :], time.perf_counter() - began


async def arm_silent(url: str, devices: list[str], start: datetime, spread_s: float) -> None:
    """Give *devices* deadlines spread over *spread_s* seconds from *start*."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(ARM_SILENT, devices, start, spread_s)
    finally:
        await conn.close()


@dataclass
class StartUp:
    """How long the gateway took from its launch to `mqtt.subscribed`, and its steps."""

    seconds: float
    steps: dict[str, float]  # log event -> seconds after the launch (first gateway process)


def start_up_steps(log_path: Path, launched: float) -> dict[str, float]:
    """Return, for each step of STEPS in a gateway's JSON log, its seconds after *launched*."""
    steps: dict[str, float] = {}
    if not log_path.exists():
        return steps
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") in STEPS and entry["event"] not in steps:
            stamp = datetime.fromisoformat(str(entry["timestamp"]))
            steps[entry["event"]] = stamp.timestamp() - launched
    return steps


@dataclass
class Cost:
    """One sweep's due query against the old scan, on the final table."""

    plan: list[str]
    due_ms: float
    old_ms: float
    devices: int


async def costs(url: str) -> Cost:
    """Time the due query (rolled back) and the old scan, with the due query's plan."""
    conn = await asyncpg.connect(url)
    try:
        now = datetime.now(UTC)
        tr = conn.transaction()
        await tr.start()
        plan = [
            r[0] for r in await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + DUE_DEADLINES, now, SWEEP_LIMIT)
        ]
        began = time.perf_counter()
        await conn.fetchrow(DUE_DEADLINES, now, SWEEP_LIMIT)
        due_ms = (time.perf_counter() - began) * 1000
        await tr.rollback()
        began = time.perf_counter()
        await conn.fetch(OLD_SWEEP, now, SWEEP_LIMIT)
        old_ms = (time.perf_counter() - began) * 1000
        devices = int(await conn.fetchval("SELECT count(*) FROM devices"))
    finally:
        await conn.close()
    return Cost(plan, due_ms, old_ms, devices)


async def lateness(url: str, devices: list[str]) -> list[tuple[datetime, float]]:
    """Return (deadline, seconds late) of each of *devices* that turned offline."""
    conn = await asyncpg.connect(url)
    try:
        return [(r["silent_after"], float(r["late_s"])) for r in await conn.fetch(LATENESS, devices)]
    finally:
        await conn.close()


async def hot_counts(url: str) -> tuple[int, int]:
    """Return the devices table's (updates, HOT updates) so far."""
    conn = await asyncpg.connect(url)
    try:
        row = await conn.fetchrow(HOT)
    finally:
        await conn.close()
    assert row is not None
    return int(row[0]), int(row[1])


@dataclass
class Found:
    """What the run showed: start-up, lateness of both groups, and the devices' HOT share."""

    start: StartUp
    during_start: list[float]  # lateness of start-up group sensors whose deadline fell before ready
    startup_offline: int  # start-up group sensors that turned offline at all
    late: list[float]  # lateness of the steady-state group
    hot: float
    updates: int


def run(args: argparse.Namespace, harness: ServiceHarness, log_dir: Path) -> None:
    """Seed, set up, launch the gateway (timed), arm the steady silent sensors, stream, measure, report."""
    template, _ = harness.create_migrated_template("live_tpl")
    url = harness.create_database("live", template=template)
    seed_s = asyncio.run(seed_city(url, args.lots, args.spots_per_lot))
    assert harness.mqtt_url is not None
    prefix = f"live{secrets.token_hex(3)}/parking/v1"
    silent, startup, set_up_s = asyncio.run(set_up(url, args))
    quiet = set(silent) | set(startup)
    speaking = [f"sen-bl{lot}-s{s:04d}" for lot in range(args.lots) for s in range(args.spots_per_lot)]
    speaking = [d for d in speaking if d not in quiet]
    endpoint = MqttEndpoint.from_url(harness.mqtt_url)
    launched = time.time()
    if startup:
        asyncio.run(arm_silent(url, startup, datetime.fromtimestamp(launched, UTC), args.startup_seconds))
    with gateways(harness, url, prefix, args, log_dir):
        ready = time.time()
        start = StartUp(ready - launched, start_up_steps(log_dir / "gw-0.log", launched))
        hot_before = asyncio.run(hot_counts(url))
        armed = time.time()
        asyncio.run(arm_silent(url, silent, datetime.fromtimestamp(armed + STEADY_LEAD_S, UTC), args.seconds))
        until = max(armed + STEADY_LEAD_S + args.seconds, launched + args.startup_seconds) + SLACK_S
        count = int(args.stream_rate * (until - time.time()))
        stream = threading.Thread(
            target=publish, args=(endpoint, prefix, speaking, count), kwargs={"rate": args.stream_rate}
        )
        stream.start()
        time.sleep(max(0.0, until - time.time()))
        steady = asyncio.run(lateness(url, silent))
        early = asyncio.run(lateness(url, startup))
        hot_after = asyncio.run(hot_counts(url))
        stream.join()
        cost = asyncio.run(costs(url))
    updates = hot_after[0] - hot_before[0]
    found = Found(
        start,
        sorted(late for deadline, late in early if deadline.timestamp() < ready),
        len(early),
        sorted(late for _, late in steady),
        (hot_after[1] - hot_before[1]) / updates if updates else 1.0,
        updates,
    )
    report(args, seed_s, set_up_s, found, cost)


def spread(values: list[float]) -> str:
    """Return 'p50 …, p99 …, max …' of seconds, in ms."""
    return (
        f"p50 {pct(values, 0.5) * 1000:,.0f} ms, p99 {pct(values, 0.99) * 1000:,.0f} ms, "
        f"max {values[-1] * 1000:,.0f} ms"
    )


def report(args: argparse.Namespace, seed_s: float, set_up_s: float, found: Found, cost: Cost) -> None:
    """Print the figures and add them to `make bench`'s table."""
    late, start = found.late, found.start
    missing = args.silent - len(late)
    load = load_average()
    print(
        f"# liveness benchmark {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()}: "
        f"{os.cpu_count()} CPUs, {cost.devices:,} sensors (seeded in {seed_s:.0f} s, set up in "
        f"{set_up_s:.0f} s), {args.silent:,} silent with deadlines over {args.seconds:.0f} s once the "
        f"gateway was ready, {args.startup_silent:,} over the {args.startup_seconds:.0f} s after its "
        f"launch, stream {args.stream_rate:,.0f}/s, {args.processes} gateway process(es), "
        f"load average (1 / 5 / 15 min) {load}"
    )
    steps = ", ".join(f"{name} {at:.1f} s" for name, at in sorted(start.steps.items(), key=lambda kv: kv[1]))
    print(f"gateway start-up, launch to mqtt.subscribed: {start.seconds:.1f} s ({steps or 'no log'})")
    during = found.during_start
    print(
        f"deadlines during start-up: {len(during)} of {args.startup_silent:,} fell before the gateway was "
        f"ready; offline after the deadline: {spread(during) if during else '-'} "
        f"(start-up group not turned offline: {args.startup_silent - found.startup_offline})"
    )
    if late:
        print(
            f"steady state, offline after the deadline: {spread(late)}; "
            f"not turned offline: {missing} (target: all, within 1 s)"
        )
    print(
        f"one sweep's due query {cost.due_ms:.1f} ms; the old scan of every device {cost.old_ms:.1f} ms; "
        f"device updates HOT {found.hot:.1%} of {found.updates:,}"
    )
    print("plan of the due query:")
    for line in cost.plan:
        print(f"    {line}")
    p99 = pct(late, 0.99) if late else float("inf")
    sensors = f"{cost.devices:,} sensors"
    figures = [
        Figure(
            f"silent sensor offline after its deadline, p99, steady state, {sensors}",
            p99 * 1000,
            "ms",
            "<= 1,000 ms, none missed",
            p99 <= TARGET_LATE_S and missing == 0,
            load=load,
        ),
        Figure(f"gateway start-up to subscribed, {sensors}", start.seconds, "s", "-", None, load=load),
    ]
    if during:
        figures.append(
            Figure(
                f"silent sensor offline after a deadline during start-up, max, {sensors}",
                during[-1] * 1000,
                "ms",
                "-",
                None,
                load=load,
            )
        )
    figures.append(
        Figure(
            "one liveness sweep (due deadlines)",
            cost.due_ms,
            "ms",
            "no scan of devices",
            None,
            "old scan of every device",
            cost.old_ms,
            load,
        )
    )
    record(*figures)


def main(argv: list[str] | None = None) -> int:
    """Start the harness, run, stop everything."""
    args = parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="live-bench-") as tmp,
        ServiceHarness.from_environment(base_dir=Path(tmp) / "services") as harness,
    ):
        run(args, harness, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
