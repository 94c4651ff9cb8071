"""Tariff routes: publish a version (admin), read a lot's tariff and quote a stay (public)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from billing import (
    MAX_QUOTED_STAY_DAYS,
    VehicleClass,
    describe_tariff,
    parse_tariff,
    price_stay,
    quote_to_json,
    tariff_in_force,
    tariff_to_json,
    to_apds_rate_table,
    to_cds_policies,
)
from guidance_api import problem_types as pt
from guidance_api.context import DB_POOL, TARIFFS, utc_now
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param, time_param
from guidance_api.problems import ProblemError, field_error
from guidance_api.requests import ID_SCHEMA, admin_only, path_id, read_json, unknown_lot

routes = Routes()
EXPORT_FORMATS = ("native", "cds", "apds")


@routes.add(
    RouteDoc(
        "PUT",
        "/v1/admin/tariffs/{tariff_id}",
        "Publish a tariff version",
        "tariffs",
        "admin",
        (Param("tariff_id", "path", ID_SCHEMA),),
        response={"type": "object"},
    )
)
async def put_tariff(request: web.Request) -> web.Response:
    """The body is a tariff document (docs/tariffs.md). A published version is immutable: the same
    document again is a no-op (200); a different document under the same version is a 409 — publish
    a new version with its own `valid_from` instead, so that old sessions keep old prices.
    """
    await admin_only(request)
    tariff_id = path_id(request, "tariff_id")
    document = await read_json(request)
    if isinstance(document, dict):
        document.setdefault("tariff_id", tariff_id)
    tariff = parse_tariff(document)  # an invalid document is a 422 invalid_tariff at the error edge
    if tariff.tariff_id != tariff_id:
        raise ProblemError(
            pt.VALIDATION,
            "tariff_id differs from the path",
            status=422,
            errors=[field_error("tariff_id", "must equal the path", "mismatch")],
        )
    canonical = tariff_to_json(tariff)
    pool = request.app[DB_POOL]
    async with pool.acquire() as conn, conn.transaction():
        stored = await conn.fetchval(
            "SELECT document FROM tariff_versions WHERE tariff_id = $1 AND version = $2 FOR UPDATE",
            tariff_id,
            tariff.version,
        )
        if stored is not None:
            # Compared as the engine reads them: a version stored before the format gained a field
            # (e.g. the reservation fees, default 0) is still the same tariff.
            if tariff_to_json(parse_tariff(json.loads(stored))) != canonical:
                raise ProblemError(
                    pt.VERSION_PUBLISHED,
                    f"version {tariff.version} of {tariff_id!r} is published with other content;"
                    " publish a new version",
                    errors=[field_error("version", "already published", "conflict")],
                )
            status = 200
        else:
            await conn.execute(
                "INSERT INTO tariff_versions (tariff_id, version, valid_from, valid_to, document)"
                " VALUES ($1, $2, $3, $4, $5)",
                tariff_id,
                tariff.version,
                tariff.valid_from,
                tariff.valid_to,
                json.dumps(canonical),
            )
            status = 201
    request.app[TARIFFS].forget(tariff_id)
    return web.json_response({"tariff": canonical, "summary": describe_tariff(tariff)}, status=status)


async def _lot_tariff(request: web.Request, lot_id: str) -> tuple[str, ZoneInfo, tuple[Any, ...]]:
    row = await request.app[DB_POOL].fetchrow(
        "SELECT tariff_id, time_zone FROM lots WHERE lot_id = $1", lot_id
    )
    if row is None:
        raise unknown_lot(lot_id)
    if row["tariff_id"] is None:
        raise ProblemError(pt.NO_TARIFF, f"lot {lot_id!r} has no tariff", status=404)
    versions = await request.app[TARIFFS].versions(row["tariff_id"])
    if not versions:
        raise ProblemError(pt.NO_TARIFF, f"tariff {row['tariff_id']!r} is not published yet", status=404)
    return row["tariff_id"], ZoneInfo(row["time_zone"]), versions


@routes.add(
    RouteDoc(
        "GET",
        "/v1/lots/{lot_id}/tariff",
        "The tariff a lot charges",
        "tariffs",
        "public",
        (
            Param("lot_id", "path", ID_SCHEMA),
            Param(
                "format",
                schema={"enum": list(EXPORT_FORMATS)},
                description="native (default), cds (CDS Policies) or apds",
            ),
        ),
    )
)
async def get_lot_tariff(request: web.Request) -> web.Response:
    """The version in force now, machine-readable, with a summary in Chinese and English, and the
    list of versions; `format=cds` or `format=apds` exports it for a city data platform.
    """
    lot_id = path_id(request, "lot_id")
    export = request.query.get("format", "native")
    if export not in EXPORT_FORMATS:
        raise bad_param("format", f"must be one of {', '.join(EXPORT_FORMATS)}")
    tariff_id, _, versions = await _lot_tariff(request, lot_id)
    tariff = tariff_in_force(versions, utc_now())
    if tariff is None:
        raise ProblemError(pt.NO_TARIFF, f"no version of tariff {tariff_id!r} is in force now", status=404)
    if export == "cds":
        return web.json_response({"lot_id": lot_id, "policies": to_cds_policies(tariff)})
    if export == "apds":
        return web.json_response({"lot_id": lot_id, "rate_table": to_apds_rate_table(tariff)})
    return web.json_response(
        {
            "lot_id": lot_id,
            "tariff_id": tariff_id,
            "version": tariff.version,
            "tariff": tariff_to_json(tariff),
            "summary": describe_tariff(tariff),
            "versions": [
                {
                    "version": v.version,
                    "valid_from": v.valid_from.isoformat(),
                    "valid_to": v.valid_to.isoformat() if v.valid_to else None,
                }
                for v in versions
            ],
        },
        dumps=lambda obj: json.dumps(obj, ensure_ascii=False),
    )


@routes.add(
    RouteDoc(
        "GET",
        "/v1/lots/{lot_id}/quote",
        "What a stay costs",
        "tariffs",
        "public",
        (
            Param("lot_id", "path", ID_SCHEMA),
            Param("entry", schema={"type": "string", "format": "date-time"}, required=True),
            Param("exit", schema={"type": "string", "format": "date-time"}, required=True),
            Param("vehicle_class", schema={"enum": [v.value for v in VehicleClass], "default": "small_car"}),
        ),
    )
)
async def get_quote(request: web.Request) -> web.Response:
    """Priced under the version in force at entry, in the lot's time zone, with the lines that
    explain the amount (bands, tiers, units, caps, free minutes).
    """
    lot_id = path_id(request, "lot_id")
    for name in ("entry", "exit"):
        if not request.query.get(name):
            raise bad_param(name, "is required")
    now = utc_now()
    entry, exit_at = time_param(request, "entry", now), time_param(request, "exit", now)
    if exit_at - entry > timedelta(days=MAX_QUOTED_STAY_DAYS):  # pricing works per day: bounded
        raise bad_param("exit", f"a quote covers at most {MAX_QUOTED_STAY_DAYS} days after entry")
    try:
        vehicle_class = VehicleClass(request.query.get("vehicle_class", "small_car"))
    except ValueError:
        raise bad_param(
            "vehicle_class", f"must be one of {', '.join(v.value for v in VehicleClass)}"
        ) from None
    _, zone, versions = await _lot_tariff(request, lot_id)
    tariff = tariff_in_force(versions, entry)
    if tariff is None:
        raise ProblemError(
            pt.NO_TARIFF,
            f"no version of tariff {versions[0].tariff_id!r} is in force at {entry.isoformat()}",
            status=422,
            errors=[field_error("entry", "no tariff version in force", "no_tariff")],
        )
    # Off the event loop: a month of pricing is ~20 ms of pure Python; other requests keep going.
    # Exit before entry: 400 naming `exit` (at the error edge).
    quote = await asyncio.to_thread(price_stay, entry, exit_at, vehicle_class, tariff)
    return web.json_response(
        quote_to_json(quote, zone), dumps=lambda obj: json.dumps(obj, ensure_ascii=False)
    )
