"""The vacancies filter in SQL is the core's lot-status rule: equal for every count, on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from itertools import product

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guidance_api.queries import MAY_BE_OFFERED
from parking_core.lots import LotCounts, LotStatus, lot_status

pytestmark = pytest.mark.db

Case = tuple[LotCounts, bool]
EVALUATE = f"""
SELECT {MAY_BE_OFFERED} FROM unnest($1::int[], $2::int[], $3::int[], $4::int[], $5::int[], $6::int[],
                                   $7::text[])
    WITH ORDINALITY AS lots(capacity, free_count, occupied_count, reserved_count, unknown_count,
                            closed_count, status, n)
ORDER BY n
"""


def offered(counts: LotCounts, closed: bool) -> bool:
    """The pure rule: vacancies offer a lot that is neither full nor closed."""
    return lot_status(counts, closed=closed) not in {LotStatus.FULL, LotStatus.CLOSED}


async def sql_offered(url: str, cases: Sequence[Case]) -> list[bool]:
    """Evaluate MAY_BE_OFFERED on PostgreSQL for each case, in one query."""
    columns = [
        [getattr(c, name) for c, _ in cases]
        for name in ("capacity", "free", "occupied", "reserved", "unknown", "closed")
    ]
    flags = ["closed" if closed else "open" for _, closed in cases]
    conn = await asyncpg.connect(url)
    try:
        return [row[0] for row in await conn.fetch(EVALUATE, *columns, flags)]
    finally:
        await conn.close()


def small_lots(max_capacity: int) -> Iterator[Case]:
    """Every split of every capacity up to *max_capacity* into the five spot states, open or closed."""
    for capacity in range(max_capacity + 1):
        for parts in product(range(capacity + 1), repeat=5):
            if sum(parts) <= capacity:  # gate-counted places beyond the spots are allowed
                for closed in (False, True):
                    yield LotCounts(capacity, *parts), closed


def test_every_small_lot_is_offered_exactly_when_the_rule_says(database_url: str) -> None:
    """Capacities 0..6 exhaustively (1,848 cases): SQL and the pure rule agree on each."""
    cases = list(small_lots(6))
    assert asyncio.run(sql_offered(database_url, cases)) == [offered(c, f) for c, f in cases]


@st.composite
def large_lots(draw: st.DrawFn) -> Case:
    """A lot of any size with consistent counts."""
    capacity = draw(st.integers(0, 100_000))
    drawn: list[int] = []
    for _ in range(5):
        drawn.append(draw(st.integers(0, capacity - sum(drawn))))
    return LotCounts(capacity, *draw(st.permutations(drawn))), draw(st.booleans())


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(large_lots(), min_size=1, max_size=50))
def test_large_lots_agree_too(database_url: str, cases: list[Case]) -> None:
    """Near the thresholds of big lots (half unknown, all closed), SQL still is the rule."""
    assert asyncio.run(sql_offered(database_url, cases)) == [offered(c, f) for c, f in cases]
