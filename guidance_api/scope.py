"""What an operator token may see: the lot check of routes that name a lot, the filter of lists."""

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
