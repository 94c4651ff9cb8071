"""Public zone route: a lot's counts rolled up by zone, each zone's status by the lot-status rule."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from billing import LotKind
from guidance_api.context import DB_POOL
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.queries import LOT_DETAIL, row_counts
from guidance_api.requests import ID_SCHEMA, path_id, unknown_lot
from parking_core.lots import LotCounts, LotStatus, lot_status
from parking_core.occupancy import SpotStatus

routes = Routes()

COUNT_NAMES = tuple(s.value for s in SpotStatus)  # free, occupied, reserved, closed, unknown
# Every zone of the lot with its spots counted by status (a zone without spots counts zero).
ZONE_COUNTS = f"""
SELECT z.zone_id, z.name, z.kind, count(s.spot_id) AS capacity,
       {", ".join(f"count(*) FILTER (WHERE s.status = '{n}') AS {n}" for n in COUNT_NAMES)}
FROM zones z LEFT JOIN spots s ON s.zone_id = z.zone_id AND s.lot_id = z.lot_id
WHERE z.lot_id = $1
GROUP BY z.zone_id
ORDER BY z.zone_id
"""

COUNTS_SCHEMA: dict[str, Any] = {
    "capacity": {"type": "integer"},
    **{name: {"type": "integer"} for name in COUNT_NAMES},
    "status": {"enum": [s.value for s in LotStatus]},
}
ZONES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "lot_id": {"type": "string"},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "zone_id": {"type": "string"},
                    "name": {"type": "string"},
                    "kind": {"enum": [*(k.value for k in LotKind), None]},
                    **COUNTS_SCHEMA,
                },
            },
        },
        "unzoned": {
            "type": "object",
            "description": "the lot's places in no zone (spots without a zone, places without a spot)",
            "properties": COUNTS_SCHEMA,
        },
    },
}


def counts_view(counts: LotCounts, lot_closed: bool) -> dict[str, Any]:
    """Return the JSON of a zone's (or the unzoned places') counts, with their status."""
    return {
        "capacity": counts.capacity,
        **{name: getattr(counts, name) for name in COUNT_NAMES},
        "status": lot_status(counts, closed=lot_closed).value,
    }


def remainder(lot: LotCounts, zones: list[LotCounts]) -> LotCounts:
    """Return what of the lot's counts is in none of *zones*."""
    return LotCounts(
        lot.capacity - sum(z.capacity for z in zones),
        **{name: getattr(lot, name) - sum(getattr(z, name) for z in zones) for name in COUNT_NAMES},
    )


@routes.add(
    RouteDoc(
        "GET",
        "/v1/lots/{lot_id}/zones",
        "A lot's counts by zone",
        "lots",
        "public",
        (Param("lot_id", "path", ID_SCHEMA),),
        response=ZONES_SCHEMA,
    )
)
async def get_lot_zones(request: web.Request) -> web.Response:
    """Each zone's spots counted by status, and its `status` by the same rule as a lot's (a closed lot's
    zones read `closed`). `unzoned` holds the rest of the lot, so zones and `unzoned` add up to the
    lot's counts in `GET /v1/lots/{lot_id}`; both are read in one snapshot.
    """
    lot_id = path_id(request, "lot_id")
    async with (
        request.app[DB_POOL].acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        lot = await conn.fetchrow(LOT_DETAIL, lot_id)
        if lot is None:
            raise unknown_lot(lot_id)
        rows = await conn.fetch(ZONE_COUNTS, lot_id)
    closed = lot["lot_status"] == "closed"
    zones = [LotCounts(r["capacity"], **{name: r[name] for name in COUNT_NAMES}) for r in rows]
    items = [
        {"zone_id": r["zone_id"], "name": r["name"], "kind": r["kind"], **counts_view(counts, closed)}
        for r, counts in zip(rows, zones, strict=True)
    ]
    unzoned = counts_view(remainder(row_counts(lot), zones), closed)
    return web.json_response({"lot_id": lot_id, "items": items, "unzoned": unzoned})
