"""``python -m bench.bare_vacancies``: the bare endpoint the vacancies benchmark compares the API with."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator

import asyncpg
from aiohttp import web

from guidance_api.guidance import CANDIDATES_PER_RESULT
from guidance_api.queries import VACANCIES
from parking_core.adapters.settings import Settings

RAW_POOL_SIZE = 20  # the same pool size as guidance_api.app.POOL_MAX_SIZE
POOL = web.AppKey("pool", asyncpg.Pool)


async def vacancies(request: web.Request) -> web.Response:
    """Run the nearest-neighbour query and return the first *limit* rows."""
    q = request.query
    limit = int(q.get("limit", "20"))
    rows = await request.app[POOL].fetch(
        VACANCIES,
        float(q["lat"]),
        float(q["lon"]),
        float(q.get("radius_m", "1000")),
        limit * CANDIDATES_PER_RESULT,
        False,  # no arrive_at: full lots stay out, as in the real route
    )
    items = [
        {
            "lot_id": r["lot_id"],
            "name": r["name"],
            "kind": r["kind"],
            "lat": r["lat"],
            "lon": r["lon"],
            "distance_m": round(r["distance_m"]),
            "free": r["free_count"],
            "capacity": r["capacity"],
            "updated_at": r["counts_updated_at"].isoformat() if r["counts_updated_at"] else None,
        }
        for r in rows[:limit]
    ]
    return web.json_response({"items": items})


def bare_app(database_url: str) -> web.Application:
    """Return the bare endpoint: the API's SQL, rows as JSON, nothing else."""

    async def database(app: web.Application) -> AsyncIterator[None]:
        async with asyncpg.create_pool(database_url, min_size=1, max_size=RAW_POOL_SIZE) as pool:
            app[POOL] = pool
            yield

    app = web.Application()
    app.router.add_get("/v1/vacancies", vacancies)
    app.cleanup_ctx.append(database)
    return app


def main(argv: list[str] | None = None) -> int:
    """Serve the bare endpoint on 127.0.0.1 until SIGTERM (database from PARKING_DATABASE_URL)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.bare_vacancies",
        description="Serve GET /v1/vacancies with the API's SQL and nothing else (the benchmark's "
        "bare limit). The database comes from PARKING_DATABASE_URL.",
    )
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    database_url = Settings().database_url
    if database_url is None:
        parser.error("set PARKING_DATABASE_URL")
    web.run_app(bare_app(database_url), host="127.0.0.1", port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
