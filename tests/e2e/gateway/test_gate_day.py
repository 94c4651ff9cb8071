"""A simulated day at two closed car parks, over the real broker and database, against its ground truth."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from billing import TimedCharge, VehicleClass, load_example_tariffs, price_stay
from billing.adapters.drivers_store import bind_plate, put_account, set_consent
from device_gateway.gate_tracking import expire_awaiting
from guidance_api.session_sql import Release, gate_lot, release_gate
from parking_core.adapters.settings import Settings
from parking_core.gates import Lane
from parking_core.ids import LotId
from simulators.gates import GateSimulator, GateTruth, Outcome, Visit, plan_day
from simulators.publisher import mqtt_client
from tests.integration.gates.gate_helpers import TARIFF_ID, provision_gate_lots
from tests.integration.gateway.helpers import eventually, gateway_settings, running_gateway
from tests.strategies_gates import gate_device

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
CAPACITY = 6
CARS = 50


async def drivers(db: asyncpg.Connection, visits: list[Visit], at: datetime) -> None:
    """Every plate belongs to an account that agreed to pay later: exits open with `pay_later`."""
    for plate in sorted({v.plate for v in visits}):
        account = f"acc-{secrets.token_hex(4)}"
        await put_account(db, account, "")
        await bind_plate(db, account, plate, "test", at)
        await set_consent(db, account, True, "test", at)


def expected_sessions(truth: GateTruth) -> Counter[tuple[object, ...]]:
    """The sessions the database must hold, from what physically happened."""
    want: Counter[tuple[object, ...]] = Counter()
    for v in truth.visits:
        if v.outcome is Outcome.STAYED:
            want[(v.plate, "ended", v.entry_ts, v.exit_ts)] += 1
        elif v.outcome is Outcome.INSIDE:
            want[(v.plate, "open", v.entry_ts, None)] += 1
        elif v.outcome is Outcome.CANCELLED:
            want[(v.plate, "cancelled", v.entry_ts, None)] += 1
    return want


def repriced(truth: GateTruth) -> dict[tuple[str, datetime], int]:
    """Price every stay again, independently: same plate's earlier stays fed as earlier charges."""
    tariff = load_example_tariffs()[TARIFF_ID]
    charges: dict[str, list[TimedCharge]] = {}
    amounts = {}
    stayed = sorted(
        (v for v in truth.visits if v.outcome is Outcome.STAYED), key=lambda v: v.exit_ts or v.leave
    )
    for v in stayed:
        assert v.entry_ts is not None
        assert v.exit_ts is not None
        quote = price_stay(v.entry_ts, v.exit_ts, VehicleClass.SMALL_CAR, tariff, charges.get(v.plate, []))
        charges.setdefault(v.plate, []).extend(quote.charges)
        amounts[(v.plate, v.entry_ts)] = quote.amount_fen
    return amounts


