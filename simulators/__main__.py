"""``parking-sim``: drive a simulated city of bay sensors over MQTT, optionally provisioning it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from parking_core.adapters.settings import Settings
from simulators.city import CityLayout, generate_city, load_city
from simulators.gates import GateTruth
from simulators.reservations import ReservationDrivers, plan_bookings
from simulators.reservations import log as log_reservations
from simulators.sensors import CitySimulator, Faults, GroundTruth, Publication

if TYPE_CHECKING:
    import aiomqtt

    from simulators.reservations import ReservationTruth


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line (broker, database and topic prefix come from PARKING_*)."""
    p = argparse.ArgumentParser(
        prog="parking-sim",
        description="Simulated bay sensors (arrivals by time of day, heartbeats, injected faults), "
        "with --reservations drivers who reserve bays over the API (kept, cancelled, no-shows) and, "
        "with --gate-lots, barrier gates of closed lots through a day (plate reads answered by "
        "the gateway's commands), published to PARKING_MQTT_URL under PARKING_TOPIC_PREFIX. Writes "
        "the ground truth (final state per spot, silent devices, expected refusals, gate visits) as "
        "JSON on request.",
    )
    city = p.add_argument_group("city")
    city.add_argument("--city", type=Path, help="layout JSON (see simulators/city.py)")
    city.add_argument("--districts", type=int, default=2)
    city.add_argument("--lots", type=int, default=3, help="lots per district")
    city.add_argument("--spots", type=int, default=50, help="spots per lot")
    city.add_argument("--id-prefix", default="sim-", help="prefix of generated ids")
    city.add_argument(
        "--provision", action="store_true", help="write the city into PARKING_DATABASE_URL first"
    )
    run = p.add_argument_group("run")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--duration-s", type=float, default=3600.0, help="virtual seconds to simulate")
    run.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="virtual seconds per real second; 0 = as fast as the broker takes it",
    )
    run.add_argument("--step-s", type=float, default=1.0, help="virtual seconds per step")
    run.add_argument(
        "--start-hours-ago",
        type=float,
        default=0.0,
        help="start the virtual clock this far in the past (fast runs stay in the past)",
    )
    run.add_argument("--heartbeat-s", type=float, default=600.0)
    run.add_argument("--rate-scale", type=float, default=1.0, help="multiplies arrival rates")
    run.add_argument("--truth", type=Path, help="write the ground truth JSON here at the end")
    faults = p.add_argument_group("faults (rates per message)")
    faults.add_argument("--duplicate", type=float, default=0.0)
    faults.add_argument("--reorder", type=float, default=0.0)
    faults.add_argument("--garbage", type=float, default=0.0)
    faults.add_argument("--skew", type=float, default=0.0)
    faults.add_argument("--silent", type=int, default=0, help="number of sensors that go quiet")
    gates = p.add_argument_group("gates (closed lots counted at their barriers; docs/gates.md)")
    gates.add_argument("--gate-lots", type=int, default=0, help="closed lots with an entry and an exit gate")
    gates.add_argument("--gate-capacity", type=int, default=50)
    gates.add_argument("--gate-cars", type=int, default=200, help="visits over the simulated day")
    gates.add_argument(
        "--gate-faults",
        type=float,
        default=0.1,
        help="rate of each fault: unsure entry read, misread exit, duplicated read, no passage, tailgater",
    )
    gates.add_argument("--gate-tariff", default=None, help="tariff_id of the gated lots (none: free)")
    holds = p.add_argument_group(
        "reservations (docs/reservations.md)",
        "Drivers book bays over the API (PARKING_PUBLIC_URL, else PARKING_HTTP_HOST:PORT) with driver "
        "tokens that PARKING_ADMIN_TOKEN issues. Real time only (--speed 1): the API judges holds by "
        "its own clock.",
    )
    holds.add_argument(
        "--reservations",
        type=int,
        default=0,
        help="bookings over the run: 60 %% kept (the held bay's sensor sees the car), 20 %% cancelled, "
        "20 %% never come (the API releases and charges them)",
    )
    holds.add_argument(
        "--reservation-lead-s",
        type=float,
        default=900.0,
        help="drivers book 20-100 %% of this ahead, for a window twice as long (at most 3600)",
    )
    args = p.parse_args(argv)
    if args.reservations and (args.speed != 1.0 or args.start_hours_ago):
        p.error("--reservations runs on the API's real clock: use --speed 1 and no --start-hours-ago")
    if not 0 < args.reservation_lead_s <= 3600:
        p.error("--reservation-lead-s must be in (0, 3600]")
    return args


def build_city(args: argparse.Namespace) -> CityLayout:
    """Return the layout named on the command line."""
    if args.city is not None:
        return load_city(args.city)
    return generate_city(args.districts, args.lots, args.spots, prefix=args.id_prefix)


