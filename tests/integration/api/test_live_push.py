"""The operator live feed is pushed by PostgreSQL NOTIFY: one listener per process, no polling."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from guidance_api.context import LOT_WATCH
from guidance_api.live import LotWatch
from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
DEADLINE_S = 30.0  # generous: the machine is loaded; a pushed change normally arrives in milliseconds
LOTS = {"LP1": "lp-a", "LP2": "lp-a", "LP3": "lp-b"}  # lot: district


class Stream:
    """One open `GET /v1/operator/live`, read event by event."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next_event(self) -> tuple[str, Any]:
        """Return the next event's name and data (comments such as keep-alives are skipped)."""
        name, data = "", ""
        while True:
            line = (await asyncio.wait_for(self.response.content.readline(), DEADLINE_S)).decode()
            if line.startswith("event: "):
                name = line[7:].strip()
            elif line.startswith("data: "):
                data = line[6:].strip()
            elif line == "\n" and name:
                return name, json.loads(data)

    async def next_lots(self) -> dict[str, dict[str, Any]]:
        """Return the next `lots` event's lots by id."""
        name, data = await self.next_event()
        assert name == "lots", (name, data)
        return {lot["lot_id"]: lot for lot in data}


@asynccontextmanager
async def stream(api: Client, headers: dict[str, str]) -> AsyncIterator[tuple[Stream, list[dict[str, Any]]]]:
    """Open a live stream; yield it and its snapshot."""
    response = await api.get("/v1/operator/live", headers=headers)
    assert response.status == 200, await response.text()
    try:
        live = Stream(response)
        name, snapshot = await live.next_event()
        assert name == "snapshot"
        yield live, snapshot
    finally:
        response.close()


async def provision(db: asyncpg.Connection) -> None:
    """Three lots of ten spaces in two districts, all free."""
    for district in sorted(set(LOTS.values())):
        await db.execute(
            "INSERT INTO districts (district_id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", district
        )
    for lot_id, district in LOTS.items():
        await db.execute(
            "INSERT INTO lots (lot_id, district_id, name, kind, lat, lon, capacity, free_count)"
            " VALUES ($1, $2, $1, 'off_street', 34.75, 113.65, 10, 10) ON CONFLICT DO NOTHING",
            lot_id,
            district,
        )


async def set_free(db: asyncpg.Connection, lot_id: str, free: int) -> None:
    """Change a lot's counts as a writer would, stamped an hour ago: no 'recently changed' poll sees it."""
    await db.execute(
        "UPDATE lots SET free_count = $2, occupied_count = 10 - $2,"
        " counts_updated_at = now() - INTERVAL '1 hour', updated_at = now() - INTERVAL '1 hour'"
        " WHERE lot_id = $1",
        lot_id,
        free,
    )


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait until *check* holds (deadline DEADLINE_S)."""
    deadline = time.monotonic() + DEADLINE_S
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def operator_token(api: Client, district: str) -> dict[str, str]:
    """Issue an operator token of *district*."""
    resp = await api.post(
        "/v1/admin/tokens", json={"role": "operator", "district_ids": [district]}, headers=ADMIN
    )
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def test_a_change_reaches_every_open_stream_with_one_read_and_none_while_idle(
    api: Client, db: asyncpg.Connection
) -> None:
    """Three pages open: nothing is read while nothing changes (the old watch read the lots every
    second); one change is read once for the process and pushed to all three; a lot outside a
    token's scope never reaches its stream.
    """
    await provision(db)
    watch: LotWatch = api.app[LOT_WATCH]
    district_a = await operator_token(api, "lp-a")
    async with (
        stream(api, ADMIN) as (one, _),
        stream(api, ADMIN) as (two, _),
        stream(api, district_a) as (mine, snap),
    ):
        assert sorted(lot["lot_id"] for lot in snap) == ["LP1", "LP2"]
        assert await watch.listening(DEADLINE_S)
        idle = watch.reads
        await asyncio.sleep(2.5)  # two ticks of a one-second poll: none must happen
        assert watch.reads == idle
        await set_free(db, "LP1", 4)
        for page in (one, two, mine):
            assert (await page.next_lots())["LP1"]["free"] == 4
        assert watch.reads == idle + 1  # one read for three streams
        await set_free(db, "LP3", 7)  # another district's lot
        await set_free(db, "LP2", 3)
        assert (await one.next_lots())["LP3"]["free"] == 7
        pushed = await mine.next_lots()  # its next event is LP2's change: LP3's never reached it
        assert set(pushed) == {"LP2"}
        assert pushed["LP2"]["free"] == 3


async def test_a_statement_that_changes_nothing_shown_is_not_pushed(
    api: Client, db: asyncpg.Connection
) -> None:
    """Only counts_updated_at moved (a batch whose changes cancel out): no notification, no read."""
    await provision(db)
    watch: LotWatch = api.app[LOT_WATCH]
    async with stream(api, ADMIN) as (page, _):
        assert await watch.listening(DEADLINE_S)
        before = watch.reads
        await db.execute("UPDATE lots SET counts_updated_at = now() WHERE lot_id = 'LP2'")
        await set_free(db, "LP2", 1)  # then a real change: the next event is this one
        assert (await page.next_lots())["LP2"]["free"] == 1
        assert watch.reads == before + 1


async def test_changes_made_while_the_listener_was_away_arrive_when_it_is_back(
    api: Client, db: asyncpg.Connection
) -> None:
    """The listening connection is killed and cannot come back at once; a change written meanwhile
    (its notification heard by nobody) reaches the page when the listener reconnects.
    """
    await provision(db)
    watch: LotWatch = api.app[LOT_WATCH]
    gate = asyncio.Event()
    connect = watch.connect
    assert connect is not None

    async def held_back() -> asyncpg.Connection:
        await gate.wait()
        return await connect()

    async with stream(api, ADMIN) as (page, _):
        assert await watch.listening(DEADLINE_S)
        watch.connect = held_back
        killed = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query LIKE 'LISTEN%lot_counts%'"
        )
        assert killed == 1
        await until(lambda: _not_listening(watch))
        await set_free(db, "LP3", 2)
        gate.set()
        assert (await page.next_lots())["LP3"]["free"] == 2


async def _not_listening(watch: LotWatch) -> bool:
    return not await watch.listening(0)
