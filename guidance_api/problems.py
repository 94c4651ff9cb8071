"""RFC 9457 problem responses: the error a route raises and how it is rendered."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from guidance_api.problem_types import VALIDATION, ProblemType


class ProblemError(Exception):
    """An error the client should see as ``application/problem+json``."""

    def __init__(
        self,
        kind: ProblemType,
        detail: str = "",
        *,
        status: int | None = None,
        errors: Sequence[dict[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or kind.title)
        self.kind = kind
        self.status = kind.status if status is None else status
        self.detail = detail
        self.errors = list(errors)
        self.headers = dict(headers or {})
        self.extra = extra

    @property
    def slug(self) -> str:
        """Return the stable slug of the problem's type."""
        return self.kind.slug

    def body(self, instance: str) -> dict[str, Any]:
        """Return the problem document."""
        body: dict[str, Any] = {
            "type": self.kind.uri,
            "title": self.kind.title,
            "status": self.status,
            "detail": self.detail or self.kind.title,
            "instance": instance,
        }
        if self.errors:
            body["errors"] = self.errors
        return body | self.extra


def field_error(field: str, message: str, code: str) -> dict[str, str]:
    """Return one entry of a problem's ``errors[]``."""
    return {"field": field, "message": message, "code": code}


def field_path(loc: Sequence[int | str]) -> str:
    """Return a pydantic error location as ``spots[1].spot_id``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def validation_problem(exc: ValidationError, where: str = "body") -> ProblemError:
    """Return a 422 (body) or 400 (query) problem that names every bad field."""
    errors = [
        field_error(field_path(err["loc"]) or where, err["msg"], err["type"])
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]
    names = ", ".join(sorted({e["field"] for e in errors}))
    status = 422 if where == "body" else 400
    return ProblemError(VALIDATION, f"invalid {where} field(s): {names}", status=status, errors=errors)


def problem_response(problem: ProblemError, instance: str) -> web.Response:
    """Render *problem*."""
    return web.Response(
        status=problem.status,
        text=json.dumps(problem.body(instance), ensure_ascii=False),
        content_type="application/problem+json",
        headers=problem.headers,
    )
