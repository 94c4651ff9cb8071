"""A batch the database refuses is split until the one poison message is dropped; the rest commit."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime

import pytest

from device_gateway.ports import StoreUnavailableError
from device_gateway.results import BatchResult, LotRow
from tests.gateway_fakes import FakeStore, envelope, fake_gateway


async def test_a_poison_message_is_isolated_and_recorded() -> None:
    """Only the refused message is kept out, recorded as an `unstorable` refusal; the rest commit."""
    store = FakeStore(poison_devices={"d13"})
    _, writer = fake_gateway(store)
    result = await writer.commit_isolating([envelope(i) for i in range(20)])
    assert result is not None
    assert result.accepted == 19
    assert result.rejected == {"unstorable": 1}
    assert sorted(r.seq for r in store.written) == [i for i in range(20) if i != 13]
    assert [(r.reason.value, r.topic) for r in store.refused] == [("unstorable", envelope(13).topic)]
    assert "value out of range" in store.refused[0].detail
    assert writer.metrics.db_errors > 0
    assert writer.metrics.unrecorded == 0


async def test_other_database_errors_are_retried() -> None:
    """An error of the environment (not of the data) retries the same batch, never drops it."""
    store = FakeStore(failures=[StoreUnavailableError("disk full"), StoreUnavailableError("disk full")])
    _, writer = fake_gateway(store)
    result = await writer.commit_isolating([envelope(i) for i in range(5)])
    assert result is not None
    assert store.attempts == [5, 5, 5]
    assert len(store.written) == 5
    assert writer.metrics.db_errors == 2


def test_merging_batch_results_keeps_every_field() -> None:
    """Two halves of a split batch add up to what the whole did: counts, refusals, lots, presence."""
    row = LotRow("L1", 10, 3, 7, 0, 0, 0, False, datetime(2026, 1, 1, tzinfo=UTC))
    first = BatchResult(accepted=3, duplicates=1, status_changes=2, presence=4, lots=[row])
    first.rejected["schema"] = 1
    second = BatchResult(accepted=5, duplicates=2, status_changes=1, presence=6, lots=[row])
    second.rejected.update(["schema", "not_json"])
    merged = first.merge(second)
    assert (merged.accepted, merged.duplicates, merged.status_changes, merged.presence) == (8, 3, 3, 10)
    assert merged.rejected == {"schema": 2, "not_json": 1}
    assert merged.lots == [row, row]
    empty = BatchResult()
    assert all(getattr(merged, f.name) != getattr(empty, f.name) for f in fields(BatchResult))


def test_a_connection_broken_by_a_database_shutdown_is_retried_not_fatal() -> None:
    """asyncpg's InternalClientError (the server closed the connection mid-operation) means: retry."""
    import asyncpg

    from device_gateway.pg_store import translated

    with pytest.raises(StoreUnavailableError), translated():
        raise asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress")
