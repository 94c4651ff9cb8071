"""The city screen: a static page (no build step, no CDN) that polls the public lot list."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.openapi import Param, RouteDoc, Routes
from guidance_api.problems import ProblemError

routes = Routes()

STATIC_DIR = Path(__file__).parent / "static"
# The page's files and their types; nothing else under static/ is ever served.
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "map.js": "text/javascript; charset=utf-8",
    "operator.html": "text/html; charset=utf-8",
    "operator.js": "text/javascript; charset=utf-8",
    "operator.css": "text/css; charset=utf-8",
    "zhengzhou.geojson": "application/geo+json",  # the city's outlines (MIT, zhengzhou.geojson.LICENSE)
}
NO_CACHE = {"Cache-Control": "no-cache"}  # small files; a redeploy must show at once on the city screen


@routes.add(RouteDoc("GET", "/", "Redirect to the city screen", "dashboard", "public", status=302))
async def get_root(_request: web.Request) -> web.StreamResponse:
    """The root of the server is the city screen."""
    raise web.HTTPFound("/dashboard/")


@routes.add(RouteDoc("GET", "/dashboard", "Redirect to the city screen", "dashboard", "public", status=302))
async def get_dashboard_bare(_request: web.Request) -> web.StreamResponse:
    """Relative asset links need the trailing slash."""
    raise web.HTTPFound("/dashboard/")


@routes.add(RouteDoc("GET", "/dashboard/", "The city screen (一屏观全城)", "dashboard", "public"))
async def get_dashboard(_request: web.Request) -> web.StreamResponse:
    """An HTML page that polls `GET /v1/lots` every 2 s: districts by name, lots, a map of the city's
    outlines, coverage by month.
    """
    return asset_response("index.html")


@routes.add(RouteDoc("GET", "/operator", "Redirect to the operator pages", "dashboard", "public", status=302))
async def get_operator(_request: web.Request) -> web.StreamResponse:
    """Sign in with an operator token: one's lots live, device health, money, rejected messages."""
    raise web.HTTPFound("/dashboard/operator.html")


@routes.add(
    RouteDoc(
        "GET",
        "/dashboard/{asset}",
        "A file of the city screen",
        "dashboard",
        "public",
        (Param("asset", "path", {"enum": sorted(ASSETS)}),),
    )
)
async def get_dashboard_asset(request: web.Request) -> web.StreamResponse:
    """The page's script and style sheet."""
    return asset_response(request.match_info["asset"])


def asset_response(name: str) -> web.StreamResponse:
    """Return one of the page's files, or a 404 problem."""
    content_type = ASSETS.get(name)
    if content_type is None:
        raise ProblemError(pt.NOT_FOUND, f"no dashboard file {name!r}")
    return web.FileResponse(STATIC_DIR / name, headers={"Content-Type": content_type, **NO_CACHE})
