"""Operator and admin money routes: arrears in scope (paged), write-offs, driver accounts, lot policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from billing.adapters.arrears_store import write_off_and_lift
from billing.adapters.drivers_store import put_account
from billing.adapters.ledger_store import WriteOff, adjustment
from billing.adapters.reconcile_store import daily_totals
from billing.reconcile import DayTotals, sum_totals
from guidance_api.auth import require_operator
from guidance_api.context import DB_POOL, principal, utc_now
from guidance_api.money_schemas import (
    INVOICE_ID_SCHEMA,
    AdjustmentBody,
    DriverAccountBody,
    LotMoneyPolicyBody,
    WriteOffBody,
    path_invoice_id,
)
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.params import bad_param, int_param
from guidance_api.requests import ID_SCHEMA, Body, admin_only, parse_body, path_id, query_id, unknown_lot
from guidance_api.scope import SCOPE_FILTER, check_invoice_scope, check_lot_scope, scope_args
from parking_core.lots import DEFAULT_TIME_ZONE

routes = Routes()
MAX_PAGE = 1000
ARREARS = f"""
SELECT b.invoice_id, b.plate, b.lot_id, b.due_at, b.due_fen, i.amount_fen, i.exit_at,
       EXISTS (SELECT 1 FROM money_deny_list d WHERE d.plate = b.plate AND d.lifted_at IS NULL) AS blacklisted
FROM invoice_balances b JOIN invoices i USING (invoice_id) JOIN lots l ON l.lot_id = b.lot_id
WHERE {SCOPE_FILTER} AND b.due_fen > 0 AND b.due_at <= $4
  AND ($5::text IS NULL OR b.lot_id = $5) AND (b.due_at, b.invoice_id) > ($6, $7)
ORDER BY b.due_at, b.invoice_id LIMIT $8
"""
PUT_POLICY = """
INSERT INTO lot_money_policies
    (lot_id, pay_later, arrears_limit_fen, deny_entry_when_blacklisted, pay_within_s)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (lot_id) DO UPDATE SET pay_later = EXCLUDED.pay_later,
    arrears_limit_fen = EXCLUDED.arrears_limit_fen,
    deny_entry_when_blacklisted = EXCLUDED.deny_entry_when_blacklisted, pay_within_s = EXCLUDED.pay_within_s
