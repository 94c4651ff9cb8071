"""Write a simulated city into the database (the one place to switch to the admin API later)."""

from __future__ import annotations

import asyncpg

from parking_core.adapters.broker_files import hash_password, new_device_password
from parking_core.liveness import DEFAULT_HEARTBEAT_INTERVAL, default_stale_after
from simulators.city import CityLayout


async def provision_city(
    database_url: str,
    city: CityLayout,
    *,
    heartbeat_interval_s: int = int(DEFAULT_HEARTBEAT_INTERVAL.total_seconds()),
    stale_after_s: int | None = None,
    password: str | None = None,
) -> None:
    """Create districts, lots (counters: every spot unknown), spots and bay sensors; idempotent.

    Each sensor gets a random password of its own that nobody is told (the simulator publishes as
    the backend): knowing this code gives no way onto a broker. Give *password* to share one.
    """
    from datetime import timedelta

    stale = stale_after_s or int(default_stale_after(timedelta(seconds=heartbeat_interval_s)).total_seconds())
    shared = hash_password(password) if password is not None else None
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO districts (district_id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING",
                [(d,) for d in city.districts],
            )
            await conn.executemany(
                """INSERT INTO lots (lot_id, district_id, name, kind, lat, lon, capacity,
                                     unknown_count, counts_updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $7, now()) ON CONFLICT DO NOTHING""",
                [
                    (lot.lot_id, lot.district_id, lot.name, lot.kind, lot.lat, lot.lon, lot.capacity)
                    for lot in city.lots
                ],
            )
            await conn.execute(
                "CREATE TEMP TABLE sim_spots (spot_id text, lot_id text, device_id text,"
                " credential_hash text) ON COMMIT DROP"
            )
            await conn.copy_records_to_table(
                "sim_spots",
                columns=("spot_id", "lot_id", "device_id", "credential_hash"),
                records=[
                    (s.spot_id, lot.lot_id, s.device_id, shared or hash_password(new_device_password()))
                    for lot in city.lots
                    for s in lot.spots
                ],
            )
            await conn.execute(
                "INSERT INTO spots (spot_id, lot_id) SELECT spot_id, lot_id FROM sim_spots"
                " ON CONFLICT DO NOTHING"
            )
            await conn.execute(
                """INSERT INTO devices (device_id, kind, spot_id, lot_id, heartbeat_interval_s,
                                        stale_after_s, credential_hash, model)
                   SELECT device_id, 'bay_sensor', spot_id, lot_id, $1, $2, credential_hash, 'sim-bay-1'
                   FROM sim_spots ON CONFLICT DO NOTHING""",
                heartbeat_interval_s,
                stale,
            )
    finally:
        await conn.close()


async def provision_gate_lots(
    database_url: str,
    lots: list[tuple[str, str, str]],
    capacity: int,
    district_id: str,
    tariff_id: str | None,
) -> None:
    """Create closed lots counted at their gates, each with an entry and an exit gate; idempotent.

    *lots* are (lot_id, entry device, exit device), as ``simulators.gates.GateSimulator`` takes them.
    """
    hashed = hash_password(new_device_password())  # one password for the gates, and nobody knows it
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO districts (district_id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING",
                district_id,
            )
            for index, (lot_id, entry, exit_) in enumerate(lots):
                await conn.execute(
                    """INSERT INTO lots (lot_id, district_id, name, kind, lat, lon, capacity, tariff_id,
                                         counted_by, free_count, counts_updated_at)
                       VALUES ($1, $2, $1, 'off_street', $3, 113.66, $4, $5, 'gates', $4, now())
                       ON CONFLICT DO NOTHING""",
                    lot_id,
                    district_id,
                    34.70 + index * 0.01,
                    capacity,
                    tariff_id,
                )
                await conn.executemany(
                    """INSERT INTO devices (device_id, kind, lot_id, lane, stale_after_s,
                                            credential_hash, model)
                       VALUES ($1, 'gate', $2, $3, 3600, $4, 'sim-gate-1') ON CONFLICT DO NOTHING""",
                    [(entry, lot_id, "entry", hashed), (exit_, lot_id, "exit", hashed)],
                )
    finally:
        await conn.close()
