"""The house's rules: every domain module is declared pure, and the purity check finds clock reads."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

from parking_core.devtools.purity import ROOT, clock_reads, pure_modules

INFRASTRUCTURE = {"adapters", "devtools", "__init__"}


def test_every_module_at_the_top_of_parking_core_is_declared_pure() -> None:
    """A new domain module must join the forbidden contract, or move to adapters/ or devtools/."""
    top = {p.stem for p in (ROOT / "parking_core").iterdir() if p.suffix == ".py" or p.is_dir()}
    top -= INFRASTRUCTURE | {"__pycache__"}
    declared = {m.removeprefix("parking_core.") for m in pure_modules() if m.startswith("parking_core.")}
    assert top == declared


def test_every_module_of_billing_but_its_adapters_is_declared_pure() -> None:
    """Billing's rules are pure; its store adapters live in billing/adapters, outside the list."""
    top = {p.stem for p in (ROOT / "billing").iterdir() if p.suffix == ".py" or p.is_dir()}
    top -= INFRASTRUCTURE | {"__pycache__", "tariffs"}
    declared = {m.removeprefix("billing.") for m in pure_modules() if m.startswith("billing.")}
    assert top == declared


def test_the_purity_check_finds_clock_and_environment_reads() -> None:
    """The check flags datetime.now(), date.today(), time.time() and os.getenv(), not other calls."""
    source = "import os\nfrom datetime import date, datetime\nx = datetime.now()\ny = date.today()\n"
    source += "z = os.getenv('X')\nw = max(1, 2)\nv = spot.now\n"
    assert [line for line, _ in clock_reads(source)] == [3, 4, 5]


def test_the_pure_modules_read_no_clock_today() -> None:
    """What `make check` runs, as a test: no pure module reads the clock."""
    for module in pure_modules():
        path = ROOT.joinpath(*module.split("."))
        files = sorted(path.rglob("*.py")) if path.is_dir() else [Path(f"{path}.py")]
        for file in files:
            assert list(clock_reads(file.read_text())) == [], file


def route_modules() -> set[str]:
    """Return the guidance_api modules that hold a ``routes = Routes()`` registry."""
    found = set()
    for file in (ROOT / "guidance_api").glob("*.py"):
        for node in ast.parse(file.read_text()).body:
            if (
                isinstance(node, ast.Assign)
                and [getattr(t, "id", None) for t in node.targets] == ["routes"]
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "Routes"
            ):
                found.add(f"guidance_api.{file.stem}")
    return found


def test_every_api_route_module_is_kept_independent_of_the_others() -> None:
    """A new route module joins the independence contract, so route modules never import each other."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    independent = {m for c in config if c["type"] == "independence" for m in c["modules"]}
    assert route_modules() == independent
    assert len(independent) >= 8
