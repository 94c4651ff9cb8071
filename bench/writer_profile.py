"""Where a gateway batch spends its time: decoding, each SQL statement, Python between them (shares)."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg

from device_gateway import store
from device_gateway.decode import Limits, SensorReading, decode
from device_gateway.messages import encode_state
from device_gateway.store import Conn, write_batch
from parking_core.devtools.harness import ServiceHarness
from parking_core.topics import sensor_topic
from simulators.city import generate_city
from simulators.provision import provision_city

PREFIX = "parking/v1"
SPOTS_PER_LOT = 100


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench.writer_profile",
        description=(
            "Decode and commit a backlog of sensor readings in gateway batches on the harness's "
            "PostgreSQL (no MQTT), and print the share of the time each step takes: decoding, each "
            "SQL statement of store.write_batch, and the Python around them; then the top functions "
            "of a cProfile of the same run. Shares, not rates: meaningful on a busy machine too."
        ),
    )
    p.add_argument("--spots", type=int, default=5000, help="spots (and sensors) provisioned")
    p.add_argument("--readings", type=int, default=40_000, help="readings in the backlog")
    p.add_argument("--batch-rows", type=int, default=2000)
    p.add_argument("--top", type=int, default=25, help="cProfile functions to print")
    return p.parse_args(argv)


class TimedConn:
    """Forwards to an asyncpg connection, adding up the time spent in each named statement."""

    def __init__(self, conn: asyncpg.Connection, spent: dict[str, float]) -> None:
        self._conn = conn
        self._spent = spent
        self._names = {id(v): k for k, v in vars(store).items() if isinstance(v, str) and k.isupper()}

    def transaction(self) -> Any:
        """Return the connection's transaction (BEGIN/COMMIT are timed as 'commit')."""
        return _TimedTransaction(self._conn.transaction(), self._spent)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._conn, name)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            key = self._names.get(id(args[0]), name) if args and isinstance(args[0], str) else name
            began = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                self._spent[f"sql {key}"] += time.perf_counter() - began

        return timed


class _TimedTransaction:
    def __init__(self, inner: Any, spent: dict[str, float]) -> None:
        self._inner, self._spent = inner, spent

    async def __aenter__(self) -> None:
        began = time.perf_counter()
        await self._inner.__aenter__()
        self._spent["sql BEGIN"] += time.perf_counter() - began

    async def __aexit__(self, *exc: object) -> None:
        began = time.perf_counter()
        await self._inner.__aexit__(*exc)
        self._spent["sql COMMIT"] += time.perf_counter() - began


def backlog(devices: list[str], n: int) -> list[tuple[str, bytes]]:
    """Return *n* raw messages, round robin over *devices* as the benchmark publishers send them."""
    now = datetime.now(UTC)
    return [
        (
            sensor_topic(PREFIX, devices[i % len(devices)], "state"),
            encode_state(1 + i, now - timedelta(seconds=n - i), i % 3 == 0),
        )
        for i in range(n)
    ]


async def run(args: argparse.Namespace, harness: ServiceHarness) -> None:
    """Seed, then decode and write the backlog batch by batch, timing every step."""
    template, _ = harness.create_migrated_template("prof_tpl")
    url = harness.create_database("prof", template=template)
    city = generate_city(1, max(1, args.spots // SPOTS_PER_LOT), SPOTS_PER_LOT, prefix="p")
    await provision_city(url, city, heartbeat_interval_s=3600)
    messages = backlog([s.device_id for s in city.spots], args.readings)
    conn = await asyncpg.connect(url)
    spent: dict[str, float] = defaultdict(float)
    timed = cast("Conn", TimedConn(conn, spent))
    profile = cProfile.Profile()
    began = time.perf_counter()
    profile.enable()
    for start in range(0, len(messages), args.batch_rows):
        t0 = time.perf_counter()
        received = datetime.now(UTC)
        batch = messages[start : start + args.batch_rows]
        decoded = [decode(t, p, PREFIX, received, Limits()) for t, p in batch]
        readings = [d for d in decoded if isinstance(d, SensorReading)]
        spent["decode (pydantic)"] += time.perf_counter() - t0
        t1 = time.perf_counter()
        await write_batch(timed, readings, [], [], received)
        spent["write_batch total"] += time.perf_counter() - t1
    profile.disable()
    total = time.perf_counter() - began
    await conn.close()
    report(args, spent, total, profile)


def report(
    args: argparse.Namespace, spent: dict[str, float], total: float, profile: cProfile.Profile
) -> None:
    """Print the shares and the cProfile top."""
    sql = sum(v for k, v in spent.items() if k.startswith("sql "))
    spent["python inside write_batch"] = spent["write_batch total"] - sql
    print(
        f"# writer profile: {args.readings} readings over {args.spots} spots, batches of {args.batch_rows}; "
        f"{args.readings / total:,.0f} rows/s under cProfile (a rate only for comparing runs)"
    )
    print(f"{'step':<40} {'share':>7} {'ms/batch':>9}")
    batches = -(-args.readings // args.batch_rows)
    for key, value in sorted(spent.items(), key=lambda kv: -kv[1]):
        if key != "write_batch total":
            print(f"{key:<40} {value / total:>7.1%} {value / batches * 1000:>9.2f}")
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.top)
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    """Start the harness, profile, stop everything."""
    args = parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="writer-profile-") as tmp,
        ServiceHarness.from_environment(base_dir=Path(tmp) / "services") as harness,
    ):
        asyncio.run(run(args, harness))
    return 0


if __name__ == "__main__":
    sys.exit(main())
