"""Store adapter for provisioning: districts, lots with their spots, devices, tokens (asyncpg)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from parking_core.adapters.broker_files import DeviceGrant
from parking_core.adapters.lot_changes import record_lot_change

Connection = asyncpg.Connection | PoolConnectionProxy  # what pool.acquire() yields, or a plain connection


class ProvisioningError(Exception):
    """Base class for refusals of a provisioning request."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class UnknownReferenceError(ProvisioningError, LookupError):
    """Raised when a request names a district, lot or spot that does not exist."""


class ConflictError(ProvisioningError):
    """Raised when a request contradicts what exists (a spot of another lot, a spot bound twice)."""


@dataclass(frozen=True, slots=True)
class SpotSpec:
    """A spot as the admin declares it."""

    spot_id: str
    label: str = ""
    zone_id: str | None = None


@dataclass(frozen=True, slots=True)
class LotSpec:
    """A lot as the admin declares it; its spots replace the ones it had."""

    district_id: str
    name: str
    kind: str
    lat: float
    lon: float
    capacity: int
    time_zone: str
    tariff_id: str | None
    status: str
    spots: Sequence[SpotSpec]
    counted_by: str = "sensors"  # or "gates": free = capacity - sessions inside (docs/gates.md)


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    """A zone of a lot as the admin declares it."""

    lot_id: str
    name: str
    kind: str | None = None  # billing's lot kind: on_street, above_ground, underground


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """A device as the admin declares it."""

    kind: str
    model: str
    heartbeat_interval_s: int
    stale_after_s: int
    spot_id: str | None = None
    lot_id: str | None = None
    lane: str | None = None


@dataclass(frozen=True, slots=True)
class DistrictPlace:
    """Where a district sits in the city: its kind, map outline, public spaces, onboarding day."""

    kind: str = "district"
    outline_name: str | None = None
    public_spaces: int | None = None
    onboarded_on: date | None = None


async def put_district(
    conn: Connection, district_id: str, name: str, place: DistrictPlace | None = None
) -> bool:
    """Create or update a district; return True if it was created."""
    place = place or DistrictPlace()
    created: bool = await conn.fetchval(
        "INSERT INTO districts (district_id, name, kind, outline_name, public_spaces, onboarded_on)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (district_id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
        " outline_name = EXCLUDED.outline_name, public_spaces = EXCLUDED.public_spaces,"
        " onboarded_on = EXCLUDED.onboarded_on, updated_at = now()"
        " RETURNING (xmax = 0)",
        district_id,
        name,
        place.kind,
        place.outline_name,
        place.public_spaces,
        place.onboarded_on,
    )
    return created


async def put_zone(conn: Connection, zone_id: str, spec: ZoneSpec) -> bool:
    """Create or update a zone of a lot; a zone never moves to another lot. Return True if created."""
    async with conn.transaction():
        if await conn.fetchval("SELECT 1 FROM lots WHERE lot_id = $1", spec.lot_id) is None:
            raise UnknownReferenceError(f"unknown lot {spec.lot_id!r}", "lot_id")
        owner = await conn.fetchval("SELECT lot_id FROM zones WHERE zone_id = $1 FOR UPDATE", zone_id)
        if owner is not None and owner != spec.lot_id:
            raise ConflictError(f"zone {zone_id!r} belongs to lot {owner!r}", "lot_id")
        created: bool = await conn.fetchval(
            "INSERT INTO zones (zone_id, lot_id, name, kind) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (zone_id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
            " updated_at = now() RETURNING (xmax = 0)",
            zone_id,
            spec.lot_id,
            spec.name,
            spec.kind,
        )
        return created


async def check_spot_zones(conn: Connection, lot_id: str, spots: Sequence[SpotSpec]) -> None:
    """Raise UnknownReferenceError naming the first spot whose zone is not one of *lot_id*'s."""
    named = {s.zone_id for s in spots if s.zone_id is not None}
    if not named:
        return
    rows = await conn.fetch(
        "SELECT zone_id FROM zones WHERE zone_id = ANY($1::text[]) AND lot_id = $2", sorted(named), lot_id
    )
    known = {r["zone_id"] for r in rows}
    for index, spot in enumerate(spots):
        if spot.zone_id is not None and spot.zone_id not in known:
            raise UnknownReferenceError(
                f"lot {lot_id!r} has no zone {spot.zone_id!r} (PUT /v1/admin/zones/{spot.zone_id} first)",
                f"spots[{index}].zone_id",
            )


