"""``python -m bench.forecast_bench``: free spaces at arrival, forecast vs "free now", on simulated weeks.

Simulates lots over several weeks with the simulator's arrival profile and dwell times (plus
weekday factors and day-to-day swings of demand, which a real city has and the per-message
simulator does not), trains the one free parameter of parking_core.forecast (how fast today's
difference from past weeks fades) on one week, and reports the mean absolute error on the held-out
last week against the naive answer "as many as are free now". Arithmetic only: seconds.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from bench.summary import Figure, load_average, record
from parking_core.forecast import REFERENCE_WEEKS, REFERENCE_WINDOW, SHIFT_FADE, Reference, forecast_free
from simulators.sensors import HOURLY_PROFILE, MEAN_DWELL_S

STEP_MIN = 5  # the simulation's resolution, like the 5-minute occupancy view
STEPS_PER_DAY = 24 * 60 // STEP_MIN
WEEKDAY_DEMAND = (1.0, 1.0, 1.0, 1.05, 1.15, 0.8, 0.6)  # Mon..Sun: Friday busiest, Sunday quiet
DAY_SWING = 0.25  # log-normal spread of one lot's demand from day to day (weather, events, holidays)
HORIZONS_MIN = (15, 30, 60, 120)
FADES_H = (0.5, 1.0, 2.0, 3.0, 6.0, 12.0, 1e9)  # candidates for SHIFT_FADE; 1e9 h means "never fades"


@dataclass
class SimLot:
    """One simulated lot: its capacity and its free count at every step."""

    capacity: int
    free: list[int]


def poisson(rng: random.Random, mean: float) -> int:
    """Draw a Poisson count (Knuth; means here are small)."""
    if mean > 30:  # normal approximation keeps big lots fast
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def simulate(lots: int, weeks: int, seed: int) -> list[SimLot]:
    """Return *lots* lots simulated over *weeks* weeks, starting on a Monday at midnight."""
    rng = random.Random(seed)  # noqa: S311 -- a reproducible simulation, not cryptography
    leave_p = 1 - math.exp(-STEP_MIN * 60 / MEAN_DWELL_S)
    out = []
    for _ in range(lots):
        capacity = rng.choice((8, 12, 20, 40, 80, 150))
        popularity = rng.uniform(0.5, 1.6)
        occupied, free = capacity // 2, []
        for day in range(weeks * 7):
            demand = popularity * WEEKDAY_DEMAND[day % 7] * rng.lognormvariate(0, DAY_SWING)
            for step in range(STEPS_PER_DAY):
                rate = HOURLY_PROFILE[step * STEP_MIN // 60] * demand * STEP_MIN / 60
                arrivals = min(poisson(rng, (capacity - occupied) * rate), capacity - occupied)
                leaving = (
                    sum(rng.random() < leave_p for _ in range(occupied))
                    if occupied < 30
                    else poisson(rng, occupied * leave_p)
                )
                occupied = min(max(occupied + arrivals - leaving, 0), capacity)
                free.append(capacity - occupied)
        out.append(SimLot(capacity, free))
    return out


@dataclass
class Score:
    """Absolute errors of the forecast and of the naive answer, and interval hits."""

    forecast: list[float]
    naive: list[float]
    covered: int = 0

    def add(self, other: Score) -> None:
        """Add *other*'s errors to these."""
        self.forecast += other.forecast
        self.naive += other.naive
        self.covered += other.covered


def window_mean(free: list[int], step: int) -> float:
    """Return the mean free count of the REFERENCE_WINDOW around *step* (as the API averages it)."""
    half = REFERENCE_WINDOW // 2 // timedelta(minutes=STEP_MIN)
    values = free[step - half : step + half]
    return statistics.fmean(values)


