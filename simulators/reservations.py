"""Simulated drivers who reserve bays over the API: kept (the bay's sensor sees them arrive), cancelled,
or not shown up for (the API's sweep releases them), on the real clock the API judges them by.
"""

from __future__ import annotations

import asyncio
import random
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import aiohttp

from simulators.city import CityLayout
from simulators.sensors import CitySimulator, Publication

PLATE_PREFIX = "豫S"  # simulated drivers' plates: 豫S00000 …
PLATE_POOL = 100  # distinct drivers; a plate books again only long after its last hold ended
PLATES_PER_TOKEN = 20  # what one driver token may be bound to (POST /v1/admin/tokens)


class Plan(StrEnum):
    """What the driver who reserved will do."""

    KEEP = "keep"  # arrives in the window: the held bay's sensor turns occupied
    CANCEL = "cancel"  # cancels before the window
    NO_SHOW = "no_show"  # never comes: the API releases the hold after its deadline


PLAN_WEIGHTS = {Plan.KEEP: 0.6, Plan.CANCEL: 0.2, Plan.NO_SHOW: 0.2}


@dataclass(frozen=True, slots=True)
class Booking:
    """One driver's reservation request and what they will do with it (times after the run starts)."""

    after_s: float  # when the driver books
    lot_id: str
    plate: str
    lead: timedelta  # arrival_from = booking time + lead
    window: timedelta
    plan: Plan
    act_after: timedelta  # keep: after arrival_from; cancel: after booking (before arrival_from)
    dwell: timedelta  # keep: how long the car stays


@dataclass
class ReservationTruth:
    """What the simulated drivers did (hold outcomes are the API's to judge)."""

    booked: Counter[str] = field(default_factory=Counter)  # by plan
    refused: Counter[int] = field(default_factory=Counter)  # by HTTP status
    arrived: int = 0
    cancelled: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return the truth as JSON."""
        return {
            "booked": dict(self.booked),
            "refused": {str(k): v for k, v in self.refused.items()},
            "arrived": self.arrived,
            "cancelled": self.cancelled,
        }


def plan_bookings(
    city: CityLayout, count: int, duration_s: float, seed: int, lead_s: float = 900.0
) -> list[Booking]:
    """Return *count* bookings spread over *duration_s* at random lots of bay sensors: each driver
    books 20-100 % of *lead_s* ahead for a window of twice *lead_s*.
    """
    rng = random.Random(seed)
    lots = [lot.lot_id for lot in city.lots if lot.spots]
    bookings = []
    for n in range(count if lots else 0):
        lead = timedelta(seconds=lead_s * rng.uniform(0.2, 1.0))
        window = timedelta(seconds=max(60.0, 2 * lead_s))
        plan = rng.choices(list(PLAN_WEIGHTS), weights=list(PLAN_WEIGHTS.values()))[0]
        act = lead * rng.uniform(0.2, 0.8) if plan is Plan.CANCEL else window * rng.uniform(0.1, 0.9)
        bookings.append(
            Booking(
                after_s=duration_s * (n + rng.random()) / max(count, 1),
                lot_id=rng.choice(lots),
                plate=f"{PLATE_PREFIX}{n % PLATE_POOL:05d}",
                lead=lead,
                window=window,
                plan=plan,
                act_after=act,
                dwell=timedelta(minutes=rng.uniform(20, 90)),
            )
        )
    return bookings


Publish = Callable[[Sequence[Publication]], Awaitable[None]]


@dataclass
class ReservationDrivers:
    """Books, cancels and arrives over the API and the bay sensors, in real time."""

    base_url: str
    admin_token: str
    sim: CitySimulator
    publish: Publish
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    truth: ReservationTruth = field(default_factory=ReservationTruth)

    async def run(self, bookings: Sequence[Booking]) -> ReservationTruth:
        """Play every booking; return when the last one's plan is done."""
        started = asyncio.get_running_loop().time()
        plates = sorted({b.plate for b in bookings})
        async with aiohttp.ClientSession(raise_for_status=False) as http:
            tokens: dict[str, dict[str, str]] = {}
            for first in range(0, len(plates), PLATES_PER_TOKEN):
                chunk = plates[first : first + PLATES_PER_TOKEN]
                headers = await self._driver_token(http, chunk)
                tokens |= dict.fromkeys(chunk, headers)
            async with asyncio.TaskGroup() as tasks:
                for booking in bookings:
                    delay = booking.after_s - (asyncio.get_running_loop().time() - started)
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.create_task(self._play(http, tokens[booking.plate], booking))
        return self.truth

    async def _driver_token(self, http: aiohttp.ClientSession, plates: list[str]) -> dict[str, str]:
        """Ask the admin API for a driver token bound to the simulated plates."""
        async with http.post(
            f"{self.base_url}/v1/admin/tokens",
            json={"role": "driver", "plates": plates, "label": "parking-sim reservations"},
            headers={"Authorization": f"Bearer {self.admin_token}"},
        ) as resp:
            resp.raise_for_status()
            return {"Authorization": f"Bearer {(await resp.json())['token']}"}

    async def _play(self, http: aiohttp.ClientSession, driver: dict[str, str], booking: Booking) -> None:
        """Book, then keep, cancel or miss the reservation."""
        now = self.clock()
        arrival_from = now + booking.lead
        body = {
            "lot_id": booking.lot_id,
            "plate": booking.plate,
            "arrival_from": arrival_from.isoformat(),
            "arrival_to": (arrival_from + booking.window).isoformat(),
        }
        async with http.post(f"{self.base_url}/v1/reservations", json=body, headers=driver) as resp:
            if resp.status != 201:  # no room, the lot closed to the public, the plate holds one there
                self.truth.refused[resp.status] += 1
                return
            held = await resp.json()
        self.truth.booked[booking.plan.value] += 1
        if booking.plan is Plan.NO_SHOW:
            return
        wait = booking.act_after if booking.plan is Plan.CANCEL else booking.lead + booking.act_after
        await asyncio.sleep(wait.total_seconds())
        if booking.plan is Plan.CANCEL:
            url = f"{self.base_url}/v1/reservations/{held['reservation_id']}"
            async with http.delete(url, headers=driver) as gone:
                self.truth.cancelled += gone.status == 200
            return
        async with http.get(
            f"{self.base_url}/v1/reservations/{held['reservation_id']}", headers=driver
        ) as now_:
            spot = (await now_.json()).get("spot_id") if now_.status == 200 else None
        if spot is not None:  # the hold may have moved (another car took the bay): go where it says
            await self.publish(self.sim.arrive(spot, self.clock(), booking.dwell))
            self.truth.arrived += 1


def log(truth: ReservationTruth) -> None:
    """Print what the simulated drivers did."""
    print(f"reservations: {truth.to_json()}", file=sys.stderr)
