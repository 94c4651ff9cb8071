"""The city overview ("一屏观全城"): live roll-ups per district and for the whole city, within scope."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from guidance_api.auth import require_operator
from guidance_api.context import DB_POOL, principal, utc_now
from guidance_api.openapi import RouteDoc, Routes
from guidance_api.queries import row_status
from guidance_api.scope import SCOPE_FILTER, scope_args

routes = Routes()

# Districts the caller may see: all for the admin, those named by the token, and those of its lots.
DISTRICTS = """
SELECT district_id, name FROM districts
WHERE $1::bool OR district_id = ANY($3::text[])
   OR district_id IN (SELECT district_id FROM lots WHERE lot_id = ANY($2::text[]))
ORDER BY district_id
"""
LOTS = f"""
SELECT l.lot_id, l.district_id, l.capacity, l.status AS lot_status, l.free_count, l.occupied_count,
       l.reserved_count,
       l.unknown_count, l.closed_count, l.counts_updated_at, l.shared_spaces
FROM lots l WHERE {SCOPE_FILTER}
"""
DEVICES = f"""
SELECT l.district_id, d.status, count(*) AS devices
FROM devices d JOIN lots l USING (lot_id) WHERE {SCOPE_FILTER}
GROUP BY l.district_id, d.status
"""

ROLLUP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        **{
            name: {"type": "integer"}
            for name in (
                "lots",
                "capacity",
                "free",
                "occupied",
                "reserved",
                "unknown",
                "closed",
                "closed_lots",
                "unknown_lots",
                "devices_online",
                "devices_offline",
                "devices_unknown",
                "shared_lots",
                "shared_spaces",
            )
        },
        "occupancy_percent": {"type": ["number", "null"], "description": "100 × occupied / capacity"},
        "oldest_update_at": {"type": ["string", "null"], "format": "date-time"},
        "newest_update_at": {"type": ["string", "null"], "format": "date-time"},
    },
}
OVERVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "generated_at": {"type": "string", "format": "date-time"},
        "city": {
            **ROLLUP_SCHEMA,
            "properties": {**ROLLUP_SCHEMA["properties"], "districts": {"type": "integer"}},
        },
        "districts": {
            "type": "array",
            "items": {
                **ROLLUP_SCHEMA,
                "properties": {
                    "district_id": {"type": "string"},
                    "name": {"type": "string"},
                    **ROLLUP_SCHEMA["properties"],
                },
            },
        },
    },
}


@dataclass
class Rollup:
    """Counts summed over a set of lots and their devices."""

    lots: int = 0
    capacity: int = 0
    free: int = 0
    occupied: int = 0
    reserved: int = 0
    unknown: int = 0
    closed: int = 0
    closed_lots: int = 0
    unknown_lots: int = 0
    shared_lots: int = 0  # private lots shared with the public (错时停车)
    shared_spaces: int = 0  # what sharing adds to the public's spaces right now (their quotas)
    devices: dict[str, int] = field(default_factory=lambda: {"online": 0, "offline": 0, "unknown": 0})
    updates: list[datetime] = field(default_factory=list)

    def add_lot(self, row: Any) -> None:
        """Count one lot row."""
        status = row_status(row)
        self.lots += 1
        self.capacity += row["capacity"]
        self.free += row["free_count"]
        self.occupied += row["occupied_count"]
        self.reserved += row["reserved_count"]
        self.unknown += row["unknown_count"]
        self.closed += row["closed_count"]
        self.closed_lots += status == "closed"
        self.unknown_lots += status == "unknown"
        if row["shared_spaces"] is not None:
            self.shared_lots += 1
            self.shared_spaces += row["shared_spaces"]
        if row["counts_updated_at"] is not None:
            self.updates.append(row["counts_updated_at"])

    def merge(self, others: Iterable[Rollup]) -> Rollup:
        """Add every one of *others* into this roll-up and return it."""
        for other in others:
            for name in ("lots", "capacity", "free", "occupied", "reserved", "unknown", "closed"):
                setattr(self, name, getattr(self, name) + getattr(other, name))
            self.closed_lots += other.closed_lots
            self.unknown_lots += other.unknown_lots
            self.shared_lots += other.shared_lots
            self.shared_spaces += other.shared_spaces
            for status, count in other.devices.items():
                self.devices[status] += count
            self.updates.extend(other.updates)
        return self

    def view(self) -> dict[str, Any]:
        """Return the JSON of this roll-up."""
        return {
            "lots": self.lots,
            "capacity": self.capacity,
            "free": self.free,
            "occupied": self.occupied,
            "reserved": self.reserved,
            "unknown": self.unknown,
            "closed": self.closed,
            "occupancy_percent": round(100 * self.occupied / self.capacity, 1) if self.capacity else None,
            "closed_lots": self.closed_lots,
            "unknown_lots": self.unknown_lots,
            "devices_online": self.devices["online"],
            "devices_offline": self.devices["offline"],
            "devices_unknown": self.devices["unknown"],
            "shared_lots": self.shared_lots,
            "shared_spaces": self.shared_spaces,
            "oldest_update_at": min(self.updates).isoformat() if self.updates else None,
            "newest_update_at": max(self.updates).isoformat() if self.updates else None,
        }


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/overview",
        "City and district roll-ups",
        "operator",
        "operator",
        response=OVERVIEW_SCHEMA,
    )
)
async def get_overview(request: web.Request) -> web.Response:
    """Live counts, lot statuses and device health per district in the token's scope, and their total.
    A lot-scoped token sees its lots' districts, counted over its own lots only. A lot counts as
    `unknown_lots` when more than half its spots are unknown. `shared_lots` and `shared_spaces`: the
    private lots shared with the public and how many spaces their windows add right now. Arrears are
    not here yet (billing).
    """
    who = await principal(request)
    require_operator(who)
    args = scope_args(who)
    pool = request.app[DB_POOL]
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        districts = await conn.fetch(DISTRICTS, *args)
        lots = await conn.fetch(LOTS, *args)
        devices = await conn.fetch(DEVICES, *args)
    rollups = {d["district_id"]: Rollup() for d in districts}
    for row in lots:
        rollups[row["district_id"]].add_lot(row)
    for row in devices:
        rollups[row["district_id"]].devices[row["status"]] += row["devices"]
    city = Rollup().merge(rollups.values())
    return web.json_response(
        {
            "generated_at": utc_now().isoformat(),
            "city": {"districts": len(rollups), **city.view()},
            "districts": [
                {"district_id": d["district_id"], "name": d["name"], **rollups[d["district_id"]].view()}
                for d in districts
            ],
        }
    )
