"""The vacancies benchmark's city: Zhengzhou-sized lots, spots and sensors seeded by COPY."""

# ruff: noqa: S311  (benchmark randomness is not cryptographic)

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from parking_core.liveness import default_stale_after
from simulators.city import CENTRE_LAT, CENTRE_LON

HALF_LAT = 0.18  # ±20 km north–south
HALF_LON = 0.20  # ±18 km east–west at 34.7° N: a ~40 × 37 km built-up Zhengzhou
DISTRICT_GRID = 4  # 4 × 4 districts over the city
CHUNK_LOTS = 5000  # lots (and their spots and sensors) per COPY round
SEED = 20_260_101
M_PER_DEG = 111_195.0


def log(message: str) -> None:
    """Print a progress line with the time."""
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def _clip(value: float, half: float) -> float:
    return max(-half, min(half, value))


def _lot_place(rng: random.Random) -> tuple[float, float]:
    """Return a lot's (dlat, dlon) from the centre: denser in the middle, some everywhere."""
    if rng.random() < 0.6:
        return _clip(rng.gauss(0, HALF_LAT / 3), HALF_LAT), _clip(rng.gauss(0, HALF_LON / 3), HALF_LON)
    return rng.uniform(-HALF_LAT, HALF_LAT), rng.uniform(-HALF_LON, HALF_LON)


def _tariff_for(kind: str, dlat: float, dlon: float, n: int) -> str | None:
    """Return a lot's example tariff by ring (zone 1 < 5 km < zone 2 < 12 km < zone 3) and kind."""
    if n % 10 == 9:
        return None  # one lot in ten has no tariff published
    km = math.hypot(dlat, dlon * math.cos(math.radians(CENTRE_LAT))) * M_PER_DEG / 1000
    if km < 5:
        if kind == "off_street":
            return "zz-zone1-underground" if n % 2 else "zz-zone1-above-ground"
        return "zz-zone1-on-street"
    return "zz-zone2-on-street" if km < 12 else "zz-zone3-on-street"


def device_id(lot: int, spot: int) -> str:
    """Return the id of the bay sensor of spot *spot* of lot *lot*."""
    return f"sen-bl{lot}-s{spot:04d}"


@dataclass
class Chunk:
    """Rows of some lots, their spots and sensors, ready for COPY."""

    lots: list[tuple[Any, ...]]
    spots: list[tuple[Any, ...]]
    devices: list[tuple[Any, ...]]


def make_chunk(rng: random.Random, first: int, last: int, spots_per_lot: int, hashed: str) -> Chunk:
    """Build the rows of lots first..last-1 with random occupancy, counters matching the spots."""
    now = datetime.now(UTC)
    read_at = now - timedelta(hours=1)
    stale = int(default_stale_after(timedelta(hours=1)).total_seconds())
    chunk = Chunk([], [], [])
    for n in range(first, last):
        dlat, dlon = _lot_place(rng)
        kind = "on_street" if n % 2 == 0 else "off_street"
        row = min(DISTRICT_GRID - 1, int((dlat + HALF_LAT) / (2 * HALF_LAT) * DISTRICT_GRID))
        col = min(DISTRICT_GRID - 1, int((dlon + HALF_LON) / (2 * HALF_LON) * DISTRICT_GRID))
        lot_id = f"bl{n}"
        silent = rng.random() < 0.02  # every sensor of the lot silent: the lot is unknown
        busy = rng.uniform(0.3, 1.0)
        counts = {"free": 0, "occupied": 0, "unknown": 0}
        for s in range(spots_per_lot):
            spot_id = f"{lot_id}-s{s:04d}"
            if silent or rng.random() < 0.03:
                status, occupied = "unknown", None
            else:
                occupied = rng.random() < busy
                status = "occupied" if occupied else "free"
            counts[status] += 1
            known = occupied is not None
            chunk.spots.append(
                (spot_id, lot_id, status, read_at, read_at if known else None, 0 if known else None, occupied)
            )
            chunk.devices.append(
                (device_id(n, s), "bay_sensor", spot_id, lot_id, 3600, stale, hashed, "sim-bay-1")
            )
        chunk.lots.append(
            (
                lot_id,
                f"bd{row * DISTRICT_GRID + col}",
                f"Lot {n}",
                kind,
                CENTRE_LAT + dlat,
                CENTRE_LON + dlon,
                spots_per_lot,
                _tariff_for(kind, dlat, dlon, n),
                "closed" if rng.random() < 0.03 else "open",
                counts["free"],
                counts["occupied"],
                0,
                counts["unknown"],
                0,
                now - timedelta(seconds=rng.uniform(0, 600)),
            )
        )
    return chunk


