"""Simulated reservations: the plan's mix and pacing, and a reserving driver's car arriving on its bay."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from simulators.__main__ import parse_args
from simulators.city import generate_city
from simulators.reservations import PLATE_POOL, Plan, plan_bookings
from simulators.sensors import CitySimulator

P = "parking/v1"
START = datetime(2026, 11, 23, 6, tzinfo=UTC)
CITY = generate_city(1, 2, 5)


def test_bookings_are_spread_over_the_run_with_kept_cancelled_and_missed() -> None:
    """Seeded, in order over the run, within the lots' policy (a window of at most 2 h), a mix of plans."""
    bookings = plan_bookings(CITY, 200, 3600.0, seed=4, lead_s=600.0)
    assert bookings == plan_bookings(CITY, 200, 3600.0, seed=4, lead_s=600.0)
    assert [b.after_s for b in bookings] == sorted(b.after_s for b in bookings)
    assert bookings[0].after_s >= 0
    assert bookings[-1].after_s < 3600
    plans = Counter(b.plan for b in bookings)
    assert set(plans) == set(Plan)
    assert plans[Plan.KEEP] > plans[Plan.CANCEL]
    assert all(timedelta(seconds=120) <= b.lead <= timedelta(seconds=600) for b in bookings)
    assert all(b.window == timedelta(seconds=1200) for b in bookings)
    assert all(b.act_after < b.lead for b in bookings if b.plan is Plan.CANCEL)  # before the window
    assert all(b.act_after < b.window for b in bookings if b.plan is Plan.KEEP)  # inside it
    assert {b.lot_id for b in bookings} == {lot.lot_id for lot in CITY.lots}
    assert len({b.plate for b in bookings}) == PLATE_POOL


def test_a_reserving_drivers_car_parks_on_its_bay_and_leaves_after_its_dwell() -> None:
    """The held bay's sensor reports occupied at the arrival; the change it had planned is void; the
    car leaves after its dwell, and the sensor goes on as before."""
    sim = CitySimulator(CITY, P, START, seed=1, heartbeat_interval_s=86_400)
    sim.advance(60)
    spot = CITY.lots[0].spots[0]
    (published,) = sim.arrive(spot.spot_id, START + timedelta(minutes=5), timedelta(minutes=30))
    body = json.loads(published.payload)
    assert published.topic == f"{P}/sensors/{spot.device_id}/state"
    assert (body["occupied"], datetime.fromisoformat(body["ts"])) == (True, START + timedelta(minutes=5))
    states: list[tuple[datetime, bool]] = []
    for _ in range(40):
        for pub in sim.advance(60):
            if pub.topic == published.topic:
                message = json.loads(pub.payload)
                states.append((datetime.fromisoformat(message["ts"]), message["occupied"]))
    assert states[0] == (START + timedelta(minutes=35), False)  # nothing in between: it stayed
    assert sim.truth.occupied()[spot.spot_id] is (states[-1][1])


def test_reservations_need_the_real_clock() -> None:
    """The API judges holds by its own clock: a simulation ahead of it or in the past is refused."""
    assert parse_args(["--reservations", "5"]).reservations == 5
    with pytest.raises(SystemExit):
        parse_args(["--reservations", "5", "--speed", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--reservations", "5", "--start-hours-ago", "2"])
    with pytest.raises(SystemExit):
        parse_args(["--reservation-lead-s", "7200"])
