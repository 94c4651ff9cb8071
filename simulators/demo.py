"""``parking-demo``: everything at once on embedded defaults, with a simulated Zhengzhou-like city."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from billing.examples import example_tariff_documents
from parking_core.adapters.logs import configure_logging
from parking_core.adapters.migrate_pg import upgrade_database
from parking_core.adapters.settings import Settings
from parking_core.devtools.embedded import free_port, port_is_free
from parking_core.devtools.embedded_defaults import EMBEDDED_DATABASE, ensure_database
from parking_core.devtools.harness import ServiceHarness, with_database
from parking_core.devtools.processes import (
    Process,
    ProcessFailedError,
    Ready,
    environment,
    http_ok,
    log_line,
    python_module,
    running,
)
from simulators.city import CityLayout, load_city
from simulators.demo_drivers import DemoDriver, create_drivers, drivers_banner, payment_secret, record_stays
from simulators.provision import provision_city

DEFAULT_CITY = Path(str(files("simulators") / "cities" / "zhengzhou.json"))
DEMO_HEARTBEAT_S = 60  # sensors heartbeat every minute in the demo, so silence shows within ~3 min
LIVE_TIMEOUT_S = 120.0
DEFAULT_GATEWAYS = 2  # two processes drained a backlog ~1.4x faster than one here (benchmarks.md)
DEMO_WEEK_S = 7 * 86_400
# Simulated drivers reserve a bay every 4 minutes (kept, cancelled or missed): a handful of holds
# at any time, visible as `reserved` in the lots and at /v1/operator/lots/{lot_id}/reservations.
DEMO_BOOKING_EVERY_S = 240


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="parking-demo",
        description="Start PostgreSQL and Mosquitto (embedded, data in PARKING_DATA_DIR, default ./var, "
        "unless PARKING_DATABASE_URL / PARKING_MQTT_URL name running ones), apply migrations, seed a "
        "simulated Zhengzhou-like city with tariffs, then run the gateway, the API and the simulated "
        "sensors until Ctrl-C.",
    )
    parser.add_argument("--city", type=Path, default=DEFAULT_CITY, help="city layout JSON")
    parser.add_argument("--http-port", type=int, help="API port (default PARKING_HTTP_PORT, 8080)")
    parser.add_argument(
        "--gateways",
        type=int,
        default=DEFAULT_GATEWAYS,
        help=f"gateway processes on the shared subscription, slots 1..N (default {DEFAULT_GATEWAYS}: "
        "faster than one on two cores, docs/benchmarks.md)",
    )
    parser.add_argument(
        "--rate-scale",
        type=float,
        default=20.0,
        help="multiplies arrival rates so that counts change visibly (default 20)",
    )
    parser.add_argument(
        "--faults", action="store_true", help="inject duplicates, reordering, garbage and clock skew"
    )
    parser.add_argument(
        "--until-live", action="store_true", help="exit 0 once the API shows live counts (used by the tests)"
    )
    return parser.parse_args(argv)


DISTRICT_FIELDS = ("kind", "outline_name", "public_spaces", "onboarded_on")  # where it sits in the city


async def _seed(base: str, token: str, city_doc: dict[str, Any], city: CityLayout) -> None:
    """Publish the example tariffs and the lots (names, places, tariffs) through the admin API."""
    headers = {"Authorization": f"Bearer {token}"}
    spots = {lot.lot_id: [{"spot_id": s.spot_id} for s in lot.spots] for lot in city.lots}
    async with aiohttp.ClientSession(headers=headers, raise_for_status=True) as http:
        for tariff_id, document in example_tariff_documents().items():
            await http.put(f"{base}/v1/admin/tariffs/{tariff_id}", json=document)
        for district in city_doc["districts"]:
            place = {key: district[key] for key in DISTRICT_FIELDS if key in district}
            await http.put(
                f"{base}/v1/admin/districts/{district['district_id']}",
                json={"name": district.get("name", district["district_id"]), **place},
            )
            for lot in district["lots"]:
                body = {key: lot[key] for key in ("name", "kind", "lat", "lon", "tariff_id") if key in lot}
                body |= {"district_id": district["district_id"], "spots": spots[lot["lot_id"]]}
                await http.put(f"{base}/v1/admin/lots/{lot['lot_id']}", json=body)


async def _wait_until_live(base: str, procs: Sequence[Process]) -> bool:
    """Return True once some lot has a known free or occupied count."""
    deadline = time.monotonic() + LIVE_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if any(p.popen.poll() is not None for p in procs):
                return False
            async with http.get(f"{base}/v1/lots") as resp:
                lots = (await resp.json())["items"]
            if any(lot["free"] + lot["occupied"] > 0 for lot in lots):
                return True
            await asyncio.sleep(0.5)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo until Ctrl-C (or, with --until-live, until live data shows)."""
    args = parse_args(argv)
    configure_logging("INFO")
    settings = Settings()
    port = _port(args.http_port or settings.http_port)
    city_doc = json.loads(args.city.read_text())
    city = load_city(args.city)
    token = settings.admin_token.get_secret_value() if settings.admin_token else secrets.token_urlsafe(24)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    rails = f"http://127.0.0.1:{free_port()}"  # the simulated payment rails (parking-pay-sim)
    harness = ServiceHarness(settings.database_url, settings.mqtt_url, base_dir=data_dir)
    print("starting PostgreSQL and Mosquitto …", flush=True)
    harness.start()
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        ensure_database(harness.admin_url, EMBEDDED_DATABASE)
        database_url = with_database(harness.admin_url, EMBEDDED_DATABASE)
        mode, applied = upgrade_database(database_url, settings.timescale.value)
        print(f"database ready ({mode.value} mode, {len(applied)} migration(s) applied)", flush=True)
        asyncio.run(provision_city(database_url, city, heartbeat_interval_s=DEMO_HEARTBEAT_S))
        env = environment(
            harness.settings(
                database_url,
                http_host=settings.http_host,
                http_port=port,
                admin_token=token,
                topic_prefix=settings.topic_prefix,
                payment_secret=settings.payment_secret or payment_secret(data_dir),  # kept in ./var
                payment_provider_url=rails,
            )
        )
        base = f"http://{settings.http_host}:{port}"
        logs = data_dir / "logs"
        with ExitStack() as running_now:  # leaving it stops them in reverse: simulator, gateway, API

            def start(name: str, argv: list[str], ready: Ready | None, **extra: str) -> Process:
                return running_now.enter_context(
                    running(name, argv, env=env | extra, log_path=logs / f"{name}.log", ready=ready)
                )

            procs = [start("api", python_module("guidance_api"), http_ok(f"{base}/v1/openapi.json"))]
            drivers = asyncio.run(_populate(base, token, city_doc, city, database_url))
            procs.append(start("payments", _rails(rails), log_line("payment rails")))
            for slot in range(1, max(1, args.gateways) + 1):  # one session each: slots 1..N
                gateway = python_module("device_gateway")
                ready = log_line("mqtt.subscribed")
                procs.append(start(f"gateway-{slot}", gateway, ready, PARKING_GATEWAY_SLOT=str(slot)))
            procs.append(start("simulator", _simulator(args), None))
            print(_banner(city, base, token, database_url, harness, data_dir, drivers, rails), flush=True)
            if args.until_live:
                return 0 if asyncio.run(_wait_until_live(base, procs)) else _failed(procs)
            while not stopping and all(p.popen.poll() is None for p in procs):
                time.sleep(0.5)
            if not stopping:
                return _failed(procs)
            print("stopping …", flush=True)
            return 0
    except ProcessFailedError as exc:
        print(f"parking-demo: {exc}", file=sys.stderr)
        return 1
    finally:
        harness.stop()


