"""What the open-data feeds share: stable UUIDs for our ids, times in milliseconds, approximate outlines."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

# Fixed namespace: the UUIDs of lots, spots and devices in the CDS feeds never change between runs.
OPEN_DATA_NAMESPACE = uuid.UUID("0b7a3f3e-2f0c-5d1e-9a1b-6c7d2e4f8a90")
METRES_PER_DEGREE = 111_320.0  # along a meridian; along a parallel multiply by cos(latitude)
SPACE_FOOTPRINT_M2 = 30.0  # a bay with its share of aisle: a lot's outline grows with its capacity
MIN_HALF_SIDE_M = 6.0  # even a one-bay lot gets a visible outline
BAY_LENGTH_CM = 600  # a Chinese on-street bay is 6 m long (GA/T 850 marks 6 m × 2.5 m)
FEED_LIMIT = 1000  # items per page: an open-data portal pages with `offset`


def stable_uuid(kind: str, identifier: str) -> str:
    """Return the UUID that stands for our *identifier* of *kind* (lot, spot, device, event…)."""
    return str(uuid.uuid5(OPEN_DATA_NAMESPACE, f"{kind}:{identifier}"))


def epoch_ms(at: datetime) -> int:
    """Return *at* as milliseconds since 1970 (CDS timestamps)."""
    return int(at.timestamp() * 1000)


def point(lat: float, lon: float) -> dict[str, Any]:
    """Return a GeoJSON Point (longitude first)."""
    return {"type": "Point", "coordinates": [lon, lat]}


def outline(lat: float, lon: float, capacity: int) -> dict[str, Any]:
    """Return an approximate square outline around a lot's point, sized by its capacity.

    Lots are provisioned with a point, not a polygon; CDS requires a polygon, so the feed draws a
    square of about SPACE_FOOTPRINT_M2 per space around the point. It is marked as approximate in the
    feed's description and in docs/api.md.
    """
    half = max(MIN_HALF_SIDE_M, math.sqrt(max(capacity, 1) * SPACE_FOOTPRINT_M2) / 2)
    dlat = half / METRES_PER_DEGREE
    dlon = half / (METRES_PER_DEGREE * max(math.cos(math.radians(lat)), 1e-6))
    ring = [
        [round(lon - dlon, 7), round(lat - dlat, 7)],
        [round(lon + dlon, 7), round(lat - dlat, 7)],
        [round(lon + dlon, 7), round(lat + dlat, 7)],
        [round(lon - dlon, 7), round(lat + dlat, 7)],
    ]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
