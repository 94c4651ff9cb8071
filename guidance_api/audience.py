"""Who may call a route at all: its documented audience, checked before the handler reads anything."""

from __future__ import annotations

from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.context import principal
from guidance_api.problems import ProblemError

# The roles each audience admits (None: anyone, with or without a token). A driver route also
# serves an operator of the lot concerned (an exit pay station) and the admin: the handler then
# checks which invoice, plate or lot the caller may act on, before it reads the body.
AUDIENCE_ROLES: dict[str, frozenset[str] | None] = {
    "public": None,
    "driver": frozenset({"driver", "operator", "admin"}),
    "operator": frozenset({"operator", "admin"}),
    "admin": frozenset({"admin"}),
}
NEEDS = {"driver": "a driver token", "operator": "an operator token", "admin": "the admin token"}


async def admit(request: web.Request, audience: str) -> None:
    """Raise 401 without a valid token and 403 for a role outside *audience*, whatever the body."""
    roles = AUDIENCE_ROLES[audience]
    if roles is None:
        return
    who = await principal(request)
    if who.role not in roles:
        raise ProblemError(pt.FORBIDDEN, f"this route needs {NEEDS[audience]}")
