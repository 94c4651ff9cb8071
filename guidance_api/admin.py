"""Admin routes: provisioning of districts, lots with spots, devices (with MQTT credentials), tokens."""

from __future__ import annotations

import secrets
from typing import Any, TypeVar

import asyncpg
from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError

from guidance_api.auth import new_token, require_admin, token_digest
from guidance_api.context import BROKER, DB_POOL, SETTINGS, principal
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.problems import ProblemError, validation_problem
from guidance_api.schemas import DeviceBody, DistrictBody, Identifier, LotBody, TokenBody
from parking_core.adapters.broker_files import hash_password, new_device_password
from parking_core.adapters.provisioning import (
    DeviceSpec,
    LotSpec,
    ProvisioningError,
    SpotSpec,
    TokenSpec,
    UnknownReferenceError,
    create_token,
    put_device,
    put_district,
    put_lot,
)

routes = Routes()
Body = TypeVar("Body", bound=BaseModel)
_IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)
ID_SCHEMA = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,64}$"}


def path_id(request: web.Request, name: str) -> str:
    """Return a path identifier, or raise a 400 problem naming it."""
    value = request.match_info[name]
    try:
        return _IDENTIFIER.validate_python(value)
    except ValidationError as exc:
        raise ProblemError(
            400,
            "validation",
            "Invalid request",
            f"{name} must match [A-Za-z0-9_.-]{{1,64}}",
            errors=[{"field": name, "message": "not a valid identifier", "code": "pattern"}],
        ) from exc


async def parse_body(request: web.Request, model: type[Body]) -> Body:
    """Validate the JSON body strictly against *model*, or raise a 400/422 problem naming fields."""
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise ProblemError(400, "malformed_body", "Malformed body", "the body is not valid JSON") from exc
        raise validation_problem(exc) from exc


def provisioning_problem(exc: ProvisioningError) -> ProblemError:
    """Return the problem for a refused provisioning request: 422 unknown reference, 409 conflict."""
    if isinstance(exc, UnknownReferenceError):
        status, slug, title = 422, "unknown_reference", "Unknown reference"
    else:
        status, slug, title = 409, "conflict", "Conflict"
    return ProblemError(
        status, slug, title, str(exc), errors=[{"field": exc.field, "message": str(exc), "code": slug}]
    )


async def admin_only(request: web.Request) -> None:
    """Raise unless the caller holds the admin token."""
    require_admin(await principal(request))


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
        created = await put_district(conn, district_id, body.name)
    return web.json_response({"district_id": district_id, "name": body.name}, status=201 if created else 200)


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
    )
    try:
        async with request.app[DB_POOL].acquire() as conn:
            created = await put_lot(conn, lot_id, spec)
    except ProvisioningError as exc:
        raise provisioning_problem(exc) from exc
    out = body.model_dump() | {"lot_id": lot_id, "capacity": spec.capacity}
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
    try:
        async with pool.acquire() as conn:
            exists = await conn.fetchval("SELECT 1 FROM devices WHERE device_id = $1", device_id)
            issue = exists is None or rotate
            created = await put_device(conn, device_id, spec, hash_password(password) if issue else None)
    except ProvisioningError as exc:
        raise provisioning_problem(exc) from exc
    except asyncpg.UniqueViolationError as exc:  # two admins binding one spot at the same moment
        raise ProblemError(
            409,
            "conflict",
            "Conflict",
            f"spot {body.spot_id!r} is already bound",
            errors=[{"field": "spot_id", "message": "already bound", "code": "conflict"}],
        ) from exc
    broker = request.app[BROKER]
    reloaded = await broker.sync(pool)
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
    try:
        async with request.app[DB_POOL].acquire() as conn:
            spec = TokenSpec(
                body.role, body.label, body.district_ids, body.lot_ids, body.plates, body.expires_at
            )
            await create_token(conn, token_id, token_digest(token), spec)
    except ProvisioningError as exc:
        raise provisioning_problem(exc) from exc
    out = body.model_dump(mode="json") | {"token_id": token_id, "token": token}
    return web.json_response(out, status=201)
