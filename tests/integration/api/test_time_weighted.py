"""Hypothesis on the real database: the time-weighted series SQL agrees with the pure time weighting."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guidance_api.history_sql import HOURLY_SERIES, TIME_WEIGHTED_SERIES
from parking_core.time_weight import Buckets, LotSample, time_weighted

pytestmark = [pytest.mark.db]

# A whole hour long enough ago for any policy, shared by every example (lots are per example).
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
ORIGIN = datetime(2000, 1, 1, tzinfo=UTC)
SHANGHAI_ORIGIN = datetime(2000, 1, 1, tzinfo=UTC) - timedelta(hours=8)  # local midnight, UTC+8
CAPACITY = 12
WIDTHS = [timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1), timedelta(days=1)]


@st.composite
def lot_samples(draw: st.DrawFn) -> list[LotSample]:
    """Samples of one lot within three hours around T0, some at the same instant, some in bursts."""
    out: list[LotSample] = []
    for _ in range(draw(st.integers(0, 30))):
        at = T0 + timedelta(microseconds=draw(st.integers(-3_600_000_000, 7_200_000_000)))
        occupied = draw(st.integers(0, CAPACITY))
        unknown = draw(st.integers(0, CAPACITY - occupied))
        out.append(LotSample(at, occupied, CAPACITY - occupied - unknown, unknown, CAPACITY))
    tie: bool = draw(st.booleans())
    if out and tie:
        out.append(LotSample(out[0].at, CAPACITY, 0, 0, CAPACITY))  # a tie at one instant
    return out


def expected(
    samples: list[LotSample], window: tuple[datetime, datetime], buckets: Buckets
) -> list[tuple[object, ...]]:
    """Return the pure answer, in the shape of the SQL rows."""
    return [
        (
            b.start,
            b.covered // timedelta(microseconds=1),
            b.samples,
            b.occupied_max,
            b.free_min,
            b.capacity_max,
            *(round(float(b.average(n)), 9) for n in ("occupied", "free", "unknown", "capacity")),
        )
        for b in time_weighted(samples, window, buckets)
    ]


async def check(
    url: str,
    samples: list[LotSample],
    width: timedelta,
    zone: str,
    window_s: int,
    *,
    sql: str = TIME_WEIGHTED_SERIES,
) -> None:
    """Store *samples* for a new lot and compare the series *sql* answers with the pure one."""
    lot = f"tw-{secrets.token_hex(4)}"
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            "INSERT INTO lot_occupancy (ts, lot_id, capacity, free, occupied, reserved, unknown, closed)"
            " VALUES ($1, $2, $3, $4, $5, 0, $6, 0)",
            [(s.at, lot, s.capacity, s.free, s.occupied, s.unknown) for s in samples],
        )
        window = (T0, T0 + timedelta(seconds=window_s))
        rows = await conn.fetch(sql, [lot], *window, width, zone)
    finally:
        await conn.close()
    got = [
        (
            r["bucket_start"],
            r["covered_us"],
            r["samples"],
            r["occupied_max"],
            r["free_min"],
            r["capacity"],
            *(round(float(r[f"{n}_avg"]), 9) for n in ("occupied", "free", "unknown", "capacity")),
        )
        for r in rows
    ]
    origin = SHANGHAI_ORIGIN if zone == "Asia/Shanghai" else ORIGIN
    assert got == expected(samples, window, Buckets(width, origin))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    samples=lot_samples(),
    width=st.sampled_from(WIDTHS),
    zone=st.sampled_from(["UTC", "Asia/Shanghai"]),
    window_s=st.sampled_from([300, 3600, 7200]),
)
def test_sql_agrees_with_the_pure_time_weighting(
    database_url: str, samples: list[LotSample], width: timedelta, zone: str, window_s: int
) -> None:
    """Any samples, ties, bucket widths and time zones: the SQL series equals the pure one."""
    asyncio.run(check(database_url, samples, width, zone, window_s))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    samples=lot_samples(),
    width=st.sampled_from([timedelta(hours=1), timedelta(days=1)]),
    zone=st.sampled_from(["UTC", "Asia/Shanghai"]),
    window_s=st.sampled_from([3600, 7200, 10800]),
)
def test_the_hourly_roll_up_agrees_with_the_pure_time_weighting(
    database_url: str, samples: list[LotSample], width: timedelta, zone: str, window_s: int
) -> None:
    """Hours and days over whole UTC hours from the hourly roll-up (sql/0085): the same rows as the
    pure weighting, hence as the 5-minute view (the test above), ties and carried states included.
    """
    asyncio.run(check(database_url, samples, width, zone, window_s, sql=HOURLY_SERIES))
