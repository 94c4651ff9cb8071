"""What no request may carry: text PostgreSQL cannot store, and JSON nested deeper than a limit."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pydantic_core
from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.problems import ProblemError, field_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# NUL and UTF-16 surrogates: PostgreSQL text (and jsonb) cannot hold them (SQLSTATE 22021/22P05).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_MESSAGE = "holds a character that cannot be stored (NUL or a lone surrogate)"
# pydantic-core's JSON parser refuses nesting deeper than ~200 levels while it reads, without
# recursing, so a 100,000-deep body costs one pass and a 400; our documents are under 10 deep.
JSON_DEPTH_LIMIT = 200


def unstorable_path(value: Any, path: str = "") -> str | None:
    """Return the field path (``spots[0].label``) of the first key or text holding unstorable characters."""
    if isinstance(value, str):
        return (path or "body") if UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if UNSTORABLE.search(key):
                return where
            found = unstorable_path(item, where)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = unstorable_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def parse_json(raw: bytes) -> Any:
    """Parse a JSON body (depth-limited), refusing text that cannot be stored; raise a problem."""
    try:
        document = pydantic_core.from_json(raw)
    except ValueError as exc:
        raise ProblemError(pt.MALFORMED_BODY, f"the body is not valid JSON: {exc}") from exc
    where = unstorable_path(document)
    if where is not None:
        raise ProblemError(
            pt.VALIDATION,
            f"{where} {UNSTORABLE_MESSAGE}",
            status=422,
            errors=[field_error(where, UNSTORABLE_MESSAGE, "unstorable")],
        )
    return document


@web.middleware
async def refuse_unstorable_query(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a query parameter (name or value) that holds text the database cannot store (400)."""
    for name, value in request.query.items():
        if UNSTORABLE.search(name) or UNSTORABLE.search(value):
            raise ProblemError(
                pt.VALIDATION,
                f"query parameter {name!r} {UNSTORABLE_MESSAGE}",
                status=400,
                errors=[field_error(name, UNSTORABLE_MESSAGE, "unstorable")],
            )
    return await handler(request)
