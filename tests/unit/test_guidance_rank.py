"""Spreading guidance, pure: the chance of a space and the expected cost, by hand."""

from __future__ import annotations

import math

from parking_core.guidance_rank import FULL_PENALTY_M, Candidate, rank, space_probability


def phi(x: float) -> float:
    """Return the standard normal distribution function."""
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_each_driver_sent_takes_a_space_off_the_chance() -> None:
    """2 spaces expected, spread 1: Φ(1.5), Φ(0.5), Φ(-0.5) with 0, 1, 2 drivers on their way."""
    assert [space_probability(2, 1, pending) for pending in (0, 1, 2)] == [phi(1.5), phi(0.5), phi(-0.5)]
    assert space_probability(2, 0, 0) == phi(1.5)  # a spread below one space counts as one


def test_cost_weighs_distance_price_and_the_risk_of_a_full_lot() -> None:
    """A near lot nearly spoken for loses to a farther one with room; price counts as distance."""
    near = Candidate("near", 100, None, 2, 2, 2, pending=2)
    far = Candidate("far", 600, None, 20, 20, 20, pending=0)
    cheap_far = Candidate("cheap", 650, 0, 20, 20, 20, pending=0)
    dear_far = Candidate("dear", 600, 800, 20, 20, 20, pending=0)
    order = rank([near, far, dear_far, cheap_far])
    assert [r.candidate.lot_id for r in order] == ["far", "cheap", "near", "dear"]
    assert math.isclose(order[2].cost_m, 100 + (1 - phi(-0.5)) * FULL_PENALTY_M)
    assert math.isclose(order[3].cost_m, 600 + 800 + (1 - phi(19.5)) * FULL_PENALTY_M)


def test_a_wide_forecast_is_less_certain() -> None:
    """Same expectation, wider interval: a lower chance when the expectation is good."""
    narrow = Candidate("a", 0, None, 3, 2, 4, 0)
    wide = Candidate("b", 0, None, 3, 0, 10, 0)
    first, second = rank([wide, narrow])
    assert (first.candidate.lot_id, second.candidate.lot_id) == ("a", "b")
    assert first.space_probability > second.space_probability
