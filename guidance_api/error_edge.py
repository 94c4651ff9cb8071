"""The one error edge: a table from domain, billing, provisioning and database errors to problems."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog
from aiohttp import web
from asyncpg.exceptions import InternalClientError

from billing import (
    BillingError,
    ExitBeforeEntryError,
    InvoiceSettledError,
    LedgerRuleError,
    NaiveDatetimeError,
    NoTariffInForceError,
    PlateBoundElsewhereError,
    StayTooLongError,
    TariffValidationError,
    TooManyOrdersError,
)
from guidance_api import problem_types as pt
from guidance_api.problems import ProblemError, field_error, problem_response
from parking_core.adapters.closures_store import ClosureError
from parking_core.adapters.holds_store import LotNotFoundError, LotNotPublicError
from parking_core.adapters.provisioning import ProvisioningError, UnknownReferenceError
from parking_core.errors import (
    HoldRequestError,
    HoldStateError,
    InvalidIdError,
    NaiveTimeError,
    NoRoomError,
    ParkingError,
    SpotNotFreeError,
    UnknownSpotError,
)

log = structlog.get_logger("guidance_api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Translator = Callable[[Any, web.Request], ProblemError]

RETRY_AFTER_S = "2"  # a restarting PostgreSQL or a full pool is usually back within a couple of seconds
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def input_status(request: web.Request) -> int:
    """Return 422 for a request that carries a body, 400 for one whose input is its path and query."""
    return 422 if request.method in BODY_METHODS else 400


def invalid(field: str | None, message: str, code: str, request: web.Request) -> ProblemError:
    """Return the validation problem naming *field* (the request itself when None)."""
    errors = [field_error(field, message, code)] if field else []
    return ProblemError(pt.VALIDATION, message, status=input_status(request), errors=errors)


def unavailable(detail: str) -> ProblemError:
    """Return the 503 problem for a database that cannot answer now."""
    return ProblemError(pt.UNAVAILABLE, detail, headers={"Retry-After": RETRY_AFTER_S})


# Constraints of sql/ and the request field a client changes to satisfy them (for `errors[].field`).
CONSTRAINT_FIELDS = {
    "one_sensor_per_spot": "spot_id",
    "sensor_has_spot": "spot_id",
    "gate_has_lane": "lane",
    "lot_counts_in_range": "capacity",
    "spot_zone_in_lot": "zone_id",
    "zones_lot_id_fkey": "lot_id",
    "lots_district_id_fkey": "district_id",
    "tokens_account_id_fkey": "account_id",
    "reservations_one_hold_per_plate": "plate",
    "reservations_one_hold_per_spot": "spot_id",
}
INTEGRITY = {  # SQLSTATE class 23 by condition: conflicts are 409, references and checks 422
    "23505": (pt.CONFLICT, 409),  # unique_violation: someone else has it (a race the check missed)
    "23P01": (pt.CONFLICT, 409),  # exclusion_violation: overlaps what exists
    "23503": (pt.UNKNOWN_REFERENCE, 422),  # foreign_key_violation: names what does not exist
}


def database_problem(exc: asyncpg.PostgresError, request: web.Request) -> ProblemError:
    """Translate a PostgreSQL error by its SQLSTATE class (the reasons are in docs/api.md)."""
    state: str = exc.sqlstate or ""
    column = getattr(exc, "column_name", None)
    constraint = getattr(exc, "constraint_name", None)
    if state.startswith("22"):  # data exception: a value the client sent does not fit its column
        return invalid(column, f"invalid value: {exc}", f"sqlstate_{state}", request)
    if state.startswith("23"):  # integrity: the request contradicts a constraint
        kind, status = INTEGRITY.get(state, (pt.VALIDATION, 422))
        field = column or CONSTRAINT_FIELDS.get(constraint or "", constraint)
        errors = [field_error(field, str(exc), f"sqlstate_{state}")] if field else []
        return ProblemError(kind, str(exc), status=status, errors=errors, constraint=constraint)
    # 08 connection exception, 53 insufficient resources (too many connections, disk or memory full),
    # 57P01-57P03 shut down or starting, 57014 statement timeout, 40 serialization failure / deadlock:
    # the request was fine and will likely succeed when retried.
    if state[:2] in {"08", "53", "40"} or state in {"57P01", "57P02", "57P03", "57014"}:
        return unavailable(f"the database cannot answer now ({state}); retry later")
    return internal(exc, request)


def interface_problem(exc: asyncpg.InterfaceError, request: web.Request) -> ProblemError:
    """A closing pool or a connection the server closed is a restart (503); other misuse is ours."""
    if str(exc).startswith(("pool is", "connection is closed")):
        return unavailable("the database connection is closing; retry later")
    return internal(exc, request)


def internal(exc: BaseException, request: web.Request) -> ProblemError:
    """Log a bug with its traceback and return the 500 problem that hides it."""
    log.error("request.failed", path=request.path, method=request.method, exc_info=exc)
    return ProblemError(pt.INTERNAL)


HTTP_STATUSES = {
    403: pt.FORBIDDEN,
    404: pt.NOT_FOUND,
    405: pt.METHOD_NOT_ALLOWED,
    413: pt.BODY_TOO_LARGE,
}


def http_problem(exc: web.HTTPException, _request: web.Request) -> ProblemError:
    """Translate aiohttp's own refusals (no route, wrong method, body too large)."""
    kind = HTTP_STATUSES.get(exc.status, pt.BAD_REQUEST)
    return ProblemError(kind, exc.text or exc.reason, status=exc.status)


