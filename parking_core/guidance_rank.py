"""Guidance that spreads drivers: lots ranked by distance, price and the chance of a space at arrival.

Nearest-first guidance sends every driver of a busy street to the same lot, which fills while they
are on their way. Here each candidate's free spaces expected at arrival are reduced by the drivers
recently sent there and still on their way, turned into the probability that at least one space is
left, and the lots are ranked by an expected cost in metres: the distance to the destination, the
price of the first hour converted to metres, and a penalty for arriving at a full lot weighted by the
chance of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

# One yuan is worth 100 m of walking to the driver (a first hour of ¥5 against a free lot 500 m
# further on is a toss-up): the usual order of magnitude of parking-choice studies' value of walking.
METRES_PER_FEN = 1.0
FULL_PENALTY_M = 1500.0  # arriving at a full lot: a new search, typically a kilometre and more
MIN_SPREAD = 1.0  # spaces: even a certain forecast may be off by a car
INTERVAL_Z = 1.2816  # the forecasts' 80 % intervals are ±1.28 standard deviations


@dataclass(frozen=True, slots=True)
class Candidate:
    """A lot a driver could be sent to, as seen at the moment of the request."""

    lot_id: str
    distance_m: float  # from the driver's destination
    price_first_hour_fen: int | None
    expected_free: float  # at the driver's arrival (a forecast, or the count now)
    low: int  # the forecast's 80 % interval
    high: int
    pending: int  # drivers sent there recently and still on their way


@dataclass(frozen=True, slots=True)
class Ranked:
    """A candidate with the chance of a space at arrival and its expected cost."""

    candidate: Candidate
    space_probability: float
    cost_m: float


def space_probability(expected_free: float, spread: float, pending: int) -> float:
    """Return the probability that at least one space is left when the driver arrives.

    Free spaces at arrival are taken as normal around the forecast less the drivers already sent
    there (each takes a space), with the forecast's spread; "at least one" is "more than half".
    """
    mean = expected_free - pending
    sigma = max(spread, MIN_SPREAD)
    return 0.5 * (1 + math.erf((mean - 0.5) / (sigma * math.sqrt(2))))


def expected_cost_m(candidate: Candidate) -> tuple[float, float]:
    """Return (probability of a space, expected cost in metres) of sending a driver to *candidate*."""
    spread = (candidate.high - candidate.low) / (2 * INTERVAL_Z)
    probability = space_probability(candidate.expected_free, spread, candidate.pending)
    price_m = (candidate.price_first_hour_fen or 0) * METRES_PER_FEN
    return probability, candidate.distance_m + price_m + (1 - probability) * FULL_PENALTY_M


def rank(candidates: Iterable[Candidate]) -> list[Ranked]:
    """Return the candidates cheapest first (ties: nearer first, then by lot id)."""
    ranked = []
    for candidate in candidates:
        probability, cost = expected_cost_m(candidate)
        ranked.append(Ranked(candidate, probability, cost))
    return sorted(ranked, key=lambda r: (r.cost_m, r.candidate.distance_m, r.candidate.lot_id))
