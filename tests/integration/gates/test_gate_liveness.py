"""Gates are online while their own messages arrive and offline when silent (real PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from device_gateway.decode import Limits, PresenceReport, decode
from device_gateway.gate_tracking import find_gate
from device_gateway.store import write_batch
from device_gateway.sweeps import sweep_silent
from parking_core.gates import Lane
from parking_core.ids import DeviceId, LotId
from parking_core.liveness import Liveness, check_silence, is_life_sign, observe, status_at
from parking_core.topics import DeviceKind, Leaf, presence_topic
from tests.integration.gates.gate_helpers import provision_gate_lots
from tests.strategies_gates import gate_device

pytestmark = pytest.mark.db
P = "parking/v1"
LOT = LotId("live-lot")
GATE = gate_device(LOT, Lane.ENTRY)
WINDOW = timedelta(seconds=30)
EPS = timedelta(milliseconds=1)
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection over a gated lot whose gates have a 30 s window."""
    connection = await asyncpg.connect(database_url)
    await provision_gate_lots(connection, [LOT], 5)
    await connection.execute(  # each test starts from a gate never heard from (one database a module)
        "UPDATE devices SET stale_after_s = $1, status = 'unknown', last_seen_at = NULL, silent_after = NULL,"
        " presence = NULL",
        int(WINDOW.total_seconds()),
    )
    await connection.execute("DELETE FROM device_deadlines")
    await connection.execute("DELETE FROM device_presence_changes")
    yield connection
    await connection.close()


async def state(conn: asyncpg.Connection) -> tuple[str, datetime | None, datetime | None]:
    """Return the gate's (status, last_seen_at, liveness check_at)."""
    row = await conn.fetchrow(
        "SELECT d.status, d.last_seen_at, dl.check_at FROM devices d"
        " LEFT JOIN device_deadlines dl USING (device_id) WHERE d.device_id = $1",
        GATE,
    )
    assert row is not None
    return row[0], row[1], row[2]


async def events(conn: asyncpg.Connection) -> list[tuple[datetime, str]]:
    """Return the gate's liveness events, oldest first."""
    rows = await conn.fetch(
        "SELECT ts, event FROM device_presence_changes WHERE device_id = $1 ORDER BY ts, event", GATE
    )
    return [(r["ts"], r["event"]) for r in rows]


async def announce(conn: asyncpg.Connection, online: bool, at: datetime) -> None:
    """The gate's presence message (its own `{"online": true}`, or its will), through the writer."""
    payload = b'{"online": true}' if online else b'{"online": false}'
    report = decode(presence_topic(P, GATE), payload, P, at, Limits())
    assert isinstance(report, PresenceReport)
    await write_batch(conn, [], [report], [], at)


def test_what_proves_a_gate_alive() -> None:
    """Its reads, passages, acks and own presence announcements; never its will, nor a sensor's leaves."""
    gate = DeviceKind.GATE
    assert all(is_life_sign(gate, leaf) for leaf in (Leaf.PLATE, Leaf.PASSAGE, Leaf.ACK, Leaf.PRESENCE))
    assert not is_life_sign(gate, Leaf.PRESENCE, online=False)
    assert not is_life_sign(gate, Leaf.HEARTBEAT)
    assert not is_life_sign(DeviceKind.BAY_SENSOR, Leaf.PRESENCE)
    assert not is_life_sign(DeviceKind.SIGN, Leaf.PRESENCE)


async def test_a_gate_message_makes_it_online_and_silence_offline(conn: asyncpg.Connection) -> None:
    """Never heard: unknown. A read at T0: online until T0 + 30 s; the sweep 1 ms after turns it offline
    (comms_lost); its next message brings it back (comms_restored) with a new deadline.
    """
    assert await state(conn) == ("unknown", None, None)
    assert await find_gate(conn, GATE, T0) is not None
    assert await state(conn) == ("online", T0, T0 + WINDOW)
    assert (await sweep_silent(conn, T0 + WINDOW - EPS)).devices_offline == 0
    swept = await sweep_silent(conn, T0 + WINDOW + EPS)
    assert (swept.devices_offline, swept.spots_unknown) == (1, 0)
    assert await state(conn) == ("offline", T0, None)
    back = T0 + timedelta(seconds=100)
    await find_gate(conn, GATE, back)
    assert await state(conn) == ("online", back, back + WINDOW)
    assert await events(conn) == [(T0 + WINDOW + EPS, "comms_lost"), (back, "comms_restored")]


async def test_messages_within_the_window_keep_it_online(conn: asyncpg.Connection) -> None:
    """A gate speaking every 20 s is never swept offline: the sweep moves its check forward."""
    for n in range(4):
        await find_gate(conn, GATE, T0 + n * timedelta(seconds=20))
        await sweep_silent(conn, T0 + n * timedelta(seconds=20) + timedelta(seconds=10))
    last = T0 + timedelta(seconds=60)
    assert (await state(conn))[:2] == ("online", last)
    assert (await sweep_silent(conn, last + WINDOW - EPS)).devices_offline == 0
    assert (await sweep_silent(conn, last + WINDOW + EPS)).devices_offline == 1


async def test_its_presence_announcement_is_a_heartbeat_and_its_will_is_not(conn: asyncpg.Connection) -> None:
    """A quiet gate that announces `{"online": true}` is alive; the will changes presence, not status."""
    await announce(conn, True, T0)
    assert await state(conn) == ("online", T0, T0 + WINDOW)
    will = T0 + timedelta(seconds=10)
    await announce(conn, False, will)
    assert await state(conn) == ("online", T0, T0 + WINDOW)
    assert await conn.fetchval("SELECT presence FROM devices WHERE device_id = $1", GATE) == "offline"
    assert (await sweep_silent(conn, T0 + WINDOW + EPS)).devices_offline == 1
    again = T0 + timedelta(seconds=90)
    await announce(conn, True, again)
    assert await state(conn) == ("online", again, again + WINDOW)
    assert (again, "comms_restored") in await events(conn)


@pytest.mark.parametrize(
    "steps",
    [
        [("msg", 0), ("sweep", 29), ("sweep", 31), ("msg", 40), ("sweep", 69), ("msg", 72), ("sweep", 200)],
        [("sweep", 5), ("msg", 10), ("msg", 12), ("msg", 50), ("sweep", 79), ("sweep", 81), ("sweep", 90)],
        [("msg", 0), ("msg", 29), ("sweep", 58), ("sweep", 60), ("msg", 61), ("sweep", 62)],
    ],
)
async def test_the_database_follows_the_pure_rule(
    conn: asyncpg.Connection, steps: list[tuple[str, int]]
) -> None:
    """Gate messages and sweeps at any moments: the status stored is what parking_core.liveness says."""
    model = Liveness(DeviceId(GATE), WINDOW)
    for step, second in steps:
        at = T0 + timedelta(seconds=second)
        if step == "msg":
            await find_gate(conn, GATE, at)
            model, _ = observe(model, DeviceId(GATE), at)
        else:
            await sweep_silent(conn, at)
            model, _ = check_silence(model, at)
            assert model.status is status_at(model, at)  # the sweep's state is the rule's at that moment
        assert (await state(conn))[0] == model.status.value, (step, second)
