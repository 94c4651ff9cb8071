"""Where a plate read's time goes in the gateway: each step's share, and what the database waits on."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import psycopg

from bench.gate_latency import add_probe_options, pct, prepare, probe
from parking_core.devtools.harness import ServiceHarness

# Backends of the bench database that wait, other than idle clients: what, on what, behind what.
WAITS = """
SELECT w.wait_event_type, w.wait_event, left(regexp_replace(w.query, '\\s+', ' ', 'g'), 70),
       CASE WHEN w.wait_event_type = 'Lock' THEN
           (SELECT left(regexp_replace(b.query, '\\s+', ' ', 'g'), 70) FROM pg_stat_activity b
            WHERE b.pid = (pg_blocking_pids(w.pid))[1])
       END
FROM pg_stat_activity w
WHERE w.datname = current_database() AND w.pid <> pg_backend_pid() AND w.state = 'active'
  AND w.wait_event_type IS NOT NULL AND w.wait_event_type NOT IN ('Client', 'Activity')
"""
TAIL = 0.95  # "slow reads" are those above this quantile of their lane's total


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(
        prog="python -m bench.gate_profile",
        description=(
            "Run bench.gate_latency's setup (same options: sensors, background load, probes) with the "
            "gateway logging gate.steps at debug level, and print where entry and exit reads spend "
            "their time: each step's p50/p99 and share of the mean, the same for the slowest 5%, and "
            "what the database's backends waited on (sampled from pg_stat_activity, with the "
            "blocking statement for lock waits). Shares, not rates: meaningful on a busy machine too."
        ),
    )
    add_probe_options(p)
    p.add_argument("--sample-ms", type=float, default=5.0, help="pg_stat_activity sampling interval")
    p.add_argument("--top", type=int, default=12, help="kinds of wait to print")
    return p.parse_args(argv)


class WaitSampler(threading.Thread):
    """Polls pg_stat_activity of *url* until stopped and counts (wait, statement, blocker)."""

    def __init__(self, url: str, every_s: float) -> None:
        super().__init__(daemon=True)
        self.url, self.every_s = url, every_s
        self.samples = 0
        self.waits: Counter[tuple[str, str, str, str]] = Counter()
        self.done = threading.Event()

    def run(self) -> None:
        """Sample until :attr:`done` is set."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.done.is_set():
                for kind, event, query, blocker in conn.execute(WAITS).fetchall():
                    self.waits[(kind, event, query or "", blocker or "")] += 1
                self.samples += 1
                time.sleep(self.every_s)


def gate_steps(log_path: Path) -> dict[str, list[dict[str, float]]]:
    """Return the gateway's gate.steps lines by kind (entry, exit, passage, ack, refused)."""
    by_kind: dict[str, list[dict[str, float]]] = defaultdict(list)
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"gate.steps"' not in line:
            continue
        entry = json.loads(line)
        kind = entry.pop("kind")
        by_kind[kind].append({k: v for k, v in entry.items() if isinstance(v, int | float)})
    return by_kind


def print_steps(kind: str, rows: list[dict[str, float]]) -> None:
    """Print each step's p50/p99 and share of the mean total, for all reads and the slowest."""
    totals = [r["total_ms"] for r in rows]
    cut = pct(totals, TAIL)
    slow = [r for r in rows if r["total_ms"] >= cut]
    print(
        f"\n{kind}: {len(rows)} reads, total p50 {pct(totals, 0.5):.2f} ms, p99 {pct(totals, 0.99):.2f} ms "
        "(from arrival in the gateway to the broker ack; the command is out at 'publish')"
    )
    print(f"{'step':<14} {'p50 ms':>8} {'p99 ms':>8} {'share':>7} {'share slowest 5%':>17}")
    steps = [k for k in rows[0] if k != "total_ms"]
    for step in steps:
        values = [r.get(step, 0.0) for r in rows]
        share = sum(values) / sum(totals)
        slow_share = sum(r.get(step, 0.0) for r in slow) / sum(r["total_ms"] for r in slow)
        print(f"{step:<14} {pct(values, 0.5):8.2f} {pct(values, 0.99):8.2f} {share:7.1%} {slow_share:17.1%}")


def main(argv: list[str] | None = None) -> int:
    """Start the harness, run the latency probes with step logging and wait sampling, print."""
    args = parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="gate-profile-") as tmp,
        ServiceHarness.from_environment(base_dir=Path(tmp) / "services") as harness,
    ):
        url, devices, lot = asyncio.run(prepare(harness, args))
        log_path = Path(tmp) / "gateway.log"
        sampler = WaitSampler(url, args.sample_ms / 1000)
        sampler.start()
        try:
            results = probe(args, harness, url, devices, lot, log_path=log_path, log_level="debug")
        finally:
            sampler.done.set()
            sampler.join()
        print(
            f"# gate profile: {len(devices)} sensors at {args.load_rate:.0f} msg/s, {args.reads} reads per "
            f"lane, {args.gap_ms:.0f} ms apart; answered: entry {len(results['entry'])}, "
            f"exit {len(results['exit'])}"
        )
        steps = gate_steps(log_path)
        for kind in ("entry", "exit"):
            if steps.get(kind):
                print_steps(kind, steps[kind])
        print(f"\nwaits in {sampler.samples} samples of pg_stat_activity (every {args.sample_ms:g} ms):")
        for (kind, event, query, blocker), n in sampler.waits.most_common(args.top):
            behind = f"  behind: {blocker}" if blocker else ""
            print(f"{n:6d}  {kind}:{event}  {query}{behind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
