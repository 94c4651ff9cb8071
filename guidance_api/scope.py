"""What a token may act on: the lot, spot and invoice checks of routes that name one, the filter of lists.

Each check runs before the route reads its body: a caller out of scope gets 403 whatever it sent.
"""

from __future__ import annotations

from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.auth import Principal
from guidance_api.context import DB_POOL
from guidance_api.problems import ProblemError
from guidance_api.requests import unknown_lot

# The rows of lots `l` the caller may see; its arguments are scope_args(who) as $1, $2, $3.
SCOPE_FILTER = "($1::bool OR l.lot_id = ANY($2::text[]) OR l.district_id = ANY($3::text[]))"


def scope_args(who: Principal) -> tuple[bool, list[str], list[str]]:
    """Return the arguments of SCOPE_FILTER for *who*."""
    return who.is_admin, sorted(who.lot_ids), sorted(who.district_ids)


async def check_lot_scope(request: web.Request, who: Principal, lot_id: str) -> None:
    """Raise 404 for an unknown lot and 403 for a lot outside the token's scope."""
    district = await request.app[DB_POOL].fetchval("SELECT district_id FROM lots WHERE lot_id = $1", lot_id)
    if district is None:
        raise unknown_lot(lot_id)
    if not who.may_see_lot(lot_id, district):
        raise ProblemError(pt.FORBIDDEN, f"lot {lot_id!r} is outside this token's scope")


SPOT_LOT = "SELECT s.lot_id, l.district_id FROM spots s JOIN lots l USING (lot_id) WHERE s.spot_id = $1"
INVOICE_HOLDER = """
SELECT i.plate, i.lot_id, l.district_id FROM invoices i JOIN lots l USING (lot_id) WHERE i.invoice_id = $1
"""


async def check_spot_scope(request: web.Request, who: Principal, spot_id: str) -> None:
    """Raise 404 for an unknown spot and 403 for a spot of a lot outside the token's scope."""
    row = await request.app[DB_POOL].fetchrow(SPOT_LOT, spot_id)
    if row is None:
        raise ProblemError(pt.UNKNOWN_SPOT, f"no spot {spot_id!r}")
    if not who.may_see_lot(row["lot_id"], row["district_id"]):
        raise ProblemError(pt.FORBIDDEN, f"lot {row['lot_id']!r} is outside this token's scope")


async def check_invoice_scope(request: web.Request, who: Principal, invoice_id: str) -> str:
    """Raise 404 for an unknown invoice and 403 unless *who* is a driver holding its plate or may see
    its lot (an operator of the lot, the admin); return the invoice's lot.
    """
    holder = await request.app[DB_POOL].fetchrow(INVOICE_HOLDER, invoice_id)
    if holder is None:
        raise ProblemError(pt.UNKNOWN_INVOICE, f"no invoice {invoice_id!r}", invoice_id=invoice_id)
    if not (
        (who.role == "driver" and holder["plate"] in who.plates)
        or who.may_see_lot(holder["lot_id"], holder["district_id"])
    ):
        raise ProblemError(pt.FORBIDDEN, "this invoice's plate is not bound to this token")
    return str(holder["lot_id"])
