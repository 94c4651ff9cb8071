"""Admin routes: provisioning of districts, lots with spots, devices (with MQTT credentials), tokens."""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.auth import new_token, token_digest
from guidance_api.context import BROKER, DB_POOL, SETTINGS, utc_now
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.problems import ProblemError, field_error
from guidance_api.requests import ID_SCHEMA, admin_only, parse_body, path_id
from guidance_api.schemas import DeviceBody, DistrictBody, LotBody, TokenBody, ZoneBody
from parking_core.adapters.broker_files import hash_password, new_device_password
from parking_core.adapters.provisioning import (
    DeviceSpec,
    DistrictPlace,
    LotSpec,
    SpotSpec,
    TokenSpec,
    ZoneSpec,
    create_token,
    put_device,
    put_district,
    put_lot,
    put_zone,
)
from parking_core.adapters.settings import BrokerAuth

routes = Routes()


@routes.add(
    RouteDoc(
        "PUT",
        "/v1/admin/districts/{district_id}",
        "Create or rename a district",
        "admin",
        "admin",
        (Param("district_id", "path", ID_SCHEMA),),
        DistrictBody,
    )
)
async def put_district_route(request: web.Request) -> web.Response:
    """Idempotent: the same body twice leaves one district."""
    await admin_only(request)
    district_id = path_id(request, "district_id")
    body = await parse_body(request, DistrictBody)
    async with request.app[DB_POOL].acquire() as conn:
        place = DistrictPlace(body.kind, body.outline_name, body.public_spaces, body.onboarded_on)
        created = await put_district(conn, district_id, body.name, place)
    return web.json_response(
        {"district_id": district_id, **body.model_dump(mode="json")}, status=201 if created else 200
    )


@routes.add(
    RouteDoc(
        "PUT",
        "/v1/admin/lots/{lot_id}",
        "Create or replace a lot and its spots",
        "admin",
        "admin",
        (Param("lot_id", "path", ID_SCHEMA),),
        LotBody,
    )
)
async def put_lot_route(request: web.Request) -> web.Response:
    """The spots listed replace the lot's spots; capacity defaults to their number."""
    await admin_only(request)
    lot_id = path_id(request, "lot_id")
    body = await parse_body(request, LotBody)
    spec = LotSpec(
        district_id=body.district_id,
        name=body.name,
        kind=body.kind,
        lat=body.lat,
        lon=body.lon,
        capacity=body.effective_capacity,
        time_zone=body.time_zone,
        tariff_id=body.tariff_id,
        status=body.status,
        spots=[SpotSpec(s.spot_id, s.label, s.zone_id) for s in body.spots],
        counted_by=body.counted_by,
    )
    async with request.app[DB_POOL].acquire() as conn:
        created = await put_lot(conn, lot_id, spec)
    out = body.model_dump() | {"lot_id": lot_id, "capacity": spec.capacity}
    return web.json_response(out, status=201 if created else 200)


@routes.add(
    RouteDoc(
        "PUT",
        "/v1/admin/zones/{zone_id}",
        "Create or update a zone of a lot",
        "admin",
        "admin",
        (Param("zone_id", "path", ID_SCHEMA),),
        ZoneBody,
    )
)
async def put_zone_route(request: web.Request) -> web.Response:
    """Idempotent. A zone belongs to one lot for good (another `lot_id` is a 409); spots join it
    through `zone_id` in `PUT /v1/admin/lots/{lot_id}`, and `GET /v1/lots/{lot_id}/zones` rolls it up.
    """
    await admin_only(request)
    zone_id = path_id(request, "zone_id")
    body = await parse_body(request, ZoneBody)
    spec = ZoneSpec(body.lot_id, body.name, body.kind.value if body.kind else None)
    async with request.app[DB_POOL].acquire() as conn:
        created = await put_zone(conn, zone_id, spec)
    out = body.model_dump(mode="json") | {"zone_id": zone_id}
    return web.json_response(out, status=201 if created else 200)


