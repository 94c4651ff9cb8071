"""``python -m bench`` (``make bench``): every benchmark in turn, then one table of every figure."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.summary import SUMMARY_ENV, load_average, read, table

BENCHMARKS = (
    "bench.gateway_bench",
    "bench.gate_latency",
    "bench.vacancies_bench",
    "bench.liveness_bench",
    "bench.forecast_bench",
    "bench.spread_bench",
)


def main() -> int:
    """Run each benchmark module with its default size; each module has its own --help."""
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(
            f"usage: python -m bench\n\nRuns {', '.join(BENCHMARKS)} in turn with their defaults, then "
            "prints one table: each figure, its bare limit measured in the same run, the ratio, the "
            "target and the load average. Run it on a quiet machine (nothing else running); run a "
            "module directly (python -m bench.gateway_bench --help) to choose sizes."
        )
        return 0
    failures = 0
    before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-summary-") as tmp:
        summary = Path(tmp) / "figures.jsonl"
        env = os.environ | {SUMMARY_ENV: str(summary)}
        for module in BENCHMARKS:
            print(f"\n=== {module} ===", flush=True)
            failures += subprocess.run([sys.executable, "-m", module], env=env, check=False).returncode != 0
        print("\n=== summary ===")
        print(table(read(summary), before, load_average()))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
