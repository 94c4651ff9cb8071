"""The first README command: ``parking-demo`` brings everything up and live counts show in the API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from parking_core.devtools.embedded import free_port

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
DEMO_TIMEOUT_S = 240  # cold start of a cluster, migrations, seeding and the first readings


def test_the_demo_comes_up_and_shows_live_counts(tmp_path: Path) -> None:
    """`parking-demo --until-live` exits 0 only after the API reports lots with known counts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKING_")}
    env["PARKING_DATA_DIR"] = str(tmp_path / "var")
    result = subprocess.run(
        [sys.executable, "-m", "simulators.demo", "--until-live", "--http-port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "dashboard" in result.stdout
    assert "admin token" in result.stdout