def truth_json(
    truth: GroundTruth, gates: GateTruth | None = None, reservations: ReservationTruth | None = None
) -> str:
    """Return the ground truth as JSON for other tools."""
    return json.dumps(
        {
            "gates": gates.to_json() if gates is not None else None,
            "reservations": reservations.to_json() if reservations is not None else None,
            "occupied": truth.occupied(),
            "silent_devices": sorted(truth.silent),
            "readings": len(truth.readings),
            "published": truth.published,
            "expected_rejections": dict(truth.rejected),
        },
        indent=2,
        sort_keys=True,
    )


async def _run(args: argparse.Namespace, settings: Settings) -> tuple[GroundTruth, ReservationTruth | None]:
    from simulators.provision import provision_city
    from simulators.publisher import mqtt_client, run_simulation

    city = build_city(args)
    if args.provision:
        if settings.database_url is None:
            raise SystemExit("--provision needs PARKING_DATABASE_URL")
        await provision_city(settings.database_url, city, heartbeat_interval_s=int(args.heartbeat_s))
    start = datetime.now(UTC) - timedelta(hours=args.start_hours_ago)
    faults = Faults(args.duplicate, args.reorder, args.garbage, args.skew, args.silent)
    sim = CitySimulator(
        city,
        settings.topic_prefix,
        start,
        seed=args.seed,
        faults=faults,
        heartbeat_interval_s=args.heartbeat_s,
        rate_scale=args.rate_scale,
    )
    async with mqtt_client(settings.mqtt_endpoint()) as client:
        drivers = _reservation_drivers(args, settings, sim, client)
        bookings = plan_bookings(city, args.reservations, args.duration_s, args.seed, args.reservation_lead_s)
        booking = asyncio.create_task(drivers.run(bookings)) if drivers and bookings else None
        try:
            sent = await run_simulation(
                sim, client, virtual_s=args.duration_s, step_s=args.step_s, speed=args.speed or None
            )
        finally:
            if booking is not None:  # holds not yet played out are left to the API (no-shows)
                booking.cancel()
                await asyncio.gather(booking, return_exceptions=True)
    print(f"published {sent} messages for {len(city.spots)} spots in {len(city.lots)} lots", file=sys.stderr)
    if drivers is None:
        return sim.truth, None
    log_reservations(drivers.truth)
    return sim.truth, drivers.truth


def _reservation_drivers(
    args: argparse.Namespace, settings: Settings, sim: CitySimulator, client: aiomqtt.Client
) -> ReservationDrivers | None:
    """Return the simulated drivers who reserve bays, if asked for."""
    from simulators.publisher import publish_all

    if not args.reservations:
        return None
    if settings.admin_token is None:
        raise SystemExit("--reservations needs PARKING_ADMIN_TOKEN (it issues the drivers' token)")

    async def publish(publications: Sequence[Publication]) -> None:
        await publish_all(client, publications)

    admin = settings.admin_token.get_secret_value()
    return ReservationDrivers(settings.api_base_url(), admin, sim, publish)


async def _run_gates(args: argparse.Namespace, settings: Settings) -> GateTruth:
    from simulators.gates import GateSimulator, plan_day
    from simulators.provision import provision_gate_lots
    from simulators.publisher import mqtt_client

    lots = [
        (f"{args.id_prefix}gate{i}", f"{args.id_prefix}gate{i}-in", f"{args.id_prefix}gate{i}-out")
        for i in range(args.gate_lots)
    ]
    if args.provision:
        if settings.database_url is None:
            raise SystemExit("--provision needs PARKING_DATABASE_URL")
        district = f"{args.id_prefix}gates"
        await provision_gate_lots(settings.database_url, lots, args.gate_capacity, district, args.gate_tariff)
    start = datetime.now(UTC) - timedelta(hours=max(args.start_hours_ago, 24.0))
    visits = plan_day(len(lots), args.gate_cars, start, args.seed, args.gate_faults)
    async with mqtt_client(settings.mqtt_endpoint()) as client:
        truth = await GateSimulator(settings.topic_prefix, lots).run(client, visits)
    print(f"gates: {json.dumps(truth.to_json())}", file=sys.stderr)
    return truth


def main(argv: list[str] | None = None) -> int:
    """Run the simulation; print a summary and write the truth if asked."""
    args = parse_args(argv)
    settings = Settings()
    if settings.mqtt_url is None:
        print("parking-sim: set PARKING_MQTT_URL", file=sys.stderr)
        return 2
    truth, reservations = asyncio.run(_run(args, settings))
    gates = asyncio.run(_run_gates(args, settings)) if args.gate_lots > 0 else None
    if args.truth is not None:
        args.truth.write_text(truth_json(truth, gates, reservations))
    return 0


if __name__ == "__main__":
    sys.exit(main())
