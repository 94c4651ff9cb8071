"""``python -m bench.spread_bench``: guided drivers arriving at a full lot, spreading vs nearest-first.

A busy evening around one destination: lots at different distances and prices, filled to about 90 %
by drivers who are not guided (arrivals and departures go on all the time), and a stream of guided
drivers who ask for a lot 2-5 km away and drive there at city speed. Nearest-first sends each to the
nearest lot with a free space now (what `GET /v1/vacancies` ranks by); spreading ranks with
parking_core.guidance_rank, counting the drivers already sent to each lot. Both policies see the
same background and the same drivers (common random numbers). Arithmetic only: seconds.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.forecast_bench import poisson
from bench.summary import Figure, load_average, record
from parking_core.guidance_rank import Candidate, rank

SPEED_M_PER_MIN = 25_000 / 60  # 25 km/h: driving across a Chinese city centre in the evening
MEAN_DWELL_MIN = 60.0
BACKGROUND_OCCUPANCY = 0.9  # what the lots settle at without guided drivers
MINUTES = 120  # the evening peak
WARM_UP = 60  # minutes of background only before the first guided driver


@dataclass
class Lot:
    """A simulated lot around the destination."""

    lot_id: str
    distance_m: float
    price_fen: int
    capacity: int
    occupied: int
    pending: int = 0  # guided drivers on their way here

    @property
    def free(self) -> int:
        """Return the free spaces now."""
        return self.capacity - self.occupied


@dataclass
class Outcome:
    """What happened to the guided drivers under one policy."""

    arrivals: int = 0
    full: int = 0
    distances: list[float] = field(default_factory=list)
    prices: list[int] = field(default_factory=list)


Policy = Callable[[list[Lot]], Lot]


def nearest_first(lots: list[Lot]) -> Lot:
    """The nearest lot with a free space now (the nearest of all when none has)."""
    with_room = [lot for lot in lots if lot.free > 0] or lots
    return min(with_room, key=lambda lot: (lot.distance_m, lot.lot_id))


def spreading(lots: list[Lot]) -> Lot:
    """The cheapest lot by expected cost, counting the drivers already sent there."""
    candidates = [
        Candidate(lot.lot_id, lot.distance_m, lot.price_fen, float(lot.free), lot.free, lot.free, lot.pending)
        for lot in lots
    ]
    best = rank(candidates)[0].candidate.lot_id
    return next(lot for lot in lots if lot.lot_id == best)


def make_lots(count: int, rng: random.Random) -> list[Lot]:
    """Return lots 100 m to 1.5 km from the destination, priced ¥0-8 for the first hour."""
    lots = []
    for n in range(count):
        capacity = rng.choice((15, 20, 30, 50, 80))
        lots.append(
            Lot(f"L{n:02}", rng.uniform(100, 1500), rng.choice((0, 200, 400, 500, 800)), capacity, capacity)
        )
    return lots


def background(lots: list[Lot], rng: random.Random) -> None:
    """One minute of drivers who are not guided: departures, then arrivals into free spaces."""
    leave_p = 1 - math.exp(-1 / MEAN_DWELL_MIN)
    arrive_p = 1 - math.exp(-BACKGROUND_OCCUPANCY / (1 - BACKGROUND_OCCUPANCY) / MEAN_DWELL_MIN)
    for lot in lots:
        lot.occupied -= sum(rng.random() < leave_p for _ in range(lot.occupied))
        lot.occupied += sum(rng.random() < arrive_p for _ in range(lot.free))


def run(policy: Policy, seed: int, lots_count: int, drivers_per_min: float) -> Outcome:
    """Simulate the evening under *policy*; the same seed gives the same world to every policy."""
    world, demand = random.Random(seed), random.Random(seed + 1)  # noqa: S311 -- simulation
    lots = make_lots(lots_count, world)
    on_the_way: dict[int, list[Lot]] = {}
    outcome = Outcome()
    for minute in range(WARM_UP + MINUTES + 20):
        background(lots, world)
        for lot in on_the_way.pop(minute, []):
            lot.pending -= 1
            outcome.arrivals += 1
            if lot.free > 0:
                lot.occupied += 1
            else:
                outcome.full += 1
        if WARM_UP <= minute < WARM_UP + MINUTES:
            for _ in range(poisson(demand, drivers_per_min)):
                start_m = demand.uniform(2000, 5000)
                lot = policy(lots)
                lot.pending += 1
                outcome.distances.append(lot.distance_m)
                outcome.prices.append(lot.price_fen)
                due = minute + max(1, round((start_m + lot.distance_m) / SPEED_M_PER_MIN))
                on_the_way.setdefault(due, []).append(lot)
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    """Print the share of guided drivers arriving at a full lot under both policies."""
    parser = argparse.ArgumentParser(prog="python -m bench.spread_bench", description=__doc__)
    parser.add_argument("--lots", type=int, default=10, help="lots around the destination (default 10)")
    parser.add_argument(
        "--drivers-per-min", type=float, default=2.0, help="guided drivers a minute (default 2)"
    )
    parser.add_argument("--runs", type=int, default=20, help="evenings with different seeds (default 20)")
    args = parser.parse_args(argv)
    print(
        f"{args.runs} evenings of {MINUTES} min, {args.lots} lots at 100-1500 m, background ~"
        f"{BACKGROUND_OCCUPANCY:.0%} full, {args.drivers_per_min:g} guided drivers/min from 2-5 km at 25 km/h"
    )
    results = {}
    for name, policy in (("nearest-first", nearest_first), ("spreading", spreading)):
        outcomes = [run(policy, seed, args.lots, args.drivers_per_min) for seed in range(args.runs)]
        arrivals = sum(o.arrivals for o in outcomes)
        full = sum(o.full for o in outcomes)
        results[name] = full / arrivals
        distance = statistics.fmean(d for o in outcomes for d in o.distances)
        price = statistics.fmean(p for o in outcomes for p in o.prices) / 100
        print(
            f"{name:>14}: {full:>5} of {arrivals:>5} guided drivers arrived at a full lot"
            f" ({full / arrivals:.1%});"
            f" mean lot distance {distance:.0f} m, mean first hour ¥{price:.2f}"
        )
    better = results["spreading"] < results["nearest-first"]
    record(
        Figure(
            "guided drivers arriving at a full lot",
            results["spreading"] * 100,
            "%",
            "< nearest-first",
            better,
            "nearest-first",
            results["nearest-first"] * 100,
            load_average(),
        )
    )
    if not better:
        print("spreading does NOT send fewer drivers to full lots", file=sys.stderr)
    return 0 if better else 1


if __name__ == "__main__":
    raise SystemExit(main())
