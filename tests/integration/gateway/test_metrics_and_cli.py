"""The /metrics endpoint serves Prometheus text; the console scripts answer --help."""

from __future__ import annotations

import aiohttp
import pytest

from device_gateway.__main__ import main as gateway_main
from device_gateway.metrics import Metrics, start_metrics_server
from parking_core.devtools.embedded import free_port
from simulators.__main__ import main as sim_main


async def test_metrics_are_served() -> None:
    """Counters, labelled rejections and histograms appear in the exposition."""
    metrics = Metrics()
    metrics.rejected["schema"] += 2
    metrics.batch_size.observe(120)
    metrics.flush_seconds.observe(0.02)
    port = free_port()
    runner = await start_metrics_server(metrics, "127.0.0.1", port)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/metrics") as response,
        ):
            text = await response.text()
    finally:
        await runner.cleanup()
    assert response.status == 200
    assert 'gateway_messages_rejected_total{reason="schema"} 2' in text
    assert 'gateway_batch_size_bucket{le="250"} 1' in text
    assert "gateway_flush_seconds_count 1" in text


@pytest.mark.parametrize("entry", [gateway_main, sim_main])
def test_console_scripts_have_help(entry: object, capsys: pytest.CaptureFixture[str]) -> None:
    """parking-gateway and parking-sim print usage and exit 0."""
    with pytest.raises(SystemExit) as exit_info:
        entry(["--help"])  # type: ignore[operator]
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out