_RECOUNT = """
UPDATE lots SET
    free_count = c.free, occupied_count = c.occupied, reserved_count = c.reserved,
    unknown_count = c.unknown + (lots.capacity - c.total), closed_count = c.closed,
    counts_updated_at = now()
FROM (
    SELECT count(*) FILTER (WHERE status = 'free') AS free,
           count(*) FILTER (WHERE status = 'occupied') AS occupied,
           count(*) FILTER (WHERE status = 'reserved') AS reserved,
           count(*) FILTER (WHERE status = 'unknown') AS unknown,
           count(*) FILTER (WHERE status = 'closed') AS closed,
           count(*) AS total
    FROM spots WHERE lot_id = $1
) AS c
WHERE lots.lot_id = $1
"""


# Counted at the gates: inside sessions and holds without a spot (sql/0061's one function).
_RECOUNT_GATES = "SELECT gate_lot_recount($1)"


async def put_lot(conn: Connection, lot_id: str, spec: LotSpec) -> bool:
    """Create or replace a lot and its spots, in one transaction; return True if created."""
    async with conn.transaction():
        if await conn.fetchval("SELECT 1 FROM districts WHERE district_id = $1", spec.district_id) is None:
            raise UnknownReferenceError(f"unknown district {spec.district_id!r}", "district_id")
        wanted = [spot.spot_id for spot in spec.spots]
        foreign = await conn.fetch(
            "SELECT spot_id, lot_id FROM spots WHERE spot_id = ANY($1::text[]) AND lot_id <> $2",
            wanted,
            lot_id,
        )
        if foreign:
            index = wanted.index(foreign[0]["spot_id"])
            raise ConflictError(
                f"spot {foreign[0]['spot_id']!r} belongs to lot {foreign[0]['lot_id']!r}",
                f"spots[{index}].spot_id",
            )
        await check_spot_zones(conn, lot_id, spec.spots)
        bound = await conn.fetch(
            "SELECT s.spot_id, d.device_id FROM spots s JOIN devices d USING (spot_id)"
            " WHERE s.lot_id = $1 AND NOT s.spot_id = ANY($2::text[])",
            lot_id,
            wanted,
        )
        if bound:
            raise ConflictError(
                f"spot {bound[0]['spot_id']!r} would be removed but sensor {bound[0]['device_id']!r}"
                " is bound to it; rebind or delete the device first",
                "spots",
            )
        created: bool = await conn.fetchval(
            "INSERT INTO lots (lot_id, district_id, name, kind, lat, lon, capacity, time_zone, tariff_id,"
            " status, unknown_count, counted_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11)"
            " ON CONFLICT (lot_id) DO UPDATE SET district_id = EXCLUDED.district_id, name = EXCLUDED.name,"
            " kind = EXCLUDED.kind, lat = EXCLUDED.lat, lon = EXCLUDED.lon, capacity = EXCLUDED.capacity,"
            " time_zone = EXCLUDED.time_zone, tariff_id = EXCLUDED.tariff_id, status = EXCLUDED.status,"
            " counted_by = EXCLUDED.counted_by,"
            " free_count = 0, occupied_count = 0, reserved_count = 0, unknown_count = 0, closed_count = 0,"
            " updated_at = now() RETURNING (xmax = 0)",
            lot_id,
            spec.district_id,
            spec.name,
            spec.kind,
            spec.lat,
            spec.lon,
            spec.capacity,
            spec.time_zone,
            spec.tariff_id,
            spec.status,
            spec.counted_by,
        )
        await conn.execute(
            "DELETE FROM spots WHERE lot_id = $1 AND NOT spot_id = ANY($2::text[])", lot_id, wanted
        )
        await conn.executemany(
            "INSERT INTO spots (spot_id, lot_id, label, zone_id) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (spot_id) DO UPDATE SET label = EXCLUDED.label, zone_id = EXCLUDED.zone_id",
            [(s.spot_id, lot_id, s.label, s.zone_id) for s in spec.spots],
        )
        await conn.execute(_RECOUNT if spec.counted_by == "sensors" else _RECOUNT_GATES, lot_id)
        await record_lot_change(conn, [lot_id], datetime.now(UTC), "provisioning")
    return created


