"""``parking-sim``: drive a simulated city of bay sensors over MQTT, optionally provisioning it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from parking_core.adapters.settings import Settings
from simulators.city import CityLayout, generate_city, load_city
from simulators.gates import GateTruth
from simulators.sensors import CitySimulator, Faults, GroundTruth


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line (broker, database and topic prefix come from PARKING_*)."""
    p = argparse.ArgumentParser(
        prog="parking-sim",
        description="Simulated bay sensors (arrivals by time of day, heartbeats, injected faults) "
        "and, with --gate-lots, barrier gates of closed lots through a day (plate reads answered by "
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
    return p.parse_args(argv)


def build_city(args: argparse.Namespace) -> CityLayout:
    """Return the layout named on the command line."""
    if args.city is not None:
        return load_city(args.city)
    return generate_city(args.districts, args.lots, args.spots, prefix=args.id_prefix)


def truth_json(truth: GroundTruth, gates: GateTruth | None = None) -> str:
    """Return the ground truth as JSON for other tools."""
    return json.dumps(
        {
            "gates": gates.to_json() if gates is not None else None,
            "occupied": truth.occupied(),
            "silent_devices": sorted(truth.silent),
            "readings": len(truth.readings),
            "published": truth.published,
            "expected_rejections": dict(truth.rejected),
        },
        indent=2,
        sort_keys=True,
    )


async def _run(args: argparse.Namespace, settings: Settings) -> GroundTruth:
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
        sent = await run_simulation(
            sim, client, virtual_s=args.duration_s, step_s=args.step_s, speed=args.speed or None
        )
    print(f"published {sent} messages for {len(city.spots)} spots in {len(city.lots)} lots", file=sys.stderr)
    return sim.truth


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
    truth = asyncio.run(_run(args, settings))
    gates = asyncio.run(_run_gates(args, settings)) if args.gate_lots > 0 else None
    if args.truth is not None:
        args.truth.write_text(truth_json(truth, gates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
