"""Driver money routes: the account, its plates and consent, a plate's invoices, paying an invoice."""

from __future__ import annotations

import json
import secrets
from typing import Any

from aiohttp import web

from billing.adapters.arrears_store import plate_arrears
from billing.adapters.drivers_store import account, bind_plate, set_consent, unbind_plate
from billing.adapters.payments_store import start_payment
from billing.ledger import Balance
from billing.payments import app_parameters
from guidance_api import problem_types as pt
from guidance_api.auth import Principal
from guidance_api.context import DB_POOL, SETTINGS, principal, utc_now
from guidance_api.money_schemas import (
    INVOICE_ID_SCHEMA,
    PLATE_SCHEMA,
    ConsentBody,
    PaymentBody,
    path_invoice_id,
    path_plate,
)
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param, int_param
from guidance_api.problems import ProblemError
from guidance_api.requests import parse_body
from guidance_api.scope import check_invoice_scope

routes = Routes()
STATUSES = ("unpaid", "paid", "all")
MAX_PAGE = 500  # a driver's whole history fits; the app pages by time beyond that
INVOICES = """
SELECT i.invoice_id, i.session_id, i.lot_id, i.entry_at, i.exit_at, i.amount_fen, i.due_at, i.lines,
       b.invoiced_fen, b.adjusted_fen, b.captured_fen, b.refunded_fen, b.written_off_fen
FROM invoices i JOIN invoice_balances b USING (invoice_id)
WHERE i.plate = $1 AND ($2 = 'all' OR ($2 = 'unpaid') = (b.due_fen > 0))
ORDER BY i.exit_at DESC, i.invoice_id LIMIT $3
"""


async def driver(request: web.Request) -> Principal:
    """Return the caller if it is a driver token of an account, else raise 403."""
    who = await principal(request)
    if who.role != "driver" or who.account_id is None:
        raise ProblemError(pt.FORBIDDEN, "this route needs a driver token of an account")
    return who


@routes.add(
    RouteDoc("GET", "/v1/driver/account", "The driver's account, plates and consent", "driver", "driver")
)
async def get_account(request: web.Request) -> web.Response:
    """The plates are those bound to the account now; a token follows them as they change."""
    who = await driver(request)
    assert who.account_id is not None
    async with request.app[DB_POOL].acquire() as conn:
        found = await account(conn, who.account_id)
    if found is None:
        raise ProblemError(pt.UNKNOWN_ACCOUNT, f"no account {who.account_id!r}")
    return web.json_response(
        {
            "account_id": found.account_id,
            "name": found.name,
            "pay_later_consent": found.pay_later_consent,
            "consent_changed_at": found.consent_changed_at.isoformat() if found.consent_changed_at else None,
            "plates": [{"plate": p, "bound_at": at.isoformat()} for p, at in found.plates],
        }
    )


@routes.add(
    RouteDoc(
        "PUT",
        "/v1/driver/plates/{plate}",
        "Bind a plate to the driver's account",
        "driver",
        "driver",
        (Param("plate", "path", PLATE_SCHEMA),),
    )
)
async def put_plate(request: web.Request) -> web.Response:
    """Idempotent: 201 when bound now, 200 when it already was. 409 `plate_bound` when another
    account holds it (it must be unbound there first). Every binding is audited.
    """
    who = await driver(request)
    assert who.account_id is not None
    plate = path_plate(request)
    async with request.app[DB_POOL].acquire() as conn:
        created = await bind_plate(conn, who.account_id, plate, who.token_id or "driver", utc_now())
    return web.json_response({"plate": plate, "account_id": who.account_id}, status=201 if created else 200)


@routes.add(
    RouteDoc(
        "DELETE",
        "/v1/driver/plates/{plate}",
        "Unbind a plate from the driver's account",
        "driver",
        "driver",
        (Param("plate", "path", PLATE_SCHEMA),),
        status=204,
    )
)
async def delete_plate(request: web.Request) -> web.Response:
    """The plate's invoices and arrears stay with the plate. 404 when it is not bound to this account."""
    who = await driver(request)
    assert who.account_id is not None
    plate = path_plate(request)
    async with request.app[DB_POOL].acquire() as conn:
        if not await unbind_plate(conn, who.account_id, plate, who.token_id or "driver", utc_now()):
            raise ProblemError(pt.NOT_FOUND, f"plate {plate} is not bound to this account")
    return web.Response(status=204)