def evaluate(lots: Sequence[SimLot], days: range, horizon_min: int, fade: timedelta) -> Score:
    """Forecast every lot every 30 minutes from 06:00 to 22:00 of *days*, *horizon_min* ahead."""
    score = Score([], [])
    ahead = horizon_min // STEP_MIN
    week = 7 * STEPS_PER_DAY
    for lot in lots:
        for day in days:
            for step in range(day * STEPS_PER_DAY + 72, day * STEPS_PER_DAY + 264, 6):
                arrive = step + ahead
                refs = [
                    Reference(
                        window_mean(lot.free, arrive - k * week), window_mean(lot.free, step - k * week)
                    )
                    for k in range(1, REFERENCE_WEEKS + 1)
                ]
                got = forecast_free(
                    lot.free[step], lot.capacity, refs, timedelta(minutes=horizon_min), fade=fade
                )
                assert got is not None
                truth = lot.free[arrive]
                score.forecast.append(abs(got.expected_free - truth))
                score.naive.append(abs(lot.free[step] - truth))
                score.covered += got.low <= truth <= got.high
    return score


def main(argv: Sequence[str] | None = None) -> int:
    """Train on one simulated week, report MAE on the held-out week; exit 1 if naive is not beaten."""
    parser = argparse.ArgumentParser(prog="python -m bench.forecast_bench", description=__doc__)
    parser.add_argument("--lots", type=int, default=40, help="simulated lots (default 40)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    weeks = REFERENCE_WEEKS + 2  # history for the training week, the training week, the held-out week
    started = time.perf_counter()
    lots = simulate(args.lots, weeks, args.seed)
    train = range((weeks - 2) * 7, (weeks - 1) * 7)
    test = range((weeks - 1) * 7, weeks * 7 - 1)  # the last day lacks 2 h of future for the horizons
    print(f"{args.lots} lots, {weeks} simulated weeks in {STEP_MIN}-minute steps, seed {args.seed};")
    print(
        f"reference weeks {REFERENCE_WEEKS}; forecasts every 30 min 06:00-22:00; horizons {HORIZONS_MIN} min"
    )
    trained = {}
    for fade_h in FADES_H:
        total = Score([], [])
        for horizon in HORIZONS_MIN:
            total.add(evaluate(lots, train, horizon, timedelta(hours=fade_h)))
        trained[fade_h] = statistics.fmean(total.forecast)
    best = min(trained, key=lambda f: trained[f])
    print("training week, MAE by shift fade (h):", ", ".join(f"{f:g}: {m:.2f}" for f, m in trained.items()))
    print(f"chosen fade {best:g} h (parking_core.forecast.SHIFT_FADE = {SHIFT_FADE})")
    print(f"{'horizon':>8} {'forecast MAE':>13} {'naive MAE':>10} {'80% interval covers':>20}")
    beaten = True
    overall = Score([], [])
    for horizon in HORIZONS_MIN:
        score = evaluate(lots, test, horizon, timedelta(hours=best))
        overall.add(score)
        mae, naive = statistics.fmean(score.forecast), statistics.fmean(score.naive)
        beaten &= mae < naive
        print(f"{horizon:>6} m {mae:>13.2f} {naive:>10.2f} {score.covered / len(score.forecast):>19.0%}")
    mae, naive = statistics.fmean(overall.forecast), statistics.fmean(overall.naive)
    print(f"{'all':>8} {mae:>13.2f} {naive:>10.2f} {overall.covered / len(overall.forecast):>19.0%}")
    print(
        f"held-out week: forecast MAE {mae:.2f} vs naive {naive:.2f} free spaces"
        f" ({time.perf_counter() - started:.1f} s)"
    )
    record(
        Figure(
            "forecast MAE at arrival, held-out week",
            mae,
            "spaces",
            "< naive at every horizon",
            beaten,
            "naive: free now",
            naive,
            load_average(),
        )
    )
    if not beaten:
        print("the forecast does NOT beat the naive answer at every horizon", file=sys.stderr)
    return 0 if beaten else 1


if __name__ == "__main__":
    raise SystemExit(main())
