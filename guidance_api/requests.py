"""Request parsing shared by the route modules: path and query ids, JSON bodies, the unknown lot."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from guidance_api import problem_types as pt
from guidance_api.auth import require_admin
from guidance_api.context import principal
from guidance_api.input_guard import parse_json
from guidance_api.problems import ProblemError, field_error, validation_problem
from guidance_api.schemas import ID_SCHEMA
from parking_core.ids import ID_PATTERN, is_valid_id

__all__ = ["ID_SCHEMA", "admin_only", "parse_body", "path_id", "query_id", "read_json", "unknown_lot"]

Body = TypeVar("Body", bound=BaseModel)


def bad_id(name: str) -> ProblemError:
    """Return the 400 problem for a malformed id in the path or the query."""
    return ProblemError(
        pt.VALIDATION,
        f"{name} must match {ID_PATTERN.pattern}",
        status=400,
        errors=[field_error(name, "not a valid identifier", "pattern")],
    )


def path_id(request: web.Request, name: str) -> str:
    """Return a path identifier, or raise a 400 problem naming it."""
    value = request.match_info[name]
    if not is_valid_id(value):
        raise bad_id(name)
    return value


def query_id(request: web.Request, name: str) -> str | None:
    """Return an optional identifier query parameter, or raise a 400 problem naming it."""
    value = request.query.get(name)
    if value is not None and not is_valid_id(value):
        raise bad_id(name)
    return value


async def parse_body(request: web.Request, model: type[Body]) -> Body:
    """Validate the JSON body strictly against *model*, or raise a 400/422 problem naming fields."""
    raw = await request.read()
    parse_json(raw or b"null")  # a 400 when not JSON or too deep, a 422 naming unstorable text
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise ProblemError(pt.MALFORMED_BODY, "the body is not valid JSON") from exc
        raise validation_problem(exc) from exc


async def read_json(request: web.Request) -> Any:
    """Return the request body as JSON, or raise a 400 problem."""
    if not request.can_read_body:
        raise ProblemError(pt.MALFORMED_BODY, "a JSON body is required")
    return parse_json(await request.read())


def unknown_lot(lot_id: str) -> ProblemError:
    """Return the 404 problem for an unknown lot."""
    return ProblemError(pt.UNKNOWN_LOT, f"no lot {lot_id!r}", lot_id=lot_id)


async def admin_only(request: web.Request) -> None:
    """Raise unless the caller holds the admin token."""
    require_admin(await principal(request))