LOT_COLUMNS = (
    "lot_id",
    "district_id",
    "name",
    "kind",
    "lat",
    "lon",
    "capacity",
    "tariff_id",
    "status",
    "free_count",
    "occupied_count",
    "reserved_count",
    "unknown_count",
    "closed_count",
    "counts_updated_at",
)
SPOT_COLUMNS = ("spot_id", "lot_id", "status", "since", "last_reading_ts", "last_reading_seq", "occupied")
DEVICE_COLUMNS = (
    "device_id",
    "kind",
    "spot_id",
    "lot_id",
    "heartbeat_interval_s",
    "stale_after_s",
    "credential_hash",
    "model",
)


async def seed_city(url: str, lots: int, spots_per_lot: int) -> float:
    """COPY districts, example tariffs, lots, spots and sensors; return the seconds taken."""
    from billing import parse_tariff, tariff_to_json
    from billing.examples import example_tariff_documents
    from parking_core.adapters.broker_files import hash_password, new_device_password

    began = time.perf_counter()
    rng = random.Random(SEED)
    # One hash of a password nobody is told, for every sensor of this throwaway database: PBKDF2 per
    # device would take minutes at 1M, and the bench never connects as a sensor.
    hashed = hash_password(new_device_password())
    conn = await asyncpg.connect(url)
    try:
        with contextlib.suppress(asyncpg.PostgresError):  # superuser only: FK triggers off, rows consistent
            await conn.execute("SET session_replication_role = replica")
        for document in example_tariff_documents().values():
            tariff = parse_tariff(document)
            await conn.execute(
                "INSERT INTO tariff_versions (tariff_id, version, valid_from, valid_to, document)"
                " VALUES ($1, $2, $3, $4, $5)",
                tariff.tariff_id,
                tariff.version,
                tariff.valid_from,
                tariff.valid_to,
                json.dumps(tariff_to_json(tariff)),
            )
        await conn.executemany(
            "INSERT INTO districts (district_id, name) VALUES ($1, $1)",
            [(f"bd{i}",) for i in range(DISTRICT_GRID * DISTRICT_GRID)],
        )
        for first in range(0, lots, CHUNK_LOTS):
            last = min(lots, first + CHUNK_LOTS)
            chunk = make_chunk(rng, first, last, spots_per_lot, hashed)
            async with conn.transaction():
                await conn.copy_records_to_table("lots", records=chunk.lots, columns=LOT_COLUMNS)
                await conn.copy_records_to_table("spots", records=chunk.spots, columns=SPOT_COLUMNS)
                await conn.copy_records_to_table("devices", records=chunk.devices, columns=DEVICE_COLUMNS)
            took = time.perf_counter() - began
            log(
                f"seeded {last:,}/{lots:,} lots, {last * spots_per_lot:,} spots and sensors "
                f"({last * spots_per_lot / took:,.0f} spots/s)"
            )
        # As a deployment does after a bulk load of lots: store them in the spatial index's order
        # (sql/0031 marked the index; a CLUSTER during the migration saw an empty table).
        await conn.execute("CLUSTER lots")
        await conn.execute("ANALYZE lots; ANALYZE spots; ANALYZE devices")
    finally:
        await conn.close()
    return time.perf_counter() - began
