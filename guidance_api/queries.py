"""Read-side SQL and the row-to-JSON views of the API (like cosmicpython's views.py)."""

from __future__ import annotations

from typing import Any

from guidance_api.arrival_forecast import LotNow
from parking_core.lots import UNKNOWN_MAJORITY, LotCounts, LotStatus
from parking_core.lots import lot_status as lot_status_of
from parking_core.sharing import public_counts

# The lots that the core's rule (parking_core.lots.lot_status) offers to a driver: neither closed (by
# the operator, or every spot closed) nor full, over the columns of `lots`. Built from the rule's
# constants; tests/integration/api/test_lot_status_sql.py proves it equal to the rule for any counts.
# NOT_CLOSED alone: lots that are open, offered with an arrival time even when full now.
NOT_CLOSED = "(status <> 'closed' AND NOT (capacity > 0 AND closed_count >= capacity))"
MAY_BE_OFFERED = (
    f"({NOT_CLOSED} AND (capacity <= 0 OR unknown_count > capacity * {UNKNOWN_MAJORITY} OR free_count > 0))"
)

LOT_DETAIL = """
SELECT lot_id, name, kind, district_id, lat, lon, capacity, status AS lot_status, tariff_id,
       free_count, occupied_count, reserved_count, unknown_count, closed_count, counts_updated_at,
       shared_spaces
FROM lots WHERE lot_id = $1
"""

LOT_SPOTS = "SELECT spot_id, zone_id, status, since FROM spots WHERE lot_id = $1 ORDER BY spot_id"


def row_counts(row: Any) -> LotCounts:
    """Return the live counts of a ``lots`` row."""
    return LotCounts(
        row["capacity"],
        row["free_count"],
        row["occupied_count"],
        row["reserved_count"],
        row["unknown_count"],
        row["closed_count"],
    )


def public_view(row: Any) -> tuple[LotCounts, bool]:
    """Return what the public sees of a ``lots`` row: a shared lot only within its quota (sharing.py)."""
    counts, closed_to_public = public_counts(row_counts(row), row.get("shared_spaces"))
    return counts, closed_to_public or row["lot_status"] == "closed"


def public_state(row: Any) -> tuple[LotCounts, LotStatus]:
    """Return the public counts of a ``lots`` row and its public status by the core's one rule."""
    counts, closed = public_view(row)
    return counts, lot_status_of(counts, closed=closed)


def row_status(row: Any) -> LotStatus:
    """Return the public status of a ``lots`` row (with ``status AS lot_status``) by the core's one rule."""
    return public_state(row)[1]


def lot_view(row: Any) -> dict[str, Any]:
    """Return the public JSON of a lot row."""
    updated = row["counts_updated_at"]
    counts, status = public_state(row)
    return {
        "lot_id": row["lot_id"],
        "name": row["name"],
        "kind": row["kind"],
        "district_id": row["district_id"],
        "lat": row["lat"],
        "lon": row["lon"],
        "capacity": counts.capacity,
        "free": counts.free,
        "occupied": counts.occupied,
        "reserved": counts.reserved,
        "unknown": counts.unknown,
        "closed": counts.closed,
        "status": status.value,
        "shared_spaces": row.get("shared_spaces"),
        "updated_at": updated.isoformat() if updated else None,
        "tariff_id": row["tariff_id"],
    }


# Nearest first by the GiST index on earth_point (KNN), within the radius (earth_box is a cube
# bounding box, refined by the exact earth_distance). Closed and full lots are not offered: the
# filter is the core's lot-status rule, in SQL generated from its constants (queries.py); a lot
# without places (capacity 0, status unknown by the rule) has nothing to offer either. With an
# arrival time ($5) a full lot is a candidate too: the forecast decides whether it may have room.
VACANCIES = f"""
SELECT lot_id, name, kind, district_id, lat, lon, capacity, status AS lot_status, tariff_id, time_zone,
       free_count, occupied_count, reserved_count, unknown_count, closed_count, counts_updated_at,
       shared_spaces, earth_distance(earth_point, ll_to_earth($1, $2)) AS distance_m
FROM lots
WHERE earth_box(ll_to_earth($1, $2), $3) @> earth_point
  AND earth_distance(earth_point, ll_to_earth($1, $2)) <= $3
  AND coalesce(shared_spaces, 1) > 0 -- a shared lot outside its windows (public_view refines the rest)
  AND capacity > 0 AND ({MAY_BE_OFFERED} OR ($5::bool AND {NOT_CLOSED}))
ORDER BY earth_point <-> ll_to_earth($1, $2)
LIMIT $4
"""


def lot_now(row: Any) -> LotNow:
    """Return what a forecast of *row*'s lot starts from (no count while the lot is unknown)."""
    unknown = row_status(row) is LotStatus.UNKNOWN
    return LotNow(row["lot_id"], None if unknown else row["free_count"], row["capacity"])
