"""Read-side SQL and the row-to-JSON views of the API (like cosmicpython's views.py)."""

from __future__ import annotations

from typing import Any

ALMOST_FULL_FREE_RATIO = 0.1  # fewer than 10 % free: drivers should be warned before they drive there
UNKNOWN_MAJORITY = 0.5  # more than half the spots unknown: the lot's free count is not to be trusted

LOT_DETAIL = """
SELECT lot_id, name, kind, district_id, lat, lon, capacity, status AS lot_status, tariff_id,
       free_count, occupied_count, reserved_count, unknown_count, closed_count, counts_updated_at
FROM lots WHERE lot_id = $1
"""

LOT_SPOTS = "SELECT spot_id, status, since FROM spots WHERE lot_id = $1 ORDER BY spot_id"


def lot_status(lot_status_: str, capacity: int, free: int, unknown: int) -> str:
    """Return a lot's guidance status: closed is never full, and unknown is never a count."""
    if lot_status_ == "closed":
        return "closed"
    if capacity == 0 or unknown > capacity * UNKNOWN_MAJORITY:
        return "unknown"
    if free == 0:
        return "full"
    if free < capacity * ALMOST_FULL_FREE_RATIO:
        return "almost_full"
    return "open"


def lot_view(row: Any) -> dict[str, Any]:
    """Return the public JSON of a lot row."""
    updated = row["counts_updated_at"]
    return {
        "lot_id": row["lot_id"],
        "name": row["name"],
        "kind": row["kind"],
        "district_id": row["district_id"],
        "lat": row["lat"],
        "lon": row["lon"],
        "capacity": row["capacity"],
        "free": row["free_count"],
        "occupied": row["occupied_count"],
        "reserved": row["reserved_count"],
        "unknown": row["unknown_count"],
        "closed": row["closed_count"],
        "status": lot_status(row["lot_status"], row["capacity"], row["free_count"], row["unknown_count"]),
        "updated_at": updated.isoformat() if updated else None,
        "tariff_id": row["tariff_id"],
    }
