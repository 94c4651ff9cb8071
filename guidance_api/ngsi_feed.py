"""Open data as FIWARE NGSI-LD entities (Smart Data Models): ParkingSpot, On- and OffStreetParking."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from guidance_api.context import DB_POOL
from guidance_api.open_data import FEED_LIMIT, point
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param, int_param
from guidance_api.queries import row_status
from parking_core.lots import LotStatus

routes = Routes()

CONTEXT = [
    "https://smart-data-models.github.io/dataModel.Parking/context.jsonld",
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld",
]
ENTITY_TYPES = ("ParkingSpot", "OnStreetParking", "OffStreetParking")
SITE_TYPE = {"on_street": "OnStreetParking", "off_street": "OffStreetParking"}
# Our spot statuses in the ParkingSpot vocabulary, which has no `reserved`: a reserved spot is not
# free to the public, so it reads occupied.
SPOT_STATUS = {
    "free": "free",
    "occupied": "occupied",
    "reserved": "occupied",
    "closed": "closed",
    "unknown": "unknown",
}
# Lot status in DATEX II's ParkingSiteStatusEnum, as OffStreetParking.status uses it.
SITE_STATUS = {
    LotStatus.OPEN: "spacesAvailable",
    LotStatus.ALMOST_FULL: "almostFull",
    LotStatus.FULL: "full",
    LotStatus.CLOSED: "closed",
}
LD_JSON = "application/ld+json"
RELATIONSHIPS = frozenset({"refParkingSite"})
GEO_PROPERTIES = frozenset({"location"})

LOTS = """
SELECT l.lot_id, l.name, l.kind, l.lat, l.lon, l.capacity, l.status AS lot_status, l.free_count,
       l.occupied_count, l.reserved_count, l.unknown_count, l.closed_count, l.counts_updated_at,
       l.updated_at, d.name AS district_name
FROM lots l JOIN districts d USING (district_id)
WHERE $1::text IS NULL OR l.kind = $1
ORDER BY l.lot_id LIMIT $2 OFFSET $3
"""
SPOTS = """
SELECT s.spot_id, s.label, s.status, s.since, s.lot_id, l.kind, l.lat, l.lon, d.device_id
FROM spots s JOIN lots l USING (lot_id) LEFT JOIN devices d ON d.spot_id = s.spot_id
ORDER BY s.spot_id LIMIT $1 OFFSET $2
"""


def entity_id(entity_type: str, identifier: str) -> str:
    """Return the NGSI-LD URN of one of our things."""
    return f"urn:ngsi-ld:{entity_type}:{identifier}"


def site_view(row: Any) -> dict[str, Any]:
    """Return a lot as an OnStreetParking or OffStreetParking entity (key-values)."""
    kind = SITE_TYPE[row["kind"]]
    status = row_status(row)
    known = status is not LotStatus.UNKNOWN
    entity: dict[str, Any] = {
        "id": entity_id(kind, row["lot_id"]),
        "type": kind,
        "name": row["name"],
        "location": point(row["lat"], row["lon"]),
        "areaServed": row["district_name"],
        "totalSpotNumber": row["capacity"],
        "occupancyDetectionType": ["singleSpaceDetection"],
        "allowedVehicleType": ["car"],
        "dateModified": row["updated_at"].isoformat(),
    }
    if known:
        entity["availableSpotNumber"] = row["free_count"]
        entity["occupiedSpotNumber"] = row["occupied_count"] + row["reserved_count"]
        entity["outOfServiceSlotNumber"] = row["closed_count"]
        if row["counts_updated_at"] is not None:
            entity["dateObserved"] = row["counts_updated_at"].isoformat()
    if kind == "OffStreetParking" and known:  # an unknown status is left out, not invented
        entity["status"] = [SITE_STATUS[status]]
        if row["capacity"]:
            entity["occupancy"] = round((row["occupied_count"] + row["reserved_count"]) / row["capacity"], 4)
    return entity


def spot_view(row: Any) -> dict[str, Any]:
    """Return a spot as a ParkingSpot entity (key-values); its location is its lot's point."""
    site = SITE_TYPE[row["kind"]]
    entity: dict[str, Any] = {
        "id": entity_id("ParkingSpot", row["spot_id"]),
        "type": "ParkingSpot",
        "name": row["label"] or row["spot_id"],
        "location": point(row["lat"], row["lon"]),
        "status": SPOT_STATUS[row["status"]],
        "category": ["onStreet" if row["kind"] == "on_street" else "offStreet"],
        "refParkingSite": entity_id(site, row["lot_id"]),
        "dateObserved": row["since"].isoformat(),
    }
    if row["device_id"] is not None:
        entity["refDevice"] = [entity_id("Device", row["device_id"])]
    return entity


def normalized(entity: dict[str, Any]) -> dict[str, Any]:
    """Return a key-values entity in NGSI-LD's normalized form (Property, GeoProperty, Relationship)."""
    out: dict[str, Any] = {"id": entity["id"], "type": entity["type"]}
    for name, value in entity.items():
        if name in {"id", "type"}:
            continue
        if name in RELATIONSHIPS or name == "refDevice":
            out[name] = {"type": "Relationship", "object": value}
        elif name in GEO_PROPERTIES:
            out[name] = {"type": "GeoProperty", "value": value}
        else:
            out[name] = {"type": "Property", "value": value}
    return out


@routes.add(
    RouteDoc(
        "GET",
        "/v1/open-data/ngsi-ld/entities",
        "NGSI-LD entities: ParkingSpot, OnStreetParking, OffStreetParking",
        "open-data",
        "public",
        (
            Param("type", schema={"enum": list(ENTITY_TYPES)}, required=True),
            Param("options", schema={"enum": ["keyValues", "normalized"]}, description="default normalized"),
            Param("limit", schema={"type": "integer", "minimum": 1, "maximum": FEED_LIMIT}),
            Param("offset", schema={"type": "integer", "minimum": 0}),
        ),
    )
)
async def get_ngsi_entities(request: web.Request) -> web.Response:
    """Entities of one type as NGSI-LD's `GET /ngsi-ld/v1/entities?type=` answers them, with the
    Smart Data Models context; `options=keyValues` gives the simplified form the models' JSON
    Schemas describe.
    """
    entity_type = request.query.get("type", "")
    if entity_type not in ENTITY_TYPES:
        raise bad_param("type", f"must be one of {', '.join(ENTITY_TYPES)}")
    options = request.query.get("options", "normalized")
    if options not in {"keyValues", "normalized"}:
        raise bad_param("options", "must be keyValues or normalized")
    limit = int_param(request, "limit", 1, FEED_LIMIT, FEED_LIMIT)
    offset = int_param(request, "offset", 0, 10**9, 0)
    pool = request.app[DB_POOL]
    if entity_type == "ParkingSpot":
        entities = [spot_view(r) for r in await pool.fetch(SPOTS, limit, offset)]
    else:
        kind = next(k for k, v in SITE_TYPE.items() if v == entity_type)
        entities = [site_view(r) for r in await pool.fetch(LOTS, kind, limit, offset)]
    if options == "normalized":
        entities = [normalized(e) for e in entities]
    body = [{"@context": CONTEXT, **e} for e in entities]
    return web.Response(
        text=json.dumps(body, ensure_ascii=False), headers={"Content-Type": f"{LD_JSON}; charset=utf-8"}
    )
