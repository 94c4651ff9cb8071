"""Gateway settings: the shared ``Settings`` plus ``PARKING_GATEWAY_*`` knobs of the gateway."""

from __future__ import annotations

import socket
from datetime import timedelta
from enum import StrEnum
from typing import Self

from pydantic import Field, model_validator

from device_gateway.decode import DEFAULT_MAX_PAYLOAD_BYTES, Limits
from parking_core.adapters.settings import Settings


def slot_client_id(slot: int, host: str | None = None) -> str:
    """Return the MQTT client id of gateway *slot* on *host*: ``parking-gateway-<host>-<slot>``."""
    host = host or socket.gethostname()
    suffix = f"-{slot}"
    return f"parking-gateway-{host}"[: 64 - len(suffix)] + suffix


class BrokerCheck(StrEnum):
    """What the gateway does when the start-up broker check finds a problem."""

    REFUSE = "refuse"  # log the problem and the setting to change, exit 3
    WARN = "warn"  # log it and run anyway
    OFF = "off"  # do not check (saves ~0.5 s and a burst of 2,001 messages at start)


class GatewayPaths(StrEnum):
    """Which messages a gateway process subscribes to (docs/gateway.md, "Gate processes")."""

    ALL = "all"  # bay sensors and presence (the batched writer) and gates
    SENSORS = "sensors"  # bay-sensor state and heartbeat, device presence
    GATES = "gates"  # gate plate reads, passages and command acks


class GatewaySettings(Settings):
    """Settings of one ``parking-gateway`` process (env ``PARKING_GATEWAY_*``)."""

    # A flush every 2000 rows or 50 ms: COPY cost is per row beyond ~1000, latency is bounded.
    gateway_batch_rows: int = Field(default=2000, ge=1, le=60_000)
    gateway_flush_interval_ms: int = Field(default=50, ge=1)
    gateway_history_window_h: float = Field(default=72.0, gt=0)  # CONTRACT.md default
    gateway_max_clock_ahead_s: float = Field(default=300.0, ge=0)  # CONTRACT.md: 5 minutes
    gateway_metrics_host: str = "127.0.0.1"
    gateway_metrics_port: int = Field(default=0, ge=0, le=65535)  # 0 = no metrics server
    # Persistent sessions need a stable id per process. The slot (1, 2, ...) makes one without the
    # user inventing it: parking-gateway-<host>-<slot>; an explicit client id wins over the slot.
    gateway_slot: int = Field(default=1, ge=1, le=9999)
    gateway_client_id: str = Field(default="", max_length=64)
    gateway_share_group: str = "gateway"  # "" subscribes without a shared subscription
    # A process of its own for gates keeps plate reads off the connection, the event loop and the
    # GIL that carry thousands of sensor messages a second; the others then take sensors only.
    gateway_paths: GatewayPaths = GatewayPaths.ALL
    gateway_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)  # broker keeps a week
    # MQTT 5 receive maximum: the most unacknowledged messages the broker sends us, so the bound of
    # what waits in memory during a database outage. At least two batches, so that the broker keeps
    # sending while one batch commits and the next fills.
    gateway_receive_maximum: int = Field(default=10_000, ge=1, le=65535)
    # Payloads over this are refused (`too_large`) and kept only as far as the refusal records them.
    gateway_max_payload_bytes: int = Field(default=DEFAULT_MAX_PAYLOAD_BYTES, ge=256, le=16 * 1024 * 1024)
    # Bytes held from arrival to commit; past it paho's thread stops reading (the broker keeps the rest).
    gateway_inbox_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1024 * 1024)
    # Refusals are kept this long (a TimescaleDB retention policy, or a periodic delete in plain mode).
    gateway_rejected_retention_days: float = Field(default=30.0, gt=0)
    # A sweep reads only due deadlines (sql/0030): twice a second keeps "offline within 1 s".
    gateway_liveness_interval_s: float = Field(default=0.5, gt=0)
    gateway_availability_interval_s: float = Field(default=1.0, ge=0)  # per-lot publish rate limit
    gateway_occupancy_sample_interval_s: float = Field(default=300.0, gt=0)
    gateway_reconnect_max_s: float = Field(default=30.0, gt=0)
    # Gate commands: re-sent when unacknowledged this long, at most this many sends in all, then
    # flagged to operators; the sweep also expires open commands whose passage never came.
    gateway_gate_resend_after_s: float = Field(default=2.0, gt=0)
    gateway_gate_max_sends: int = Field(default=3, ge=1, le=100)
    gateway_gate_sweep_interval_s: float = Field(default=1.0, gt=0)
    gateway_log_level: str = "info"
    # At start, queue a burst above a batch for an offline probe session and see what the broker
    # keeps (parking_core.adapters.broker_check): a stock Mosquitto drops readings while we are down.
    gateway_broker_check: BrokerCheck = BrokerCheck.REFUSE

    @model_validator(mode="after")
    def _client_id_from_slot(self) -> Self:
        if not self.gateway_client_id:
            object.__setattr__(self, "gateway_client_id", slot_client_id(self.gateway_slot))  # frozen model
        return self

    @model_validator(mode="after")
    def _window_holds_two_batches(self) -> Self:
        if self.gateway_receive_maximum < 2 * self.gateway_batch_rows:
            raise ValueError(
                f"PARKING_GATEWAY_RECEIVE_MAXIMUM ({self.gateway_receive_maximum}) must be at least twice"
                f" PARKING_GATEWAY_BATCH_ROWS ({self.gateway_batch_rows}), or the stream stalls while a"
                " batch commits"
            )
        return self

    def limits(self) -> Limits:
        """Return the time and size limits decoding applies."""
        return Limits(
            max_ahead=timedelta(seconds=self.gateway_max_clock_ahead_s),
            history_window=timedelta(hours=self.gateway_history_window_h),
            max_payload_bytes=self.gateway_max_payload_bytes,
        )

    @property
    def flush_interval_s(self) -> float:
        """Return the flush interval in seconds."""
        return self.gateway_flush_interval_ms / 1000
