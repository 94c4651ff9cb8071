"""The aiohttp application: one composition root for routes, middleware, pool and broker sync."""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.metadata import version

import asyncpg
from aiohttp import web

from guidance_api import (
    admin,
    cds_feed,
    coverage,
    dashboard,
    driver_money,
    driver_notifications,
    gate_routes,
    guidance,
    guidance_spread,
    kpis,
    lots,
    money_operator,
    ngsi_feed,
    operator_history,
    operator_live,
    operator_routes,
    overview,
    payment_notify,
    reservations,
    sharing_overstays,
    spaces_routes,
    tariff_routes,
    zones,
)
from guidance_api.broker import BrokerSync
from guidance_api.context import BROKER, CLOCK, DB_POOL, LOT_WATCH, SETTINGS, TARIFFS, Clock, utc_now
from guidance_api.error_edge import problem_middleware
from guidance_api.input_guard import refuse_unstorable_query
from guidance_api.live import LotWatch
from guidance_api.openapi import Routes
from guidance_api.reservation_sweep import run_sweeps
from guidance_api.tariff_cache import TariffCache
from parking_core.adapters.settings import Settings

POOL_MAX_SIZE = 20  # two cores: more connections only queue inside PostgreSQL


async def keep_session(_conn: asyncpg.Connection) -> None:
    """Release a connection to the pool without asyncpg's reset round trip.

    The default reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL) costs a round trip per
    request. The API sets no session state: no SET outside a transaction, no LISTEN (the live feed
    listens on a connection of its own), no session advisory locks, no cursors outside transactions;
    an open transaction is still rolled back by asyncpg before this hook runs.
    """


def all_routes() -> Routes:
    """Return every documented route of the API."""
    combined = Routes()
    for module in (
        guidance,
        guidance_spread,
        lots,
        zones,
        tariff_routes,
        operator_routes,
        gate_routes,
        operator_history,
        kpis,
        overview,
        reservations,
        sharing_overstays,
        spaces_routes,
        admin,
        cds_feed,
        ngsi_feed,
        coverage,
        operator_live,
        dashboard,
        driver_money,
        driver_notifications,
        payment_notify,
        money_operator,
    ):
        combined.docs.extend(module.routes.docs)
    return combined


def create_app(
    settings: Settings, pool: asyncpg.Pool | None = None, *, sweeps: bool = True, clock: Clock = utc_now
) -> web.Application:
    """Build the application; it opens its own pool unless given one, and sweeps holds unless told not to
    (tests that drive a simulated clock call the sweep themselves).
    """
    app = web.Application(
        middlewares=[problem_middleware, refuse_unstorable_query], client_max_size=8 * 1024 * 1024
    )
    app[SETTINGS] = settings
    app[BROKER] = BrokerSync(settings)
    app[TARIFFS] = TariffCache()
    app[LOT_WATCH] = LotWatch()
    app[CLOCK] = clock
    routes = all_routes()
    routes.install(app)
    document = routes.document("City parking API", version("city-parking"))

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/v1/openapi.json", openapi)

    async def database(app: web.Application) -> AsyncIterator[None]:
        if settings.database_url is not None:  # the live feed's one listening connection
            dsn = settings.database_url
            app[LOT_WATCH].connect = lambda: asyncpg.connect(dsn)
        if pool is not None:
            app[DB_POOL] = app[TARIFFS].pool = app[LOT_WATCH].pool = pool
            yield
            await app[LOT_WATCH].close()
            return
        if settings.database_url is None:
            raise RuntimeError("PARKING_DATABASE_URL is not set")
        async with asyncpg.create_pool(
            settings.database_url, min_size=1, max_size=POOL_MAX_SIZE, reset=keep_session
        ) as own:
            app[DB_POOL] = app[TARIFFS].pool = app[LOT_WATCH].pool = own
            await app[BROKER].sync(own)  # the broker learns devices provisioned while we were away
            yield
            await app[LOT_WATCH].close()

    app.cleanup_ctx.append(database)
    app.on_shutdown.append(end_live_streams)
    if sweeps:
        app.cleanup_ctx.append(run_sweeps)
    return app


async def end_live_streams(app: web.Application) -> None:
    """Tell open live streams to end, so that shutdown does not wait for them."""
    await app[LOT_WATCH].close()
