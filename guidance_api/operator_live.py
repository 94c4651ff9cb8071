"""Operator pages' live feed (server-sent events) and device health with its diagnoses."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from typing import Any

from aiohttp import web

from guidance_api.auth import Principal, require_operator
from guidance_api.context import DB_POOL, LOT_WATCH, principal, utc_now
from guidance_api.openapi import RouteDoc, Routes
from guidance_api.queries import lot_view
from guidance_api.scope import SCOPE_FILTER, scope_args
from parking_core.liveness import WATCHED_KINDS, DeviceStatus
from parking_core.topics import DeviceKind

routes = Routes()

KEEPALIVE_S = 15.0  # a comment line this often keeps proxies from closing a quiet stream
LISTEN_WAIT_S = 5.0  # how long a new stream waits for the watch to listen before its snapshot
WRITE_TIMEOUT_S = 30.0  # a page whose connection takes no data for this long is dropped
RETRY_MS = 3000  # how long a browser waits before reconnecting
LOW_BATTERY_MV = 3300  # lithium thionyl chloride cells (3.6 V) are near their end below ~3.3 V
STUCK_AFTER = timedelta(hours=72)  # an online bay sensor whose spot never changed for three days
FLAP_WINDOW = timedelta(hours=1)
FLAP_CHANGES = 12  # more changes than this in an hour: a car does not park every five minutes
ACK_WINDOW = timedelta(hours=24)  # gate commands re-sent to their limit without an ack, lately

SNAPSHOT = f"""
SELECT l.lot_id, l.name, l.kind, l.district_id, l.lat, l.lon, l.capacity, l.status AS lot_status,
       l.tariff_id, l.free_count, l.occupied_count, l.reserved_count, l.unknown_count, l.closed_count,
       l.counts_updated_at, l.shared_spaces
FROM lots l WHERE {SCOPE_FILTER} ORDER BY l.district_id, l.lot_id
"""
# The kinds whose liveness is watched (bay sensors, gates): only they can be silent; a sign only listens.
WATCHED = ", ".join(f"'{kind.value}'" for kind in sorted(WATCHED_KINDS))
# One row per device and issue, within scope. $4 now, $5 low battery, $6 stuck since, $7 flap since,
# $8 flap changes, $9 ack window start.
HEALTH = f"""
WITH scoped AS (
    SELECT d.*, s.status AS spot_status, s.since AS spot_since
    FROM devices d JOIN lots l USING (lot_id) LEFT JOIN spots s ON s.spot_id = d.spot_id
    WHERE {SCOPE_FILTER}
), flaps AS (
    SELECT c.spot_id, count(*) AS changes FROM spot_status_changes c
    WHERE c.ts > $7 AND c.spot_id IN (SELECT spot_id FROM scoped WHERE spot_id IS NOT NULL)
    GROUP BY c.spot_id HAVING count(*) > $8
), unacked AS (
    SELECT g.device_id, count(*) AS commands, min(g.flagged_at) AS since FROM gate_commands g
    WHERE g.flagged_at > $9 AND g.device_id IN (SELECT device_id FROM scoped WHERE kind = 'gate')
    GROUP BY g.device_id
)
SELECT device_id, kind, lot_id, spot_id, 'silent' AS issue, coalesce(last_seen_at::text, 'never') AS detail,
       last_seen_at AS since
FROM scoped WHERE status <> 'online' AND kind IN ({WATCHED})
UNION ALL
SELECT device_id, kind, lot_id, spot_id, 'low_battery', battery_mv || ' mV', last_seen_at
FROM scoped WHERE battery_mv < $5
UNION ALL
SELECT device_id, kind, lot_id, spot_id, 'stuck', spot_status || ' since ' || spot_since, spot_since
FROM scoped WHERE kind = 'bay_sensor' AND status = 'online' AND spot_since < $6
UNION ALL
SELECT s.device_id, s.kind, s.lot_id, s.spot_id, 'flapping', f.changes || ' changes in an hour', $4
FROM scoped s JOIN flaps f USING (spot_id)
UNION ALL
SELECT s.device_id, s.kind, s.lot_id, s.spot_id, 'gate_ack_missing',
       u.commands || ' commands never acknowledged', u.since