RETURNING (xmax = 0) AS created
"""
EPOCH = datetime.fromisoformat("2000-01-01T00:00:00+00:00")


def _cursor(request: web.Request) -> tuple[datetime, str]:
    raw = request.query.get("after")
    if not raw:
        return EPOCH, ""
    when, _, invoice_id = raw.partition("~")
    try:
        at = datetime.fromisoformat(when)
    except ValueError:
        raise bad_param("after", "is not a cursor returned as `next`") from None
    if at.tzinfo is None or not invoice_id:
        raise bad_param("after", "is not a cursor returned as `next`")
    return at, invoice_id


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/arrears",
        "Overdue invoices at the operator's lots",
        "operator",
        "operator",
        (
            Param("lot_id", schema=ID_SCHEMA),
            Param("after", description="the `next` cursor of the previous page"),
            Param("limit", schema={"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
        ),
    )
)
async def get_arrears(request: web.Request) -> web.Response:
    """Invoices with something due past their due date, oldest first, at the lots in the token's
    scope; `blacklisted` says whether the plate is on the city's money deny list. Page with `after`.
    """
    who = await principal(request)
    require_operator(who)
    lot_id = query_id(request, "lot_id")
    if lot_id is not None:
        await check_lot_scope(request, who, lot_id)
    limit = int_param(request, "limit", 1, MAX_PAGE, 100)
    now = utc_now()
    rows = await request.app[DB_POOL].fetch(ARREARS, *scope_args(who), now, lot_id, *_cursor(request), limit)
    items: list[dict[str, Any]] = [
        {
            "invoice_id": r["invoice_id"],
            "plate": r["plate"],
            "lot_id": r["lot_id"],
            "exit_at": r["exit_at"].isoformat(),
            "amount_fen": r["amount_fen"],
            "due_fen": r["due_fen"],
            "due_at": r["due_at"].isoformat(),
            "days_overdue": (now - r["due_at"]).days,
            "blacklisted": r["blacklisted"],
        }
        for r in rows
    ]
    last = rows[-1] if len(rows) == limit else None
    following = f"{last['due_at'].isoformat()}~{last['invoice_id']}" if last else None
    return web.json_response({"items": items, "next": following})


@routes.add(
    RouteDoc(
        "POST",
        "/v1/operator/invoices/{invoice_id}/write-off",
        "Write off what is due on an invoice",
        "operator",
        "operator",
        (Param("invoice_id", "path", INVOICE_ID_SCHEMA),),
        WriteOffBody,
    )
)
async def post_write_off(request: web.Request) -> web.Response:
    """A `written_off` ledger entry with the reason, and an audit row naming the token. `amount_fen`
    defaults to all that is due; more than is due is refused (422 `money_rule`).
    """
    return await _correct(
        request,
        WriteOffBody,
        lambda b, invoice_id, actor: WriteOff(invoice_id, b.amount_fen, b.reason, actor),
    )


@routes.add(
    RouteDoc(
        "POST",
        "/v1/operator/invoices/{invoice_id}/adjustments",
        "Change what is owed on an invoice",
        "operator",
        "operator",
        (Param("invoice_id", "path", INVOICE_ID_SCHEMA),),
        AdjustmentBody,
    )
)
async def post_adjustment(request: web.Request) -> web.Response:
    """An `adjusted` ledger entry (signed: negative means the driver owes less) with the reason, and
    an audit row naming the token. Lowering below what is still due is refused (422 `money_rule`):
    money already paid goes back as a refund, not an adjustment. 0 is refused (422 `validation`).
    """
    return await _correct(
        request,
        AdjustmentBody,
        lambda b, invoice_id, actor: adjustment(invoice_id, b.amount_fen, b.reason, actor),
    )


async def _correct(
    request: web.Request, model: type[Body], decide: Callable[[Body, str, str], WriteOff]
) -> web.Response:
    """Authorise, read *model*, then write off or adjust as *decide* says (the token is the actor)."""
    who = await principal(request)
    require_operator(who)
    invoice_id = path_invoice_id(request)
    await check_invoice_scope(request, who, invoice_id)
    body = await parse_body(request, model)
    async with request.app[DB_POOL].acquire() as conn:
        balance = await write_off_and_lift(conn, decide(body, invoice_id, who.token_id or "admin"), utc_now())
    assert balance is not None  # the invoice exists (read above) and invoices are never deleted
    return web.json_response(
        {
            "invoice_id": invoice_id,
            "amount_fen": balance.owed_fen,
            "written_off_fen": balance.written_off_fen,
            "due_fen": balance.due_fen,
        }
    )


def _totals_json(totals: DayTotals) -> dict[str, int]:
    return asdict(totals)


@routes.add(
    RouteDoc(
        "GET",
        "/v1/operator/money/daily",
        "A day's money per lot: invoiced, captured, refunded, written off, outstanding",
        "operator",
        "operator",
        (
            Param("day", required=True, schema={"type": "string", "format": "date"}),
            Param("time_zone", description="the day's time zone (default Asia/Shanghai)"),
        ),
    )
)
async def get_money_daily(request: web.Request) -> web.Response:
    """From the ledger: what was invoiced, adjusted, captured, refunded and written off on the local
    day at each lot in the token's scope, and what stays outstanding at the day's end; `total` sums
    the scope (the operator's reconciliation).
    """
    who = await principal(request)
    require_operator(who)
    try:
        day = date.fromisoformat(request.query.get("day", ""))
    except ValueError:
        raise bad_param("day", "must be a date YYYY-MM-DD") from None
    try:
        tz = ZoneInfo(request.query.get("time_zone", DEFAULT_TIME_ZONE))
    except (ZoneInfoNotFoundError, ValueError):
        raise bad_param("time_zone", "is not an IANA time zone") from None
    pool = request.app[DB_POOL]
    lots = frozenset(
        r["lot_id"]
        for r in await pool.fetch(f"SELECT l.lot_id FROM lots l WHERE {SCOPE_FILTER}", *scope_args(who))
    )
    per_lot = {}
    if lots:
        async with pool.acquire() as conn:
            per_lot = await daily_totals(conn, day, tz, lots)
    return web.json_response(
        {
            "day": day.isoformat(),
            "time_zone": tz.key,
            "items": [{"lot_id": lot} | _totals_json(t) for lot, t in per_lot.items()],
            "total": _totals_json(sum_totals(per_lot.values())),
        }
    )


@routes.add(
    RouteDoc(
        "PUT",
        "/v1/admin/drivers/{account_id}",
        "Create or rename a driver account",
        "admin",
        "admin",
        (Param("account_id", "path", ID_SCHEMA),),
        DriverAccountBody,
    )
)
async def put_driver(request: web.Request) -> web.Response:
    """Idempotent. Issue the account's token with `POST /v1/admin/tokens` and `account_id`."""
    await admin_only(request)
    account_id = path_id(request, "account_id")
    body = await parse_body(request, DriverAccountBody)
    async with request.app[DB_POOL].acquire() as conn:
        created = await put_account(conn, account_id, body.name)
    return web.json_response({"account_id": account_id, "name": body.name}, status=201 if created else 200)


@routes.add(
    RouteDoc(
        "PUT",
        "/v1/admin/lots/{lot_id}/money-policy",
        "Set a lot's pay-later, arrears and due-date policy",
        "admin",
        "admin",
        (Param("lot_id", "path", ID_SCHEMA),),
        LotMoneyPolicyBody,
    )
)
async def put_money_policy(request: web.Request) -> web.Response:
    """Idempotent. A lot without a policy uses the defaults of this body."""
    await admin_only(request)
    lot_id = path_id(request, "lot_id")
    body = await parse_body(request, LotMoneyPolicyBody)
    pool = request.app[DB_POOL]
    if await pool.fetchval("SELECT 1 FROM lots WHERE lot_id = $1", lot_id) is None:
        raise unknown_lot(lot_id)
    created = await pool.fetchval(
        PUT_POLICY,
        lot_id,
        body.pay_later,
        body.arrears_limit_fen,
        body.deny_entry_when_blacklisted,
        body.pay_within_s,
    )
    return web.json_response(body.model_dump() | {"lot_id": lot_id}, status=201 if created else 200)