@routes.add(
    RouteDoc(
        "PUT",
        "/v1/driver/consent",
        "Consent to leave first and pay later",
        "driver",
        "driver",
        body=ConsentBody,
    )
)
async def put_consent(request: web.Request) -> web.Response:
    """`{"pay_later": true}` lets the account's plates leave at once at lots that offer it; audited."""
    who = await driver(request)
    assert who.account_id is not None
    body = await parse_body(request, ConsentBody)
    async with request.app[DB_POOL].acquire() as conn:
        if not await set_consent(conn, who.account_id, body.pay_later, who.token_id or "driver", utc_now()):
            raise ProblemError(pt.UNKNOWN_ACCOUNT, f"no account {who.account_id!r}")
    return web.json_response({"account_id": who.account_id, "pay_later_consent": body.pay_later})


def _invoice_item(row: Any, now: Any) -> dict[str, Any]:
    balance = Balance(
        row["invoiced_fen"],
        row["adjusted_fen"],
        row["captured_fen"],
        row["refunded_fen"],
        row["written_off_fen"],
    )
    return {
        "invoice_id": row["invoice_id"],
        "session_id": row["session_id"],
        "lot_id": row["lot_id"],
        "entry_at": row["entry_at"].isoformat(),
        "exit_at": row["exit_at"].isoformat(),
        "amount_fen": balance.owed_fen,
        "paid_fen": balance.applied_fen,
        "written_off_fen": balance.written_off_fen,
        "due_fen": balance.due_fen,
        "status": balance.status(row["due_at"], now).value,
        "due_at": row["due_at"].isoformat(),
        "lines": json.loads(row["lines"]),
    }


@routes.add(
    RouteDoc(
        "GET",
        "/v1/plates/{plate}/invoices",
        "A plate's invoices and arrears",
        "driver",
        "driver",
        (
            Param("plate", "path", PLATE_SCHEMA),
            Param("status", schema={"enum": list(STATUSES)}, description="unpaid (default), paid or all"),
            Param("limit", schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
        ),
    )
)
async def get_plate_invoices(request: web.Request) -> web.Response:
    """Only for a driver whose account holds the plate (or the admin); anyone else gets 403.
    `status` of an item is `unpaid`, `in_arrears` (unpaid past `due_at`), `paid` or `written_off`;
    `?status=unpaid` lists those with something due, `paid` those with nothing due. `arrears_fen` is
    what the plate owes past due across every lot of the city.
    """
    who = await principal(request)
    plate = path_plate(request)
    if not (who.is_admin or (who.role == "driver" and plate in who.plates)):
        raise ProblemError(pt.FORBIDDEN, f"plate {plate} is not bound to this token's account")
    status = request.query.get("status", "unpaid")
    if status not in STATUSES:
        raise bad_param("status", f"must be one of {', '.join(STATUSES)}")
    now = utc_now()
    async with request.app[DB_POOL].acquire() as conn:
        rows = await conn.fetch(INVOICES, plate, status, int_param(request, "limit", 1, MAX_PAGE, 100))
        owed = await plate_arrears(conn, plate, now)
    return web.json_response(
        {"plate": plate, "items": [_invoice_item(r, now) for r in rows], "arrears_fen": owed}
    )


@routes.add(
    RouteDoc(
        "POST",
        "/v1/invoices/{invoice_id}/payments",
        "Start paying an invoice through a provider",
        "driver",
        "driver",
        (Param("invoice_id", "path", INVOICE_ID_SCHEMA),),
        PaymentBody,
        status=201,
    )
)
async def post_payment(request: web.Request) -> web.Response:
    """Records a payment order (`payment_id` is the provider's out_trade_no) for what is due and
    returns `pay_params`, signed by us, for the provider's SDK in the app. The result arrives later
    at `POST /v1/payments/notify/{provider}`. For the driver holding the plate, an operator of the
    lot (an exit pay station) or the admin. 409 `nothing_due` when the invoice is settled.
    """
    who = await principal(request)
    invoice_id = path_invoice_id(request)
    await check_invoice_scope(request, who, invoice_id)
    body = await parse_body(request, PaymentBody)
    secret = request.app[SETTINGS].payment_secret
    if secret is None:
        raise ProblemError(pt.UNAVAILABLE, "payments are not configured (PARKING_PAYMENT_SECRET)")
    async with request.app[DB_POOL].acquire() as conn:
        order = await start_payment(conn, invoice_id, body.provider, who.account_id, utc_now())
    assert order is not None  # the invoice exists (read above) and invoices are never deleted
    base = request.app[SETTINGS].public_url or str(request.url.origin())
    notify_url = f"{base.rstrip('/')}/v1/payments/notify/{order.provider}"
    params = app_parameters(order, secret.get_secret_value().encode(), secrets.token_hex(16), notify_url)
    out = {
        "payment_id": order.payment_id,
        "invoice_id": order.invoice_id,
        "provider": order.provider,
        "amount_fen": order.amount_fen,
        "expires_at": order.expires_at.isoformat(),
        "pay_params": params,
    }
    return web.json_response(out, status=201)
