"""Helpers for gate tests: gated lots, their gates and tariff, straight in SQL."""

from __future__ import annotations

import json

import asyncpg

from billing import load_example_tariffs, tariff_to_json
from parking_core.gates import Lane
from parking_core.ids import LotId
from tests.strategies_gates import gate_device

TARIFF_ID = "zz-zone1-underground"  # 15 free minutes, tiers by the hour, a 30-yuan daily cap


async def store_example_tariff(conn: asyncpg.Connection, tariff_id: str = TARIFF_ID) -> None:
    """Store one of the example tariffs (once; a second call does nothing)."""
    tariff = load_example_tariffs()[tariff_id]
    await conn.execute(
        "INSERT INTO tariff_versions (tariff_id, version, valid_from, valid_to, document)"
        " VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING",
        tariff.tariff_id,
        tariff.version,
        tariff.valid_from,
        tariff.valid_to,
        json.dumps(tariff_to_json(tariff), ensure_ascii=False),
    )


async def provision_gate_lots(conn: asyncpg.Connection, lots: list[str], capacity: int) -> None:
    """Create a district, gate-counted lots with an entry and an exit gate each, and the tariff."""
    await store_example_tariff(conn)
    await conn.execute(
        "INSERT INTO districts (district_id, name) VALUES ('gd', 'gates') ON CONFLICT DO NOTHING"
    )
    for lot in lots:
        await conn.execute(
            "INSERT INTO lots (lot_id, district_id, name, kind, lat, lon, capacity, tariff_id, counted_by,"
            " free_count) VALUES ($1, 'gd', $1, 'off_street', 34.75, 113.66, $2, $3, 'gates', $2)"
            " ON CONFLICT DO NOTHING",
            lot,
            capacity,
            TARIFF_ID,
        )
        for lane in Lane:
            await conn.execute(
                "INSERT INTO devices (device_id, kind, lot_id, lane, stale_after_s, credential_hash)"
                " VALUES ($1, 'gate', $2, $3, 600, '') ON CONFLICT DO NOTHING",
                gate_device(LotId(lot), lane),
                lot,
                lane.value,
            )