async def put_device(conn: Connection, device_id: str, spec: DeviceSpec, password_hash: str | None) -> bool:
    """Create or update a device; a new one needs *password_hash*. Return True if created."""
    async with conn.transaction():
        lot_id = spec.lot_id
        if spec.spot_id is not None:
            lot_id = await conn.fetchval("SELECT lot_id FROM spots WHERE spot_id = $1", spec.spot_id)
            if lot_id is None:
                raise UnknownReferenceError(f"unknown spot {spec.spot_id!r}", "spot_id")
            other = await conn.fetchval(
                "SELECT device_id FROM devices WHERE spot_id = $1 AND device_id <> $2",
                spec.spot_id,
                device_id,
            )
            if other is not None:
                raise ConflictError(f"spot {spec.spot_id!r} is already bound to sensor {other!r}", "spot_id")
        elif await conn.fetchval("SELECT 1 FROM lots WHERE lot_id = $1", lot_id) is None:
            raise UnknownReferenceError(f"unknown lot {lot_id!r}", "lot_id")
        exists = await conn.fetchval("SELECT 1 FROM devices WHERE device_id = $1", device_id)
        if exists is None and password_hash is None:
            raise ValueError("a new device needs a password hash")
        created: bool = await conn.fetchval(
            "INSERT INTO devices (device_id, kind, spot_id, lot_id, lane, model, heartbeat_interval_s,"
            " stale_after_s, credential_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, coalesce($9, ''))"
            " ON CONFLICT (device_id) DO UPDATE SET kind = EXCLUDED.kind, spot_id = EXCLUDED.spot_id,"
            " lot_id = EXCLUDED.lot_id, lane = EXCLUDED.lane, model = EXCLUDED.model,"
            " heartbeat_interval_s = EXCLUDED.heartbeat_interval_s, stale_after_s = EXCLUDED.stale_after_s,"
            " credential_hash = coalesce($9, devices.credential_hash), updated_at = now()"
            " RETURNING (xmax = 0)",
            device_id,
            spec.kind,
            spec.spot_id,
            lot_id,
            spec.lane,
            spec.model,
            spec.heartbeat_interval_s,
            spec.stale_after_s,
            password_hash,
        )
        return created


async def device_grants(conn: Connection | asyncpg.Pool) -> list[DeviceGrant]:
    """Return what every device may do on the broker."""
    rows = await conn.fetch("SELECT device_id, kind, credential_hash, lot_id FROM devices ORDER BY device_id")
    return [DeviceGrant(r["device_id"], r["kind"], r["credential_hash"], r["lot_id"]) for r in rows]


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """An operator token (scoped to districts or lots) or a driver token (bound to plates)."""

    role: str
    label: str
    district_ids: Sequence[str]
    lot_ids: Sequence[str]
    plates: Sequence[str]
    expires_at: datetime | None
    account_id: str | None = None  # a driver account (sql/0050_money.sql): plates follow its bindings


async def create_token(conn: Connection, token_id: str, token_hash: str, spec: TokenSpec) -> None:
    """Store a new token (hashed), refusing unknown districts or lots."""
    district_ids, lot_ids = list(spec.district_ids), list(spec.lot_ids)
    missing_d = await conn.fetch(
        "SELECT d FROM unnest($1::text[]) WITH ORDINALITY AS u(d, i)"
        " WHERE NOT EXISTS (SELECT 1 FROM districts WHERE district_id = d) ORDER BY i",
        district_ids,
    )
    if missing_d:
        index = district_ids.index(missing_d[0]["d"])
        raise UnknownReferenceError(f"unknown district {missing_d[0]['d']!r}", f"district_ids[{index}]")
    missing_l = await conn.fetch(
        "SELECT l FROM unnest($1::text[]) WITH ORDINALITY AS u(l, i)"
        " WHERE NOT EXISTS (SELECT 1 FROM lots WHERE lot_id = l) ORDER BY i",
        lot_ids,
    )
    if missing_l:
        index = lot_ids.index(missing_l[0]["l"])
        raise UnknownReferenceError(f"unknown lot {missing_l[0]['l']!r}", f"lot_ids[{index}]")
    await conn.execute(
        "INSERT INTO tokens"
        " (token_id, token_hash, role, label, district_ids, lot_ids, plates, expires_at, account_id)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        token_id,
        token_hash,
        spec.role,
        spec.label,
        district_ids,
        lot_ids,
        list(spec.plates),
        spec.expires_at,
        spec.account_id,
    )
