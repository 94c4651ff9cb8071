"""What the backend told a driver (a sharing window ends soon), read with the driver's token."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.context import DB_POOL, principal
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import int_param
from guidance_api.problems import ProblemError

routes = Routes()
MAX_PAGE, DEFAULT_PAGE = 500, 100
NOTIFICATIONS = """
SELECT notification_id, kind, plate, lot_id, session_id::text, window_end, message, created_at
FROM driver_notifications
WHERE plate = ANY($1::text[]) AND notification_id > $2
ORDER BY notification_id DESC LIMIT $3
"""
NOTIFICATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "notification_id": {"type": "integer", "description": "increases; poll with `after`"},
                    "kind": {"enum": ["sharing_window_ending"]},
                    "plate": {"type": "string"},
                    "lot_id": {"type": "string"},
                    "session_id": {"type": ["string", "null"]},
                    "window_end": {"type": ["string", "null"], "format": "date-time"},
                    "message": {"type": "string", "description": "what to show the driver (zh-CN)"},
                    "created_at": {"type": "string", "format": "date-time"},
                },
            },
        }
    },
}


def _item(row: Any) -> dict[str, Any]:
    view = dict(row)
    view["window_end"] = None if row["window_end"] is None else row["window_end"].isoformat()
    view["created_at"] = row["created_at"].isoformat()
    return view


@routes.add(
    RouteDoc(
        "GET",
        "/v1/driver/notifications",
        "What the driver was told: a sharing window ends soon",
        "driver",
        "driver",
        (
            Param(
                "after",
                schema={"type": "integer", "minimum": 0},
                description="only those with a larger notification_id (what an app has not seen yet)",
            ),
            Param("limit", schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
        ),
        response=NOTIFICATION_SCHEMA,
    )
)
async def get_notifications(request: web.Request) -> web.Response:
    """Notifications for the plates of the token (bound to plates, or an account's bound plates),
    newest first. `sharing_window_ending`: the car is parked in a shared lot whose window closes at
    `window_end` (sent the lot's `reminder_before_min` before it, once per stay and window); staying
    later costs the overstay surcharge named in `message`.
    """
    who = await principal(request)
    if who.role != "driver":
        raise ProblemError(pt.FORBIDDEN, "this route needs a driver token")
    after = int_param(request, "after", 0, 2**31 - 1, 0)
    limit = int_param(request, "limit", 1, MAX_PAGE, DEFAULT_PAGE)
    rows = await request.app[DB_POOL].fetch(NOTIFICATIONS, sorted(who.plates), after, limit)
    return web.json_response({"items": [_item(r) for r in rows]})
