"""The gate path's step laps: each charges the time since the previous one; unwatched ones cost nothing."""

from __future__ import annotations

import math

from device_gateway.gate_steps import UNWATCHED, Steps


def test_laps_add_up_to_the_whole_and_keep_their_order() -> None:
    steps = Steps()
    for name in ("queue", "decode", "lock", "read", "lock"):  # a retry laps a step again
        steps.lap(name)
    assert list(steps.laps) == ["queue", "decode", "lock", "read"]
    assert all(seconds >= 0 for seconds in steps.laps.values())
    assert math.isclose(sum(steps.laps.values()), steps.seconds(), rel_tol=1e-9, abs_tol=1e-12)
    assert list(steps.millis()) == list(steps.laps)


def test_the_first_lap_runs_from_the_start_given() -> None:
    steps = Steps(began=0.0)  # e.g. when paho's thread queued the message
    steps.lap("queue")
    assert steps.laps["queue"] == steps.seconds() > 0


def test_unwatched_laps_record_nothing() -> None:
    UNWATCHED.lap("lock")
    assert UNWATCHED.laps == {}
    assert UNWATCHED.seconds() == 0
