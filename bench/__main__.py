"""``python -m bench`` (``make bench``): every benchmark in turn, each against this machine's raw limits."""

from __future__ import annotations

import subprocess
import sys

BENCHMARKS = (
    "bench.gateway_bench",
    "bench.gate_latency",
    "bench.vacancies_bench",
    "bench.forecast_bench",
    "bench.spread_bench",
)


def main() -> int:
    """Run each benchmark module with its default size; each module has its own --help."""
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(
            f"usage: python -m bench\n\nRuns {', '.join(BENCHMARKS)} in turn with their defaults;"
            " run a module directly (python -m bench.gateway_bench --help) to choose sizes."
        )
        return 0
    failures = 0
    for module in BENCHMARKS:
        print(f"\n=== {module} ===", flush=True)
        failures += subprocess.run([sys.executable, "-m", module], check=False).returncode != 0
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
