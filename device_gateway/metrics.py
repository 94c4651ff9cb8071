"""Prometheus metrics of the gateway, kept in plain counters and served as text by aiohttp."""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

# Bucket bounds: batch sizes up to a full 2000-row batch; latencies from 1 ms to 10 s.
BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000)
SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    """A cumulative Prometheus histogram."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    samples: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        """Record one value."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.samples += 1

    def render(self, name: str) -> list[str]:
        """Return the exposition lines of this histogram."""
        lines, running = [], 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            label = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'{name}_bucket{{le="{label}"}} {running}')
        lines += [f"{name}_sum {self.total}", f"{name}_count {self.samples}"]
        return lines


@dataclass
class Metrics:
    """Everything the gateway counts."""

    received: Counter[str] = field(default_factory=Counter)  # by topic kind
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    status_changes: int = 0
    devices_offline: int = 0
    availability_published: int = 0
    db_errors: int = 0
    batches: int = 0
    inbox_depth: int = 0
    inbox_bytes: int = 0  # held from arrival to commit (bounded by PARKING_GATEWAY_INBOX_MAX_BYTES)
    unrecorded: int = 0  # refused by the database even as a refusal row: should stay 0
    lag_seconds: float = 0.0  # oldest message of the last batch: receipt to commit
    batch_size: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
    flush_seconds: Histogram = field(default_factory=lambda: Histogram(SECONDS_BUCKETS))
    gate_commands: Counter[str] = field(default_factory=Counter)  # by reason (resends not counted)
    gate_events: Counter[str] = field(default_factory=Counter)  # by kind
    gate_decide_seconds: Histogram = field(default_factory=lambda: Histogram(SECONDS_BUCKETS))

    def render(self) -> str:
        """Return the Prometheus text exposition."""
        lines = ["# TYPE gateway_messages_received_total counter"]
        lines += [
            f'gateway_messages_received_total{{kind="{k}"}} {v}' for k, v in sorted(self.received.items())
        ]
        lines += ["# TYPE gateway_messages_rejected_total counter"]
        lines += [
            f'gateway_messages_rejected_total{{reason="{k}"}} {v}' for k, v in sorted(self.rejected.items())
        ]
        lines += ["# TYPE gateway_gate_commands_total counter"]
        lines += [
            f'gateway_gate_commands_total{{reason="{k}"}} {v}' for k, v in sorted(self.gate_commands.items())
        ]
        lines += ["# TYPE gateway_gate_events_total counter"]
        lines += [f'gateway_gate_events_total{{kind="{k}"}} {v}' for k, v in sorted(self.gate_events.items())]
        lines += [
            "# TYPE gateway_gate_decide_seconds histogram",
            *self.gate_decide_seconds.render("gateway_gate_decide_seconds"),
        ]
        for name, value, kind in (
            ("gateway_readings_accepted_total", self.accepted, "counter"),
            ("gateway_readings_duplicate_total", self.duplicates, "counter"),
            ("gateway_spot_status_changes_total", self.status_changes, "counter"),
            ("gateway_devices_offline_total", self.devices_offline, "counter"),
            ("gateway_availability_published_total", self.availability_published, "counter"),
            ("gateway_db_errors_total", self.db_errors, "counter"),
            ("gateway_batches_total", self.batches, "counter"),
            ("gateway_messages_unrecorded_total", self.unrecorded, "counter"),
            ("gateway_inbox_depth", self.inbox_depth, "gauge"),
            ("gateway_inbox_bytes", self.inbox_bytes, "gauge"),
            ("gateway_lag_seconds", self.lag_seconds, "gauge"),
        ):
            lines += [f"# TYPE {name} {kind}", f"{name} {value}"]
        lines += ["# TYPE gateway_batch_size histogram", *self.batch_size.render("gateway_batch_size")]
        lines += [
            "# TYPE gateway_flush_seconds histogram",
            *self.flush_seconds.render("gateway_flush_seconds"),
        ]
        return "\n".join(lines) + "\n"


METRICS_KEY = web.AppKey("metrics", Metrics)


async def _serve_metrics(request: web.Request) -> web.Response:
    return web.Response(text=request.app[METRICS_KEY].render(), content_type="text/plain")


async def start_metrics_server(metrics: Metrics, host: str, port: int) -> web.AppRunner:
    """Serve ``/metrics`` on *host*:*port*; the caller cleans up the returned runner."""
    app = web.Application()
    app[METRICS_KEY] = metrics
    app.router.add_get("/metrics", _serve_metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


@asynccontextmanager
async def serving_metrics(metrics: Metrics, host: str, port: int) -> AsyncIterator[None]:
    """Serve ``/metrics`` on *host*:*port* while inside (port 0: no server)."""
    if not port:
        yield
        return
    runner = await start_metrics_server(metrics, host, port)
    try:
        yield
    finally:
        await runner.cleanup()
