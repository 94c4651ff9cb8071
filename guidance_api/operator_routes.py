"""Operator routes: device health and rejected messages, limited to the token's districts and lots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from guidance_api.admin import ID_SCHEMA
from guidance_api.auth import Principal, require_operator
from guidance_api.context import DB_POOL, principal
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.problems import ProblemError

routes = Routes()
MAX_PAGE = 1000  # enough for a screen; operators page with `before`
DEVICE_STATUSES = ("online", "offline", "unknown")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def query_id(request: web.Request, name: str) -> str | None:
    """Return an optional identifier query parameter, or raise 400."""
    value = request.query.get(name)
    if value is None:
        return None
    if not value or len(value) > 64 or not all(c.isalnum() or c in "_.-" for c in value):
        raise ProblemError(
            400,
            "validation",
            "Invalid request",
            f"{name} is not a valid identifier",
            errors=[{"field": name, "message": "not a valid identifier", "code": "pattern"}],
        )
    return value


def query_limit(request: web.Request, default: int = 100) -> int:
    """Return the `limit` query parameter, or raise 400."""
    raw = request.query.get("limit", str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise ProblemError(
            400,
            "validation",
            "Invalid request",
            f"limit must be 1..{MAX_PAGE}",
            errors=[{"field": "limit", "message": f"must be 1..{MAX_PAGE}", "code": "range"}],
        )
    return int(raw)


async def check_lot_scope(request: web.Request, who: Principal, lot_id: str) -> None:
    """Raise 404 for an unknown lot and 403 for a lot outside the token's scope."""
    district = await request.app[DB_POOL].fetchval("SELECT district_id FROM lots WHERE lot_id = $1", lot_id)
    if district is None:
        raise ProblemError(404, "unknown_lot", "Unknown lot", f"no lot {lot_id!r}", lot_id=lot_id)
    if not who.may_see_lot(lot_id, district):
        raise ProblemError(403, "forbidden", "Forbidden", f"lot {lot_id!r} is outside this token's scope")


SCOPE_FILTER = "($1::bool OR l.lot_id = ANY($2::text[]) OR l.district_id = ANY($3::text[]))"


def scope_args(who: Principal) -> tuple[bool, list[str], list[str]]:
    """Return the arguments of SCOPE_FILTER for *who*."""
    return who.is_admin, sorted(who.lot_ids), sorted(who.district_ids)


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/devices",
        "Device health",
        "operator",
        "operator",
        (
            Param("lot_id", schema=ID_SCHEMA),
            Param("status", schema={"enum": list(DEVICE_STATUSES)}),
            Param("limit", schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
        ),
    )
)
async def get_devices(request: web.Request) -> web.Response:
    """Online means the device's own messages keep arriving within its stale window."""
    who = await principal(request)
    require_operator(who)
    lot_id = query_id(request, "lot_id")
    status = request.query.get("status")
    if status is not None and status not in DEVICE_STATUSES:
        raise ProblemError(
            400,
            "validation",
            "Invalid request",
            f"status must be one of {DEVICE_STATUSES}",
            errors=[{"field": "status", "message": "unknown status", "code": "enum"}],
        )
    if lot_id is not None:
        await check_lot_scope(request, who, lot_id)
    rows = await request.app[DB_POOL].fetch(
        "SELECT d.device_id, d.kind, d.lot_id, d.spot_id, d.lane, d.model, d.status, d.last_seen_at,"
        " d.last_ts, d.battery_mv, d.rssi_dbm, d.firmware, d.heartbeat_interval_s, d.stale_after_s"
        f" FROM devices d JOIN lots l USING (lot_id) WHERE {SCOPE_FILTER}"
        " AND ($4::text IS NULL OR d.lot_id = $4) AND ($5::text IS NULL OR d.status = $5)"
        " ORDER BY d.device_id LIMIT $6",
        *scope_args(who),
        lot_id,
        status,
        query_limit(request),
    )
    items: list[dict[str, Any]] = [
        {
            **dict(r),
            "online": r["status"] == "online",
            "last_seen_at": _iso(r["last_seen_at"]),
            "last_ts": _iso(r["last_ts"]),
        }
        for r in rows
    ]
    return web.json_response({"items": items})


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/rejected-messages",
        "What the gateway refused and why",
        "operator",
        "operator",
        (
            Param("device_id", schema=ID_SCHEMA),
            Param("reason"),
            Param("limit", schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
        ),
    )
)
async def get_rejected_messages(request: web.Request) -> web.Response:
    """Newest first. Messages from unknown devices are visible to the admin only."""
    who = await principal(request)
    require_operator(who)
    device_id = query_id(request, "device_id")
    reason = request.query.get("reason")
    rows = await request.app[DB_POOL].fetch(
        "SELECT r.rejected_id, r.received_at, r.topic, r.device_id, r.reason, r.detail, r.payload"
        " FROM rejected_messages r LEFT JOIN devices d USING (device_id)"
        " LEFT JOIN lots l ON l.lot_id = d.lot_id"
        f" WHERE ($1::bool OR (l.lot_id IS NOT NULL AND {SCOPE_FILTER}))"
        " AND ($4::text IS NULL OR r.device_id = $4) AND ($5::text IS NULL OR r.reason = $5)"
        " ORDER BY r.received_at DESC, r.rejected_id DESC LIMIT $6",
        *scope_args(who),
        device_id,
        reason,
        query_limit(request),
    )
    items = [{**dict(r), "received_at": r["received_at"].isoformat()} for r in rows]
    return web.json_response({"items": items})
