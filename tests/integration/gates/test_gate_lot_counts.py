"""A lot counted at its gates: free = capacity - sessions inside, kept by the database itself."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import pytest

from device_gateway.sweeps import recount_lots
from parking_core.adapters.provisioning import LotSpec, put_district, put_lot

pytestmark = [pytest.mark.db]
T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
SPEC = LotSpec("gd2", "gated", "off_street", 34.75, 113.66, 5, "Asia/Shanghai", None, "open", [], "gates")


async def counts(conn: asyncpg.Connection) -> tuple[int, int, int]:
    row = await conn.fetchrow(
        "SELECT free_count, occupied_count, unknown_count FROM lots WHERE lot_id = 'gl-c'"
    )
    assert row is not None
    return row["free_count"], row["occupied_count"], row["unknown_count"]


async def test_free_is_capacity_minus_sessions_inside(database_url: str) -> None:
    """Provisioned with no spots it is all free; sessions move it; a start-up recount agrees."""
    conn = await asyncpg.connect(database_url)
    try:
        await put_district(conn, "gd2", "gates")
        await put_lot(conn, "gl-c", SPEC)
        assert await counts(conn) == (5, 0, 0)
        ids = [uuid.uuid4() for _ in range(3)]
        for n, sid in enumerate(ids):
            await conn.execute(
                "INSERT INTO sessions (session_id, lot_id, kind, state, plate, started_at)"
                " VALUES ($1, 'gl-c', 'gate', $2, $3, $4)",
                sid,
                "pending" if n == 0 else "open",
                f"豫A1000{n}",
                T0,
            )
        assert await counts(conn) == (2, 3, 0)
        await conn.execute("UPDATE sessions SET state = 'cancelled' WHERE session_id = $1", ids[0])
        await conn.execute(
            "UPDATE sessions SET state = 'closed', ended_at = $2 WHERE session_id = $1", ids[1], T0
        )
        assert await counts(conn) == (4, 1, 0)
        await conn.execute("UPDATE lots SET free_count = 0, occupied_count = 0 WHERE lot_id = 'gl-c'")
        assert "gl-c" in await recount_lots(conn, T0)
        assert await counts(conn) == (4, 1, 0)
        await put_lot(conn, "gl-c", SPEC)  # re-provisioning keeps the count
        assert await counts(conn) == (4, 1, 0)
    finally:
        await conn.close()
