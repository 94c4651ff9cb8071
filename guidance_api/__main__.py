"""``parking-api``: serve the HTTP API (drivers, operators, city, admin) with aiohttp."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from aiohttp import web

from guidance_api.app import create_app
from guidance_api.auth import admin_token_problem
from parking_core.adapters.logs import configure_logging
from parking_core.adapters.settings import Settings
from parking_core.devtools.embedded_defaults import embedded_database


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``parking-api`` command."""
    parser = argparse.ArgumentParser(
        prog="parking-api",
        description="Serve the parking HTTP API (base path /v1, OpenAPI at /v1/openapi.json). Settings come "
        "from PARKING_* variables: PARKING_DATABASE_URL (else the embedded database under PARKING_DATA_DIR), "
        "PARKING_HTTP_HOST, PARKING_HTTP_PORT, PARKING_ADMIN_TOKEN, PARKING_BROKER_AUTH and its file paths.",
    )
    parser.add_argument("--host", help="override PARKING_HTTP_HOST")
    parser.add_argument("--port", type=int, help="override PARKING_HTTP_PORT")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    settings = Settings()
    weak = admin_token_problem(settings.admin_token.get_secret_value() if settings.admin_token else None)
    if weak is not None:
        print(f"parking-api: {weak}", file=sys.stderr)
        return 2
    with embedded_database(settings) as dsn:
        app = create_app(settings.model_copy(update={"database_url": dsn}))
        web.run_app(
            app,
            host=args.host or settings.http_host,
            port=args.port or settings.http_port,
            access_log=None,
            print=lambda msg: print(msg, flush=True),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
