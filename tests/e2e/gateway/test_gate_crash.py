"""SIGKILL the gateway in the middle of exits: every read still gets one command, every stay closes once."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from billing.adapters.drivers_store import bind_plate, put_account, set_consent
from parking_core.adapters.settings import Settings
from parking_core.gates import Lane
from parking_core.ids import LotId
from parking_core.topics import gate_topic
from tests.e2e.gateway.test_crash_recovery import gateway_process
from tests.integration.gates.gate_helpers import provision_gate_lots
from tests.integration.gateway.helpers import eventually, gateway_settings
from tests.mqtt_helpers import Collector, connect
from tests.strategies_gates import gate_device

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
CARS = 150


def read(seq: int, ts: datetime, lane: str, plate: str) -> bytes:
    body = {"seq": seq, "ts": ts.isoformat(), "lane": lane, "plate": plate, "confidence": 0.98}
    return json.dumps(body, ensure_ascii=False).encode()


def exit_commands(gate: Collector, device: str) -> dict[str, set[str]]:
    """Command ids received per plate at *device*."""
    found: dict[str, set[str]] = defaultdict(set)
    for topic, payload in list(gate.messages):
        if topic.endswith(f"/{device}/command"):
            command = json.loads(payload)
            found[command["plate"]].add(command["command_id"])
    return found


async def test_sigkill_mid_exits_gives_each_read_one_command_and_closes_each_stay_once(
    app_settings: Settings, tmp_path: Path, db: asyncpg.Connection
) -> None:
    """Kill after the first exit commands; the restarted gateway answers the rest and repeats none."""
    lot = LotId(f"kill-{secrets.token_hex(2)}")
    await provision_gate_lots(db, [lot], CARS)
    entry, exit_ = gate_device(lot, Lane.ENTRY), gate_device(lot, Lane.EXIT)
    plates = [f"豫K{n:05d}" for n in range(CARS)]
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    for plate in plates:  # pay-later drivers: every exit opens
        account = f"acc-{secrets.token_hex(4)}"
        await put_account(db, account, "")
        await bind_plate(db, account, plate, "test", start - timedelta(days=1))
        await set_consent(db, account, True, "test", start - timedelta(days=1))
    settings = gateway_settings(app_settings, gateway_client_id=f"gw-gkill-{secrets.token_hex(4)}")
    gate = connect(str(app_settings.mqtt_url))
    gate.client.subscribe(f"{app_settings.topic_prefix}/gates/+/command", qos=1)
    prefix = app_settings.topic_prefix
    try:
        async with gateway_process(settings, tmp_path / "first.log") as first:
            for n, plate in enumerate(plates):
                at = start + timedelta(minutes=n)
                gate.client.publish(
                    gate_topic(prefix, entry, "plate"), read(2 * n, at, "entry", plate), qos=1
                )
                passage = {"seq": 2 * n + 1, "ts": (at + timedelta(seconds=3)).isoformat(), "lane": "entry"}
                gate.client.publish(gate_topic(prefix, entry, "passage"), json.dumps(passage), qos=1)

            async def all_inside() -> bool:
                return bool(await db.fetchval("SELECT count(*) FROM sessions WHERE state = 'open'") == CARS)

            await eventually(all_inside, timeout_s=60)
            leave = start + timedelta(hours=4)
            for n, plate in enumerate(plates):
                payload = read(n, leave + timedelta(seconds=20 * n), "exit", plate)
                gate.client.publish(gate_topic(prefix, exit_, "plate"), payload, qos=1)

            async def some_exits() -> bool:
                return len(exit_commands(gate, exit_)) >= 5

            await eventually(some_exits)
            first.kill()
        answered_before = len(exit_commands(gate, exit_))
        async with gateway_process(settings, tmp_path / "second.log") as second:

            async def all_exits() -> bool:
                return len(exit_commands(gate, exit_)) == CARS

            await eventually(all_exits, timeout_s=60)
            assert await asyncio.to_thread(second.stop, 30) == 0
    finally:
        gate.close()
    assert 0 < answered_before < CARS  # the kill really fell in the middle of the exits
    assert all(len(ids) == 1 for ids in exit_commands(gate, exit_).values())
    rows = await db.fetch(
        "SELECT read_seq, count(*) AS n FROM gate_commands WHERE device_id = $1 GROUP BY 1", exit_
    )
    assert len(rows) == CARS
    assert all(r["n"] == 1 for r in rows)
    states = await db.fetch("SELECT state, count(*) AS n FROM sessions GROUP BY 1")
    assert {r["state"]: r["n"] for r in states} == {"invoiced": CARS}
    closed_twice = await db.fetchval(
        "SELECT count(*) FROM (SELECT session_id FROM session_evidence WHERE kind = 'exit_read'"
        " GROUP BY 1 HAVING count(*) > 1) d"
    )
    assert closed_twice == 0
    invoices = await db.fetchval("SELECT count(DISTINCT session_id) FROM invoices")
    assert invoices == CARS