def tariff_problem(exc: TariffValidationError, _request: web.Request) -> ProblemError:
    """List every bad path of a tariff document."""
    errors = [field_error(p.path or "body", p.message, pt.INVALID_TARIFF.slug) for p in exc.problems]
    return ProblemError(pt.INVALID_TARIFF, str(exc), errors=errors)


def provisioning_problem(exc: ProvisioningError, _request: web.Request) -> ProblemError:
    """A reference to nothing is 422, a contradiction of what exists 409; both name the field."""
    kind = pt.UNKNOWN_REFERENCE if isinstance(exc, UnknownReferenceError) else pt.CONFLICT
    return ProblemError(kind, str(exc), errors=[field_error(exc.field, str(exc), kind.slug)])


def no_room_problem(exc: NoRoomError, _request: web.Request) -> ProblemError:
    """Nothing free to hold: names the zone when one was asked for, else the lot."""
    field = "zone_id" if exc.zone_id else "lot_id"
    return ProblemError(pt.NO_ROOM, str(exc), errors=[field_error(field, str(exc), pt.NO_ROOM.slug)])


def closure_problem(exc: ClosureError, _request: web.Request) -> ProblemError:
    """A held spot refuses to close (409); a spot of another lot is an unknown reference (422)."""
    kind = pt.SPOT_NOT_FREE if exc.held else pt.UNKNOWN_REFERENCE
    return ProblemError(kind, str(exc), errors=[field_error(exc.field, str(exc), kind.slug)])


# THE TABLE. The first entry whose class matches wins, so a subclass comes before its base
# (tests/unit/api/test_error_edge.py checks that no entry hides a later one).
TRANSLATIONS: tuple[tuple[type[BaseException], Translator], ...] = (
    (ProblemError, lambda exc, _r: exc),
    (web.HTTPException, http_problem),
    # parking_core: the pure domain
    (InvalidIdError, lambda e, r: invalid(f"{e.kind}_id", str(e), "pattern", r)),
    (UnknownSpotError, lambda e, _r: ProblemError(pt.UNKNOWN_SPOT, str(e), spot_id=e.spot_id)),
    (NaiveTimeError, lambda e, r: invalid(e.what, str(e), "naive_time", r)),
    (HoldRequestError, lambda e, r: invalid(e.field, str(e), "policy", r)),
    (LotNotPublicError, lambda e, _r: ProblemError(pt.LOT_NOT_PUBLIC, str(e), lot_id=e.lot_id)),
    (NoRoomError, no_room_problem),
    (
        SpotNotFreeError,
        lambda e, _r: ProblemError(
            pt.SPOT_NOT_FREE, str(e), errors=[field_error("spot_id", str(e), "spot_not_free")]
        ),
    ),
    (HoldStateError, lambda e, _r: ProblemError(pt.NOT_HELD, str(e), status_now=e.status)),
    (ParkingError, lambda e, r: invalid(None, str(e), "domain", r)),
    # billing
    (TariffValidationError, tariff_problem),
    (ExitBeforeEntryError, lambda e, r: invalid("exit", str(e), "before_entry", r)),
    (StayTooLongError, lambda e, r: invalid("exit", str(e), "stay_too_long", r)),
    (NaiveDatetimeError, lambda e, r: invalid(e.field, str(e), "naive_time", r)),
    (NoTariffInForceError, lambda e, _r: ProblemError(pt.NO_TARIFF, str(e), tariff_id=e.tariff_id)),
    (InvoiceSettledError, lambda e, _r: ProblemError(pt.NOTHING_DUE, str(e), invoice_id=e.invoice_id)),
    (TooManyOrdersError, lambda e, _r: ProblemError(pt.TOO_MANY_ORDERS, str(e), invoice_id=e.invoice_id)),
    (PlateBoundElsewhereError, lambda e, _r: ProblemError(pt.PLATE_BOUND, str(e), plate=e.plate)),
    (LedgerRuleError, lambda e, _r: ProblemError(pt.MONEY_RULE, str(e), invoice_id=e.invoice_id)),
    (BillingError, lambda e, _r: ProblemError(pt.BILLING, str(e))),
    # store adapters
    (ProvisioningError, provisioning_problem),
    (
        LotNotFoundError,
        lambda e, _r: ProblemError(
            pt.UNKNOWN_REFERENCE, str(e), errors=[field_error("lot_id", str(e), "unknown_reference")]
        ),
    ),
    (ClosureError, closure_problem),
    # the database, by SQLSTATE class
    (asyncpg.PostgresError, database_problem),
    (asyncpg.InterfaceError, interface_problem),
    # Seen when the server terminates an idle pooled connection and the next query races the notice.
    (InternalClientError, lambda _e, _r: unavailable("the database dropped the connection; retry")),
    (ConnectionError, lambda _e, _r: unavailable("the database refused or dropped the connection")),
    (TimeoutError, lambda _e, _r: unavailable("no database connection became free in time")),
)


def translate(exc: Exception, request: web.Request) -> ProblemError:
    """Return the problem for *exc* by the table; anything not in it is a logged 500."""
    for cls, translator in TRANSLATIONS:
        if isinstance(exc, cls):
            return translator(exc, request)
    return internal(exc, request)


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into a problem response through the table; never leak a stack trace."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        problem = translate(exc, request)
    except Exception as exc:
        problem = translate(exc, request)
    if problem.kind is pt.UNAVAILABLE:
        log.warning("request.unavailable", path=request.path, detail=problem.detail)
    return problem_response(problem, request.path)