@routes.add(
    RouteDoc(
        "PUT",
        "/v1/admin/devices/{device_id}",
        "Create or update a device",
        "admin",
        "admin",
        (
            Param("device_id", "path", ID_SCHEMA),
            Param(
                "rotate_credentials",
                schema={"type": "boolean"},
                description="issue a new MQTT password for an existing device",
            ),
        ),
        DeviceBody,
    )
)
async def put_device_route(request: web.Request) -> web.Response:
    """A new device's MQTT credentials are returned once; the broker learns them at once."""
    await admin_only(request)
    device_id = path_id(request, "device_id")
    broker = request.app[BROKER]
    if broker.is_reserved(device_id):
        message = "is a reserved broker username (the backend's own identity); choose another id"
        raise ProblemError(
            pt.VALIDATION,
            f"device_id {device_id!r} {message}",
            status=422,
            errors=[field_error("device_id", message, "reserved")],
        )
    body = await parse_body(request, DeviceBody)
    rotate = request.query.get("rotate_credentials", "false").lower() in {"1", "true", "yes"}
    password = new_device_password()
    spec = DeviceSpec(
        kind=body.kind,
        model=body.model,
        heartbeat_interval_s=body.heartbeat_interval_s,
        stale_after_s=body.effective_stale_after_s,
        spot_id=body.spot_id,
        lot_id=body.lot_id,
        lane=body.lane,
    )
    pool = request.app[DB_POOL]
    # Two admins binding one spot at the same moment: one_sensor_per_spot, a 409 at the error edge.
    async with pool.acquire() as conn:
        exists = await conn.fetchval("SELECT 1 FROM devices WHERE device_id = $1", device_id)
        issue = exists is None or rotate
        created = await put_device(conn, device_id, spec, hash_password(password) if issue else None)
    reloaded = await broker.sync(pool)  # never raises: the password below is never lost
    settings = request.app[SETTINGS]
    out: dict[str, Any] = body.model_dump() | {
        "device_id": device_id,
        "stale_after_s": spec.stale_after_s,
        "broker": {"auth": broker.mode.value, "updated": reloaded},
    }
    if issue:
        out["mqtt"] = {
            "username": device_id,
            "password": password,
            "topic_prefix": settings.topic_prefix,
            "note": "shown once: store it in the device now",
        }
        if broker.mode is not BrokerAuth.NONE and not reloaded:
            out["broker"]["note"] = "the broker was not updated; it learns these at the next sync"
    return web.json_response(out, status=201 if created else 200)


@routes.add(
    RouteDoc(
        "POST",
        "/v1/admin/tokens",
        "Issue an operator or driver token",
        "admin",
        "admin",
        body=TokenBody,
        status=201,
    )
)
async def post_token_route(request: web.Request) -> web.Response:
    """The token is returned once; only its digest is kept."""
    await admin_only(request)
    body = await parse_body(request, TokenBody)
    token, token_id = new_token(), f"tok_{secrets.token_hex(8)}"
    spec = TokenSpec(
        body.role, body.label, body.district_ids, body.lot_ids, body.plates, body.expires_at, body.account_id
    )
    async with request.app[DB_POOL].acquire() as conn:
        await create_token(conn, token_id, token_digest(token), spec)
    out = body.model_dump(mode="json") | {"token_id": token_id, "token": token}
    return web.json_response(out, status=201)


@routes.add(
    RouteDoc(
        "DELETE",
        "/v1/admin/tokens/{token_id}",
        "Revoke an operator or driver token",
        "admin",
        "admin",
        (Param("token_id", "path", ID_SCHEMA),),
    )
)
async def delete_token_route(request: web.Request) -> web.Response:
    """The token stops working at once (every request looks it up). Revoking it again is a no-op
    that answers the first revocation time; an unknown token_id is a 404.
    """
    await admin_only(request)
    token_id = path_id(request, "token_id")
    revoked_at = await request.app[DB_POOL].fetchval(
        "UPDATE tokens SET revoked_at = coalesce(revoked_at, $2) WHERE token_id = $1 RETURNING revoked_at",
        token_id,
        utc_now(),
    )
    if revoked_at is None:
        raise ProblemError(pt.UNKNOWN_TOKEN, f"no token {token_id!r}", token_id=token_id)
    return web.json_response({"token_id": token_id, "revoked_at": revoked_at.isoformat()})
