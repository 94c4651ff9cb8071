"""One table for `make bench`: each figure beside its bare limit from the same run, ratio and target."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

SUMMARY_ENV = "PARKING_BENCH_SUMMARY"  # set by `python -m bench`: where each module adds its figures


@dataclass(frozen=True)
class Figure:
    """One measured figure, its bare limit measured in the same run (if any) and its target."""

    name: str
    value: float
    unit: str
    target: str  # as the issue states it, e.g. ">= 10,000 msg/s" or ">= 0.8 x bare"
    met: bool | None  # None: no target to judge against
    bare_name: str = ""
    bare_value: float | None = None
    load: str = ""  # load average (1, 5, 15 min) when the figure was taken

    @property
    def ratio(self) -> float | None:
        """Return value / bare limit."""
        if self.bare_value is None or self.bare_value == 0:
            return None
        return self.value / self.bare_value


def load_average() -> str:
    """Return the machine's 1/5/15-minute load average."""
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def record(*figures: Figure) -> None:
    """Add *figures* to the run's summary file (nothing when the module runs on its own)."""
    path = os.environ.get(SUMMARY_ENV)
    if not path:
        return
    with Path(path).open("a", encoding="utf-8") as out:
        out.writelines(json.dumps(asdict(figure)) + "\n" for figure in figures)


def read(path: Path) -> list[Figure]:
    """Return the figures recorded in *path*."""
    if not path.exists():
        return []
    return [Figure(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def table(figures: list[Figure], load_before: str, load_after: str) -> str:
    """Return the summary as a Markdown table (docs/benchmarks.md takes it as it is)."""
    lines = [
        f"load average (1 / 5 / 15 min) at start {load_before}, at end {load_after}; {os.cpu_count()} CPUs",
        "",
        "| figure | value | bare limit (same run) | ratio | target | met | load at the time |",
        "|---|---:|---|---:|---|---|---|",
    ]
    for f in figures:
        bare = f"{f.bare_name}: {_number(f.bare_value, f.unit)}" if f.bare_name else "-"
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}"
        met = {True: "yes", False: "**no**", None: "-"}[f.met]
        lines.append(
            f"| {f.name} | {_number(f.value, f.unit)} | {bare} | {ratio} | {f.target} | {met} | {f.load} |"
        )
    return "\n".join(lines)
