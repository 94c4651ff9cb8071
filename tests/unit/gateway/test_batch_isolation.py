"""A batch the database refuses is split until the one poison message is dropped; the rest commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest

from device_gateway.config import GatewaySettings
from device_gateway.inbox import Envelope
from device_gateway.service import Decoded, Gateway
from device_gateway.store import BatchResult


def envelope(mid: int) -> Envelope:
    return Envelope(f"parking/v1/sensors/d{mid}/state", b"{}", mid, 1, 0.0, 0)


async def test_a_poison_message_is_isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the refused message is dropped; every other message's batch commits."""
    settings = GatewaySettings(mqtt_url="mqtt://127.0.0.1:1", database_url="postgresql://x/y")
    gateway = Gateway(settings, None, asyncio.Event())  # type: ignore[arg-type]
    committed: list[int] = []

    async def commit(batch: Sequence[Envelope], _decoded: Decoded | None) -> BatchResult:
        if any(e.mid == 13 for e in batch):
            raise asyncpg.NumericValueOutOfRangeError("value out of range")
        committed.extend(e.mid for e in batch)
        return BatchResult(accepted=len(batch))

    monkeypatch.setattr(gateway, "_commit", commit)
    result = await gateway.commit_isolating([envelope(i) for i in range(20)])
    assert result is not None
    assert result.accepted == 19
    assert sorted(committed) == [i for i in range(20) if i != 13]


async def test_other_database_errors_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error of the environment (not of the data) retries the same batch, never drops it."""
    settings = GatewaySettings(mqtt_url="mqtt://127.0.0.1:1", database_url="postgresql://x/y")
    gateway = Gateway(settings, None, asyncio.Event())  # type: ignore[arg-type]
    attempts: list[int] = []

    async def commit(batch: Sequence[Envelope], _decoded: Decoded | None) -> BatchResult:
        attempts.append(len(batch))
        if len(attempts) < 3:
            raise asyncpg.DiskFullError("no space left")
        return BatchResult(accepted=len(batch))

    async def no_sleep(_seconds: float) -> None:
        return None

    monkeypatch.setattr(gateway, "_commit", commit)
    monkeypatch.setattr("device_gateway.service.asyncio.sleep", no_sleep)
    result = await gateway.commit_isolating([envelope(i) for i in range(5)])
    assert result is not None
    assert attempts == [5, 5, 5]
    assert gateway.metrics.db_errors == 2
