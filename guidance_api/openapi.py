"""A small route registry that serves the OpenAPI 3.1 document of every route it holds."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from guidance_api.audience import AUDIENCE_ROLES, admit

RouteHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details; validation problems list each bad field in `errors`.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "code": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}
PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
UNAVAILABLE_RESPONSE: dict[str, Any] = {
    "description": "The database is unreachable, restarting or overloaded: retry (problem `unavailable`)",
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}},
    "content": PROBLEM_CONTENT,
}


@dataclass(frozen=True)
class Param:
    """A path or query parameter."""

    name: str
    where: str = "query"
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class RouteDoc:
    """What the OpenAPI document says of one route."""

    method: str
    path: str
    summary: str
    tag: str
    auth: str  # public, driver, operator, admin
    params: tuple[Param, ...] = ()
    body: type[BaseModel] | None = None
    response: dict[str, Any] | None = None
    status: int = 200
    stream: bool = False  # server-sent events: the answer is `text/event-stream` and never ends


EVENT_STREAM = "text/event-stream"


def success_content(doc: RouteDoc) -> dict[str, Any]:
    """Return the content of *doc*'s success answer: JSON, or an endless event stream."""
    if doc.stream:
        events = "server-sent events (`event:` and `data:` lines, `data` JSON), until the client leaves"
        return {EVENT_STREAM: {"schema": {"type": "string", "description": events}}}
    return {"application/json": {"schema": doc.response or {"type": "object"}}}


def streams(operation: dict[str, Any]) -> bool:
    """Tell whether an operation of the document answers with an endless event stream."""
    return any(EVENT_STREAM in answer.get("content", {}) for answer in operation["responses"].values())


def admitted(audience: str, handler: RouteHandler) -> RouteHandler:
    """Return *handler* behind the role check of *audience*: a caller who may not use the route gets
    401 or 403 before its body, path or query is read (the handler checks scope before the body).
    """
    if audience not in AUDIENCE_ROLES:
        raise ValueError(f"unknown audience {audience!r}")

    @functools.wraps(handler)
    async def admitted_handler(request: web.Request) -> web.StreamResponse:
        await admit(request, audience)
        return await handler(request)

    return admitted_handler


@dataclass
class Routes:
    """Collects handlers with their documentation; installs them on an app."""

    docs: list[tuple[RouteDoc, RouteHandler]] = field(default_factory=list)

    def add(self, doc: RouteDoc) -> Callable[[RouteHandler], RouteHandler]:
        """Register the decorated handler under *doc*."""

        def register(handler: RouteHandler) -> RouteHandler:
            self.docs.append((doc, handler))
            return handler

        return register

    def install(self, app: web.Application) -> None:
        """Add every route to *app*, each behind the role check of its documented audience."""
        for doc, handler in self.docs:
            app.router.add_route(doc.method, doc.path, admitted(doc.auth, handler))

    def document(self, title: str, version: str) -> dict[str, Any]:
        """Return the OpenAPI document."""
        paths: dict[str, dict[str, Any]] = {}
        schemas: dict[str, Any] = {"Problem": PROBLEM_SCHEMA}
        for doc, handler in self.docs:
            operation: dict[str, Any] = {
                "summary": doc.summary,
                "description": (handler.__doc__ or "").strip(),
                "operationId": handler.__name__,
                "tags": [doc.tag],
                "x-audience": doc.auth,  # who may call it: tests/hostile checks every route against it
                "parameters": [
                    {
                        "name": p.name,
                        "in": p.where,
                        "required": p.required or p.where == "path",
                        "schema": p.schema,
                        "description": p.description,
                    }
                    for p in doc.params
                ],
                "responses": {
                    str(doc.status): {"description": "OK", "content": success_content(doc)},
                    "4XX": {"description": "Problem (types in docs/api.md)", "content": PROBLEM_CONTENT},
                },
            }
            if doc.path.startswith("/v1/"):
                operation["responses"]["503"] = UNAVAILABLE_RESPONSE
            if doc.auth != "public":
                operation["security"] = [{"bearer": []}]
                operation["description"] += f"\n\nNeeds a token with role `{doc.auth}` (or the admin token)."
            if doc.body is not None:
                schema = doc.body.model_json_schema(ref_template="#/components/schemas/{model}")
                schemas.update(schema.pop("$defs", {}))
                schemas[doc.body.__name__] = schema
                operation["requestBody"] = {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": f"#/components/schemas/{doc.body.__name__}"}}
                    },
                }
            paths.setdefault(doc.path, {})[doc.method.lower()] = operation
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version},
            "servers": [{"url": "/"}],
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            },
        }
