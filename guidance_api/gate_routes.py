"""Gates and sessions over HTTP: manual release, session look-up (audited), payments, plates on bays."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from guidance_api import problem_types as pt
from guidance_api import session_sql as q
from guidance_api.auth import Principal, require_operator
from guidance_api.context import DB_POOL, principal, utc_now
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param, int_param
from guidance_api.problems import ProblemError
from guidance_api.requests import ID_SCHEMA, parse_body, path_id, query_id
from guidance_api.scope import SCOPE_FILTER, check_lot_scope, check_spot_scope, scope_args
from parking_core.adapters.hold_endings import report_plate_in_spot
from parking_core.plates import PLATE_COLORS, normalise_plate
from parking_core.sessions import SessionState

routes = Routes()
MAX_PAGE = 500  # sessions per page, each with its evidence
DEFAULT_PAGE = 50
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # page cursors count microseconds from here (URL-safe)
MICROSECOND = timedelta(microseconds=1)
PLATE_SCHEMA = {"type": "string", "minLength": 2, "maxLength": 16}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _PlateField(_Body):
    @field_validator("plate", mode="after", check_fields=False)
    @classmethod
    def _normalised(cls, value: str | None) -> str | None:
        if value is None:
            return None
        plate = normalise_plate(value)
        if not 2 <= len(plate) <= 12:
            raise ValueError("a plate has 2 to 12 characters after normalising")
        return plate


class ReleaseBody(_PlateField):
    """``POST /v1/operator/gates/{device_id}/open``: why (required), and the plate if known."""

    reason: str = Field(min_length=1, max_length=200)
    plate: str | None = Field(default=None, min_length=1, max_length=16)


class PaymentBody(_Body):
    """``POST /v1/operator/sessions/{session_id}/payments``: money paid at a pay station."""

    amount_fen: int = Field(gt=0, le=10_000_000)
    reference: str = Field(min_length=1, max_length=128)  # the station's receipt: one payment each
    source: str = Field(default="pay_station", pattern=r"^[A-Za-z0-9_.-]{1,64}$")


class PlateBody(_PlateField):
    """``POST /v1/operator/spots/{spot_id}/plate``: the plate of the car on the bay."""

    plate: str = Field(min_length=1, max_length=16)
    plate_color: str | None = None

    @field_validator("plate_color")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is not None and value not in PLATE_COLORS:
            raise ValueError(f"plate_color must be one of {sorted(PLATE_COLORS)}")
        return value


class SpotBody(_Body):
    """``POST /v1/plates/{plate}/spot``: the bay the driver parked on."""

    spot_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")


async def operator(request: web.Request) -> Principal:
    """Return the caller if it is an operator (or the admin)."""
    who = await principal(request)
    require_operator(who)
    return who


@routes.add(
    RouteDoc(
        "POST",
        "/v1/operator/gates/{device_id}/open",
        "Open a barrier by hand (manual release)",
        "operator",
        "operator",
        (Param("device_id", "path", ID_SCHEMA),),
        ReleaseBody,
    )
)
async def post_release(request: web.Request) -> web.Response:
    """Queues an `open` command with reason `manual` (the gateway sends it within its sweep
    interval), audited as a `manual_release` gate event naming the token and the reason. With a
    plate: at an entry gate a pending session opens (unless the plate is inside already); at an exit
    gate the plate's session closes and is priced by the gateway (docs/gates.md). 202.
    """
    who = await operator(request)
    device_id = path_id(request, "device_id")
    async with request.app[DB_POOL].acquire() as conn:
        lot_id, lane = await q.gate_lot(conn, device_id)
    await check_lot_scope(request, who, lot_id)
    body = await parse_body(request, ReleaseBody)
    async with request.app[DB_POOL].acquire() as conn:
        release = q.Release(device_id, body.reason, body.plate, who.token_id or "admin", utc_now())
        out = await q.release_gate(conn, lot_id, lane, release)
    return web.json_response(out, status=202)


def _session_json(row: asyncpg.Record, evidence: list[dict[str, Any]]) -> dict[str, Any]:
    doc = dict(row)
    doc["session_id"] = str(row["session_id"])
    for key in ("started_at", "ended_at"):
        doc[key] = row[key].isoformat() if row[key] else None
    doc["evidence"] = evidence
    return doc


def _cursor(request: web.Request) -> tuple[datetime | None, str | None]:
    raw = request.query.get("before")
    if not raw:
        return None, None
    at, _, sid = raw.rpartition("~")
    try:
        return EPOCH + timedelta(microseconds=int(at)), str(uuid.UUID(sid))
    except (ValueError, OverflowError):
        raise bad_param("before", "use the `next` value of the previous page") from None


def _filters(request: web.Request) -> tuple[str | None, str | None, datetime | None, datetime | None]:
    state = request.query.get("state")
    if state is not None and state not in {s.value for s in SessionState}:
        raise bad_param("state", f"one of {[s.value for s in SessionState]}")
    raw_plate = request.query.get("plate")
    plate = normalise_plate(raw_plate) if raw_plate else None
    times = []
    for name in ("from", "to"):
        raw = request.query.get(name)
        try:
            value = datetime.fromisoformat(raw.replace(" ", "+")) if raw else None
        except ValueError:
            raise bad_param(name, f"{raw!r} is not an RFC 3339 time") from None
        if value is not None and value.tzinfo is None:
            raise bad_param(name, "needs a UTC offset")
        times.append(value)
    return plate, state, times[0], times[1]


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/sessions",
        "Parking sessions with their evidence (plate look-ups are audited)",
        "operator",
        "operator",
        (
            Param("lot_id", schema=ID_SCHEMA),
            Param("plate", schema=PLATE_SCHEMA),
            Param("state", schema={"enum": [s.value for s in SessionState]}),
            Param("from", schema={"type": "string", "format": "date-time"}),
            Param("to", schema={"type": "string", "format": "date-time"}),
            Param("before", description="the `next` cursor of the previous page"),
            Param("limit", schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
        ),
    )
)
async def get_sessions(request: web.Request) -> web.Response:
    """Newest first, in the token's scope, overlapping [from, to). Every request naming a plate is
    written to the plate look-up audit log (who, when, which plate, which lot).
    """
    who = await operator(request)
    lot_id = query_id(request, "lot_id")
    plate, state, start, end = _filters(request)
    before_at, before_id = _cursor(request)
    limit = int_param(request, "limit", 1, MAX_PAGE, DEFAULT_PAGE)
    if lot_id is not None:
        await check_lot_scope(request, who, lot_id)
    pool = request.app[DB_POOL]
    if plate is not None:
        route = "GET /v1/operator/sessions"
        await pool.execute(q.AUDIT_LOOKUP, utc_now(), who.token_id or "admin", who.role, plate, lot_id, route)
    sql = q.SESSIONS.format(scope=SCOPE_FILTER)
    rows = await pool.fetch(
        sql, *scope_args(who), lot_id, plate, state, start, end, before_at, before_id, limit
    )
    found = await pool.fetch(q.EVIDENCE_OF, [r["session_id"] for r in rows])
    evidence: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for e in found:
        item = {"ts": e["ts"].isoformat(), "kind": e["kind"], "device_id": e["device_id"]}
        evidence.setdefault(e["session_id"], []).append(item | {"detail": json.loads(e["detail"])})
    items = [_session_json(r, evidence.get(r["session_id"], [])) for r in rows]
    last = rows[-1] if len(rows) == limit else None
    cursor = None if last is None else f"{(last['started_at'] - EPOCH) // MICROSECOND}~{last['session_id']}"
    return web.json_response({"items": items, "next": cursor})


def _session_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["session_id"])
    except ValueError:
        raise ProblemError(pt.UNKNOWN_SESSION, "no such session") from None


@routes.add(
    RouteDoc(
        "POST",
        "/v1/operator/sessions/{session_id}/payments",
        "Record a pay-station payment on a session before its exit",
        "operator",
        "operator",
        (Param("session_id", "path", {"type": "string", "format": "uuid"}),),
        PaymentBody,
    )
)
async def post_payment(request: web.Request) -> web.Response:
    """The exit then sees `paid` when the amount due is covered. Idempotent per (source,
    reference): a repeated receipt is 200 and changes nothing; a new one 201. Only while the
    vehicle is inside (409 `not_inside` after it left: the money rules take over).
    """
    who = await operator(request)
    session_id = _session_id(request)
    pool = request.app[DB_POOL]
    if not who.is_admin:  # scope before the body (a session never changes lots)
        row = await pool.fetchrow(q.SESSION_LOT, session_id)
        if row is None:
            raise ProblemError(pt.UNKNOWN_SESSION, f"no session {session_id}")
        if not who.may_see_lot(row["lot_id"], row["district_id"]):
            raise ProblemError(pt.FORBIDDEN, f"lot {row['lot_id']!r} is outside this token's scope")
    body = await parse_body(request, PaymentBody)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q.SESSION_LOT + " FOR UPDATE OF s", session_id)
        if row is None:
            raise ProblemError(pt.UNKNOWN_SESSION, f"no session {session_id}")
        if row["state"] not in {"pending", "open"}:
            raise ProblemError(pt.NOT_INSIDE, f"session {session_id} is {row['state']}")
        now = utc_now()
        paid = await conn.fetchval(q.PAY, session_id, body.amount_fen, now, body.source, body.reference)
        created = paid is not None
        if created:
            detail = json.dumps(
                {"amount_fen": body.amount_fen, "source": body.source, "reference": body.reference}
            )
            await conn.execute(q.EVIDENCE, session_id, now, "payment", None, detail)
        else:
            paid = await conn.fetchval(q.PAID_SO_FAR, session_id)
    out = {"session_id": str(session_id), "paid_fen": paid, "recorded": created}
    return web.json_response(out, status=201 if created else 200)


# A held bay whose sensor says occupied: the plate named decides arrival or "taken by another".
HELD_AND_OCCUPIED = """
SELECT r.reservation_id FROM reservations r JOIN spots s ON s.spot_id = r.spot_id
WHERE r.spot_id = $1 AND r.status = 'held' AND s.occupied
"""


async def attach_plate(
    request: web.Request, spot_id: str, plate: str, color: str | None, by: dict[str, str]
) -> web.Response:
    """Attach *plate* to the open session of *spot_id*; who did it goes into the evidence (the caller
    checked that it may: an operator of the spot's lot, or a driver holding the plate).
    """
    async with request.app[DB_POOL].acquire() as conn, conn.transaction():
        row = await conn.fetchrow(q.SPOT_SESSION, spot_id)
        if row is None:
            raise ProblemError(pt.UNKNOWN_SPOT, f"no spot {spot_id!r}")
        if row["session_id"] is None:
            held = await conn.fetchval(HELD_AND_OCCUPIED, spot_id)
            if held is not None:  # a held bay: the holder arrived, or another plate took it
                outcome = await report_plate_in_spot(conn, held, normalise_plate(plate), utc_now())
                assert outcome is not None
                view = {k: outcome[k] for k in ("reservation_id", "status", "spot_id")}
                return web.json_response({"spot_id": spot_id, "plate": plate, "reservation": view})
            raise ProblemError(pt.NOT_INSIDE, f"spot {spot_id!r} has no open session")
        await conn.execute(q.ATTACH, row["session_id"], plate, color)
        detail = json.dumps(by | {"plate": plate}, ensure_ascii=False)
        await conn.execute(q.EVIDENCE, row["session_id"], utc_now(), "plate_attached", None, detail)
    return web.json_response({"session_id": str(row["session_id"]), "spot_id": spot_id, "plate": plate})


@routes.add(
    RouteDoc(
        "POST",
        "/v1/operator/spots/{spot_id}/plate",
        "Attach a plate to the open session of an on-street bay (attendant)",
        "operator",
        "operator",
        (Param("spot_id", "path", ID_SCHEMA),),
        PlateBody,
    )
)
async def post_spot_plate(request: web.Request) -> web.Response:
    """The bay's sensor opened the session; the attendant's handheld names the car. 409
    `not_inside` when the bay has no open session, 409 `conflict` when the plate is inside
    elsewhere at that lot. On a held bay that turned occupied, the plate decides the hold
    (docs/reservations.md): the holder arrived, or another plate took it and the hold moves on;
    the answer carries `reservation` (`reservation_id`, `status`, `spot_id`).
    """
    who = await operator(request)
    spot_id = path_id(request, "spot_id")
    await check_spot_scope(request, who, spot_id)
    body = await parse_body(request, PlateBody)
    return await attach_plate(request, spot_id, body.plate, body.plate_color, {"by": who.token_id or "admin"})


@routes.add(
    RouteDoc(
        "POST",
        "/v1/plates/{plate}/spot",
        "Tell which on-street bay the driver's car is on",
        "driver",
        "driver",
        (Param("plate", "path", PLATE_SCHEMA),),
        SpotBody,
    )
)
async def post_driver_spot(request: web.Request) -> web.Response:
    """A driver token bound to the plate attaches it to the bay's open session (as the attendant's
    route does; the evidence names the driver's token).
    """
    who = await principal(request)
    plate = normalise_plate(request.match_info["plate"])
    if who.role != "driver" or plate not in who.plates:
        raise ProblemError(pt.FORBIDDEN, "this route needs a driver token bound to the plate")
    body = await parse_body(request, SpotBody)
    return await attach_plate(request, body.spot_id, plate, None, {"by_driver": who.token_id or ""})
