"""Typed application state shared by the route modules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from guidance_api.auth import Principal, authenticate
from guidance_api.broker import BrokerSync
from guidance_api.live import LotWatch
from guidance_api.tariff_cache import TariffCache
from parking_core.adapters.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
BROKER = web.AppKey("broker", BrokerSync)
TARIFFS = web.AppKey("tariffs", TariffCache)
LOT_WATCH = web.AppKey("lot_watch", LotWatch)
Clock = Callable[[], datetime]
CLOCK: web.AppKey[Clock] = web.AppKey("clock")  # what reservation rules read as "now" (tests simulate it)


def utc_now() -> datetime:
    """Return the current time; the one place the API reads the clock."""
    return datetime.now(UTC)


PRINCIPAL = web.RequestKey("principal", Principal)  # the caller, once authenticated for this request


async def principal(request: web.Request) -> Principal:
    """Return the authenticated caller of *request* (looked up once per request)."""
    known = request.get(PRINCIPAL)
    if known is None:
        settings = request.app[SETTINGS]
        admin = settings.admin_token.get_secret_value() if settings.admin_token else None
        known = request[PRINCIPAL] = await authenticate(request, request.app[DB_POOL], admin, utc_now())
    return known
