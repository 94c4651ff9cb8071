"""RFC 9457 problem responses and the one middleware that turns errors into them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

log = structlog.get_logger("guidance_api")

PROBLEM_TYPE_BASE = "https://parking.example/problems/"  # documented in docs/api.md
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ProblemError(Exception):
    """An error the client should see as ``application/problem+json``."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str = "",
        errors: Sequence[dict[str, Any]] = (),
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.extra = extra

    def body(self, instance: str) -> dict[str, Any]:
        """Return the problem document."""
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
            "instance": instance,
        }
        if self.errors:
            body["errors"] = self.errors
        return body | self.extra


def field_path(loc: Sequence[int | str]) -> str:
    """Return a pydantic error location as ``spots[1].spot_id``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def validation_problem(exc: ValidationError, where: str = "body") -> ProblemError:
    """Return a 422 (body) or 400 (query) problem that names every bad field."""
    errors = [
        {"field": field_path(err["loc"]) or where, "message": err["msg"], "code": err["type"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    names = ", ".join(sorted({e["field"] for e in errors}))
    status = 422 if where == "body" else 400
    return ProblemError(
        status, "validation", "Invalid request", f"invalid {where} field(s): {names}", errors=errors
    )


def problem_response(problem: ProblemError, instance: str) -> web.Response:
    """Render *problem*."""
    return web.Response(
        status=problem.status,
        text=json.dumps(problem.body(instance), ensure_ascii=False),
        content_type="application/problem+json",
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every error into a problem response; never leak a stack trace."""
    try:
        return await handler(request)
    except ProblemError as problem:
        return problem_response(problem, request.path)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        slug = exc.reason.lower().replace(" ", "_")
        return problem_response(
            ProblemError(exc.status, slug, exc.reason, exc.text or exc.reason), request.path
        )
    except Exception:
        log.exception("request.failed", path=request.path, method=request.method)
        return problem_response(ProblemError(500, "internal", "Internal server error"), request.path)


async def read_json(request: web.Request) -> Any:
    """Return the request body as JSON, or raise a 400 problem."""
    if not request.can_read_body:
        raise ProblemError(400, "malformed_body", "Malformed body", "a JSON body is required")
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProblemError(400, "malformed_body", "Malformed body", f"body is not JSON: {exc}") from exc