async def test_a_day_of_closed_lots_matches_the_ground_truth(
    app_settings: Settings, db: asyncpg.Connection
) -> None:
    """Each read answered once; sessions, prices, tailgating and free counts as the truth says."""
    lots = [LotId(f"day{i}-{secrets.token_hex(2)}") for i in range(2)]
    await provision_gate_lots(db, list(lots), CAPACITY)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=30)
    visits = plan_day(len(lots), CARS, start, seed=7, fault_rate=0.15)
    await drivers(db, visits, start - timedelta(days=1))
    gates = [(lot, gate_device(lot, Lane.ENTRY), gate_device(lot, Lane.EXIT)) for lot in lots]
    sim = GateSimulator(app_settings.topic_prefix, [(str(a), str(b), str(c)) for a, b, c in gates])
    async with (
        running_gateway(gateway_settings(app_settings)),
        mqtt_client(app_settings.mqtt_endpoint()) as client,
    ):
        truth = await sim.run(client, visits, until=start + timedelta(hours=14))  # some stay inside
        passages = sum(
            (v.outcome in {Outcome.STAYED, Outcome.INSIDE})
            * (1 + v.tailgater)
            * (1 + (v.outcome is Outcome.STAYED))
            for v in truth.visits
        )

        async def all_passages_in() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM gate_passages") == passages)

        await eventually(all_passages_in)
        release = Release(gates[0][1], "栏杆测试", None, "test-operator", datetime.now(UTC))
        lot_id, lane = await gate_lot(db, gates[0][1])
        queued = await release_gate(db, lot_id, lane, release)

        async def manual_sent() -> bool:
            return bool(await db.fetchval("SELECT sends FROM gate_commands WHERE reason = 'manual'") >= 1)

        await eventually(manual_sent)
    await expire_awaiting(db, datetime.now(UTC) + timedelta(hours=1))
    # every plate read answered exactly once: one command id per read, one command row per read
    assert all(len(ids) == 1 for ids in truth.commands.values())
    assert await db.fetchval("SELECT count(*) FROM gate_commands WHERE read_seq IS NOT NULL") == truth.reads
    assert await db.fetchval("SELECT count(*) FROM gate_reads") == truth.reads
    rows = await db.fetch(
        "SELECT plate, state, started_at, ended_at, amount_fen FROM sessions WHERE kind = 'gate'"
    )
    ended = {"priced", "invoiced", "paid"}
    got = Counter(
        (r["plate"], "ended" if r["state"] in ended else r["state"], r["started_at"], r["ended_at"])
        for r in rows
    )
    assert got == expected_sessions(truth)
    prices = repriced(truth)
    assert {(r["plate"], r["started_at"]): r["amount_fen"] for r in rows if r["state"] in ended} == prices
    exits = await db.fetch(
        "SELECT session_id, count(*) AS n FROM gate_commands"
        " WHERE lane = 'exit' AND action = 'open' GROUP BY 1"
    )
    assert all(e["n"] == 1 for e in exits)  # every exit decided (and priced) once
    tailgating = await db.fetchval("SELECT count(*) FROM gate_events WHERE kind = 'tailgating'")
    assert tailgating == sum(
        v.tailgater * (1 + (v.outcome is Outcome.STAYED)) for v in truth.visits if v.entry_ts
    )
    outcomes = Counter(v.outcome for v in truth.visits)
    assert min(outcomes[Outcome.STAYED], outcomes[Outcome.REFUSED], outcomes[Outcome.CANCELLED]) > 0
    assert truth.misreads_matched > 0
    # misreads counted: every unsure entry read held `low_confidence` (then read again), every
    # misread exit matched its session by tolerant matching; none referred (`no_entry_record`)
    unsure = sum(v.unsure_entry for v in truth.visits if v.outcome is not Outcome.NOT_YET)
    held_unsure = await db.fetchval(
        "SELECT count(*) FROM gate_commands WHERE lane = 'entry' AND reason = 'low_confidence'"
    )
    assert held_unsure == unsure > 0
    misread_exits = sum(v.misread_exit for v in truth.visits if v.outcome is Outcome.STAYED)
    assert truth.misreads_matched == misread_exits
    assert await db.fetchval("SELECT count(*) FROM gate_commands WHERE reason = 'no_entry_record'") == 0
    print(json.dumps(truth.to_json()))  # the day's shape, in the test log
    for lot in lots:
        inside = sum(v.outcome is Outcome.INSIDE and gates[v.lot][0] == lot for v in truth.visits)
        free = await db.fetchval("SELECT free_count FROM lots WHERE lot_id = $1", lot)
        assert free == CAPACITY - inside
    assert queued["session_id"] is None
    audit = await db.fetchrow("SELECT detail FROM gate_events WHERE kind = 'manual_release'")
    assert audit is not None
    assert json.loads(audit["detail"]) == {"reason": "栏杆测试", "by": "test-operator"}