def _port(wanted: int) -> int:
    """Return *wanted* if it is free, else a free port."""
    return wanted if port_is_free(wanted) else free_port()


async def _populate(
    base: str, token: str, city_doc: dict[str, Any], city: CityLayout, database_url: str
) -> list[DemoDriver]:
    """Seed tariffs and lots, create the demo drivers, and give each a stay to pay; return them."""
    await _seed(base, token, city_doc, city)
    drivers = await create_drivers(base, token)
    await record_stays(database_url, drivers, datetime.now(UTC))
    return drivers


def _rails(rails: str) -> list[str]:
    """Return the command line of the simulated payment rails listening at *rails*."""
    return python_module("simulators.pay_sim", "--port", rails.rsplit(":", 1)[1])


def _simulator(args: argparse.Namespace) -> list[str]:
    """Return the simulator's command line: the city at real speed for a week, with reservations."""
    argv = python_module(
        "simulators",
        "--city",
        str(args.city),
        "--speed",
        "1",
        "--duration-s",
        str(DEMO_WEEK_S),
        "--rate-scale",
        str(args.rate_scale),
        "--heartbeat-s",
        str(DEMO_HEARTBEAT_S),
        "--reservations",
        str(DEMO_WEEK_S // DEMO_BOOKING_EVERY_S),
    )
    if args.faults:
        argv += ["--duplicate", "0.02", "--reorder", "0.02", "--garbage", "0.005", "--skew", "0.005"]
    return argv


def _failed(procs: Sequence[Process]) -> int:
    """Say which process stopped (with its log's last lines) and return the exit code 1."""
    for proc in procs:
        if proc.popen.poll() is not None:
            print(
                f"parking-demo: {proc.name} stopped (exit {proc.popen.returncode}); its log ends:",
                file=sys.stderr,
            )
            print(proc.tail(), file=sys.stderr)
    return 1


def _without_password(url: str) -> str:
    """Return a broker URL fit to print: the backend's password stays in its file, never on screen."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _banner(  # noqa: PLR0913, PLR0917 -- what the banner shows
    city: CityLayout,
    base: str,
    token: str,
    database_url: str,
    harness: ServiceHarness,
    data_dir: Path,
    drivers: list[DemoDriver],
    rails: str,
) -> str:
    return f"""
  City parking demo is running ({len(city.lots)} lots, {len(city.spots)} bay sensors, simulated).
    dashboard      {base}/dashboard/
    API            {base}/v1/lots   {base}/v1/vacancies?lat=34.7549&lon=113.6588&radius_m=3000
    holds          a driver books a bay every {DEMO_BOOKING_EVERY_S // 60} min: `reserved` in {base}/v1/lots
    OpenAPI        {base}/v1/openapi.json
    admin token    {token}
    database       {database_url}
    broker         {_without_password(str(harness.mqtt_url))}
    logs           {data_dir / "logs"}/api.log, gateway-1.log …, simulator.log, payments.log
    payments       signed with the secret in {data_dir / "payment-secret"} (or PARKING_PAYMENT_SECRET)
{drivers_banner(base, rails, drivers)}
  Ctrl-C stops everything; data stays in {data_dir} (make clean removes it).
"""


if __name__ == "__main__":
    raise SystemExit(main())