FROM scoped s JOIN unacked u USING (device_id)
ORDER BY issue, lot_id, device_id
"""
ISSUES = ("silent", "low_battery", "stuck", "flapping", "gate_ack_missing")
# Devices in scope by kind and status: how many gates (and sensors) are online, offline, never heard.
BY_KIND = f"""
SELECT d.kind, d.status, count(*) AS devices FROM devices d JOIN lots l USING (lot_id)
WHERE {SCOPE_FILTER} GROUP BY d.kind, d.status
"""


def event(name: str, data: Any) -> bytes:
    """Return one server-sent event."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def operator(request: web.Request) -> Principal:
    """Return the caller, who must hold an operator (or the admin) token."""
    who = await principal(request)
    require_operator(who)
    return who


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/live",
        "Live lot counts (server-sent events)",
        "operator",
        "operator",
        stream=True,
    )
)
async def get_live(request: web.Request) -> web.StreamResponse:
    """`text/event-stream`: first a `snapshot` event (every lot in scope, as `GET /v1/lots`), then a
    `lots` event with the lots whose counts changed, pushed when the database notifies the change
    (no polling); a comment every 15 s keeps the connection open. Send the bearer token in the
    `Authorization` header (the operator page reads the stream with `fetch`).
    """
    who = await operator(request)
    watch = request.app[LOT_WATCH]
    box = watch.subscribe(lambda lot: who.may_see_lot(lot["lot_id"], lot["district_id"]))
    try:
        await watch.listening(LISTEN_WAIT_S)  # the snapshot is read after the watch hears changes
        rows = await request.app[DB_POOL].fetch(SNAPSHOT, *scope_args(who))
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        snapshot = event("snapshot", [lot_view(r) for r in rows])
        await response.write(f"retry: {RETRY_MS}\n\n".encode() + snapshot)
        with contextlib.suppress(ConnectionResetError, asyncio.CancelledError, TimeoutError):
            while (lots := await box.take(KEEPALIVE_S)) is not None:
                chunk = event("lots", lots) if lots else b": keep-alive\n\n"
                # a page that stops reading is dropped, its connection is not kept waiting for ever
                await asyncio.wait_for(response.write(chunk), WRITE_TIMEOUT_S)
    finally:
        watch.unsubscribe(box)
    return response


@routes.add(
    RouteDoc("GET", "/v1/operator/device-health", "Devices that need a look, and why", "operator", "operator")
)
async def get_device_health(request: web.Request) -> web.Response:
    """Issues of the devices in scope: `silent` (a sensor or gate offline or never heard; gates are
    alive by their own reads, passages, acks and presence announcements), `low_battery` (< 3300 mV),
    `stuck` (an online bay sensor whose spot has not changed for 72 h), `flapping` (more than 12
    changes in the last hour), `gate_ack_missing` (gate commands re-sent to their limit without an
    acknowledgement in the last 24 h). One device may have several. `devices` counts the devices in
    scope per kind and status (`online`, `offline`, `unknown`).
    """
    who = await operator(request)
    now = utc_now()
    rows = await request.app[DB_POOL].fetch(
        HEALTH,
        *scope_args(who),
        now,
        LOW_BATTERY_MV,
        now - STUCK_AFTER,
        now - FLAP_WINDOW,
        FLAP_CHANGES,
        now - ACK_WINDOW,
    )
    items = [{**dict(r), "since": r["since"].isoformat() if r["since"] else None} for r in rows]
    counts = {issue: sum(1 for i in items if i["issue"] == issue) for issue in ISSUES}
    devices = {kind.value: {status.value: 0 for status in DeviceStatus} for kind in DeviceKind}
    for row in await request.app[DB_POOL].fetch(BY_KIND, *scope_args(who)):
        devices[row["kind"]][row["status"]] = row["devices"]
    body = {"generated_at": now.isoformat(), "counts": counts, "devices": devices, "items": items}
    return web.json_response(body)
