"""Operator routes: device health and rejected messages, limited to the token's districts and lots."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any

from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.auth import require_operator
from guidance_api.context import DB_POOL, principal
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param, int_param
from guidance_api.problems import ProblemError, field_error
from guidance_api.requests import ID_SCHEMA, query_id
from guidance_api.scope import SCOPE_FILTER, check_lot_scope, scope_args
from parking_core.liveness import DeviceStatus

routes = Routes()
MAX_PAGE = 1000  # enough for a screen; operators page with `before`
DEFAULT_PAGE = 100
DEVICE_STATUSES = tuple(s.value for s in DeviceStatus)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


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
            pt.VALIDATION,
            f"status must be one of {DEVICE_STATUSES}",
            status=400,
            errors=[field_error("status", "unknown status", "enum")],
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
        int_param(request, "limit", 1, MAX_PAGE, DEFAULT_PAGE),
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
            Param("reason", schema={"type": "string", "pattern": "^[a-z_]{1,32}$"}),
            Param("limit", schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
            Param(
                "before",
                schema={"type": "string", "maxLength": 200},
                description="the cursor of the `next` link of the previous page",
            ),
        ),
    )
)
async def get_rejected_messages(request: web.Request) -> web.Response:
    """Newest first, a page at a time: `next` is the link to the following (older) page, absent on
    the last one. Messages from unknown devices are visible to the admin only.
    """
    who = await principal(request)
    require_operator(who)
    device_id = query_id(request, "device_id")
    reason = request.query.get("reason")
    if reason is not None and not re.fullmatch(r"[a-z_]{1,32}", reason):
        raise bad_param("reason", "is not a refusal reason (lower case letters and _)")
    limit = int_param(request, "limit", 1, MAX_PAGE, DEFAULT_PAGE)
    before = decode_cursor(request.query.get("before"))
    rows = await request.app[DB_POOL].fetch(
        "SELECT r.rejected_id, r.received_at, r.topic, r.device_id, r.reason, r.detail, r.payload"
        " FROM rejected_messages r LEFT JOIN devices d USING (device_id)"
        " LEFT JOIN lots l ON l.lot_id = d.lot_id"
        f" WHERE ($1::bool OR (l.lot_id IS NOT NULL AND {SCOPE_FILTER}))"
        " AND ($4::text IS NULL OR r.device_id = $4) AND ($5::text IS NULL OR r.reason = $5)"
        " AND ($7::timestamptz IS NULL OR (r.received_at, r.rejected_id) < ($7, $8))"
        " ORDER BY r.received_at DESC, r.rejected_id DESC LIMIT $6",
        *scope_args(who),
        device_id,
        reason,
        limit,
        *(before or (None, None)),
    )
    items = [{**dict(r), "received_at": r["received_at"].isoformat()} for r in rows]
    body: dict[str, Any] = {"items": items}
    if len(rows) == limit:
        cursor = encode_cursor(rows[-1]["received_at"], rows[-1]["rejected_id"])
        body["next"] = str(request.rel_url.update_query(before=cursor))
    return web.json_response(body)


def encode_cursor(received_at: datetime, rejected_id: int) -> str:
    """Return the opaque cursor of the page after the row (*received_at*, *rejected_id*)."""
    return base64.urlsafe_b64encode(f"{received_at.isoformat()}|{rejected_id}".encode()).decode()


def decode_cursor(raw: str | None) -> tuple[datetime, int] | None:
    """Return the (received_at, rejected_id) of a `before` cursor, or raise 400 naming it."""
    if raw is None:
        return None
    try:
        text = base64.urlsafe_b64decode(raw.encode("ascii")).decode("ascii")
        when, _, ident = text.partition("|")
        received_at, rejected_id = datetime.fromisoformat(when), int(ident)
    except (ValueError, UnicodeError):
        raise bad_param("before", "is not a cursor from a `next` link") from None
    if received_at.tzinfo is None or not 0 < rejected_id < 2**63:
        raise bad_param("before", "is not a cursor from a `next` link")
    return received_at, rejected_id
