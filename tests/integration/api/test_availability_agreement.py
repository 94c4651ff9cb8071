"""MQTT availability and `GET /v1/lots` agree for every combination of spot states, open or closed."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import combinations_with_replacement
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from device_gateway.availability import availability_payload
from device_gateway.lot_counts import apply_lot_deltas, lot_deltas
from device_gateway.messages import AVAILABILITY
from device_gateway.results import LotRow
from parking_core.occupancy import SpotStatus
from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
Combination = tuple[SpotStatus, ...]
SMALL = 4  # 70 multisets of the five states over four spots: every combination of a small lot
BIG = 11  # the smallest lot where one free spot is under 10 % of capacity (almost_full)


def lot_body(lot_id: str, spots: int) -> dict[str, Any]:
    """Return the PUT body of a lot with *spots* spots."""
    return {
        "name": f"Agreement {lot_id}",
        "kind": "off_street",
        "district_id": "agree",
        "lat": 34.75,
        "lon": 113.62,
        "spots": [{"spot_id": f"{lot_id}-{i}"} for i in range(spots)],
    }


async def move_counts(
    conn: asyncpg.Connection, lot_id: str, before: Combination, after: Combination
) -> LotRow:
    """Move the lot's spots and counters as the gateway does, and return the gateway's lot row."""
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        if old is not new:
            await conn.execute(
                "UPDATE spots SET status = $1 WHERE spot_id = $2", new.value, f"{lot_id}-{index}"
            )
    changes = [(lot_id, new.value, old.value) for old, new in zip(before, after, strict=True)]
    rows = await apply_lot_deltas(conn, lot_deltas(changes), datetime.now(UTC))
    assert len(rows) == 1
    return rows[0]


async def agreement(
    api: Client, conn: asyncpg.Connection, lot_id: str, combinations: list[Combination]
) -> set[str]:
    """Walk the lot through *combinations*, open then closed; return the statuses seen while open."""
    resp = await api.put(
        f"/v1/admin/lots/{lot_id}", json=lot_body(lot_id, len(combinations[0])), headers=ADMIN
    )
    assert resp.status == 201, await resp.text()
    seen: set[tuple[bool, str]] = set()
    state = (SpotStatus.UNKNOWN,) * len(combinations[0])  # as provisioned
    for lot_closed in (False, True):
        flag = "closed" if lot_closed else "open"
        await conn.execute("UPDATE lots SET status = $1 WHERE lot_id = $2", flag, lot_id)
        for combination in combinations:
            row = await move_counts(conn, lot_id, state, combination)
            state = combination
            published = AVAILABILITY.validate_json(availability_payload(row))
            lot = await (await api.get(f"/v1/lots/{lot_id}")).json()
            listed = (await (await api.get("/v1/lots", params={"district_id": "agree"})).json())["items"]
            assert (published.status.value, published.free, published.capacity) == (
                lot["status"],
                lot["free"],
                lot["capacity"],
            ), (lot_closed, combination)
            assert lot in listed
            seen.add((lot_closed, lot["status"]))
    assert {status for closed, status in seen if closed} == {"closed"}  # closed is never full
    return {status for closed, status in seen if not closed}


async def test_availability_and_the_api_say_the_same_for_every_spot_combination(
    api: Client, db: asyncpg.Connection
) -> None:
    """Every combination of a 4-spot lot, open and closed: the gateway's payload and the API's lot
    (one and listed) agree on status, free and capacity. A closed lot reads closed, never full.
    """
    await api.put("/v1/admin/districts/agree", json={"name": "一致"}, headers=ADMIN)
    combinations = list(combinations_with_replacement(SpotStatus, SMALL))
    assert len(combinations) == 70
    statuses = await agreement(api, db, "AG", combinations)
    assert statuses == {"open", "full", "closed", "unknown"}  # one free of four is 25 %: never almost_full


async def test_they_agree_on_almost_full_too(api: Client, db: asyncpg.Connection) -> None:
    """An 11-spot lot, from no free spot to two, with up to six unknown: almost_full on both sides."""
    await api.put("/v1/admin/districts/agree", json={"name": "一致"}, headers=ADMIN)
    combinations = [
        (SpotStatus.FREE,) * free
        + (SpotStatus.UNKNOWN,) * unknown
        + (SpotStatus.OCCUPIED,) * (BIG - free - unknown)
        for free in range(3)
        for unknown in range(7)
    ]
    statuses = await agreement(api, db, "AGB", combinations)
    assert statuses == {"open", "almost_full", "full", "unknown"}
