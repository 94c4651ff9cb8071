"""The gate path over the real broker and database: read → command, redelivery, acks, re-sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from billing import VehicleClass, load_example_tariffs, price_stay
from guidance_api.session_sql import Release, gate_lot, release_gate
from parking_core.adapters.settings import Settings
from parking_core.gates import Lane
from parking_core.ids import LotId
from parking_core.topics import availability_topic, gate_topic
from tests.integration.gates.gate_helpers import TARIFF_ID, provision_gate_lots
from tests.integration.gateway.helpers import eventually, gateway_settings, running_gateway
from tests.mqtt_helpers import Collector, connect
from tests.strategies_gates import gate_device

pytestmark = [pytest.mark.db, pytest.mark.mqtt]
LOT = LotId("mq-lot")
ENTRY, EXIT = gate_device(LOT, Lane.ENTRY), gate_device(LOT, Lane.EXIT)


def plate_read(seq: int, ts: datetime, lane: str, plate: str, confidence: float = 0.97) -> bytes:
    body = {"seq": seq, "ts": ts.isoformat(), "lane": lane, "plate": plate, "plate_color": "blue"}
    return json.dumps(body | {"confidence": confidence}, ensure_ascii=False).encode()


def commands(gate: Collector, device: str) -> list[dict[str, object]]:
    return [json.loads(p) for t, p in list(gate.messages) if t.endswith(f"/{device}/command")]


async def has(gate: Collector, device: str, n: int) -> bool:
    return len(commands(gate, device)) >= n


async def free_published(gate: Collector, prefix: str, free: int) -> bool:
    found = [json.loads(p) for t, p in list(gate.messages) if t == availability_topic(prefix, LOT)]
    return bool(found) and found[-1]["free"] == free


async def test_reads_get_commands_once_acks_and_passages_are_recorded(
    database_url: str, app_settings: Settings, topic_prefix: str
) -> None:
    """Entry opens, a redelivered read gets the same command id, a misread exit is priced and held."""
    conn = await asyncpg.connect(database_url)
    await provision_gate_lots(conn, [LOT], 5)
    gate = connect(str(app_settings.mqtt_url))
    gate.client.subscribe(f"{topic_prefix}/gates/+/command", qos=1)
    gate.client.subscribe(availability_topic(topic_prefix, LOT), qos=1)
    settings = gateway_settings(app_settings, gateway_gate_resend_after_s=60.0)
    now = datetime.now(UTC).replace(microsecond=0)
    entered = now - timedelta(hours=3, minutes=5)
    try:
        async with running_gateway(settings):
            entry_topic = gate_topic(topic_prefix, ENTRY, "plate")
            gate.client.publish(entry_topic, plate_read(1, entered, "entry", "豫A12340"), qos=1)
            await eventually(lambda: has(gate, ENTRY, 1))
            first = commands(gate, ENTRY)[0]
            assert (first["action"], first["reason"], first["plate"]) == ("open", "entry", "豫A12340")
            gate.client.publish(entry_topic, plate_read(1, entered, "entry", "豫A12340"), qos=1)
            await eventually(lambda: has(gate, ENTRY, 2))
            assert commands(gate, ENTRY)[1]["command_id"] == first["command_id"]
            ack = {"command_id": first["command_id"], "ts": now.isoformat(), "ok": True}
            gate.client.publish(gate_topic(topic_prefix, ENTRY, "ack"), json.dumps(ack), qos=1)
            passage = {"seq": 2, "ts": (entered + timedelta(seconds=4)).isoformat(), "lane": "entry"}
            gate.client.publish(gate_topic(topic_prefix, ENTRY, "passage"), json.dumps(passage), qos=1)

            async def opened() -> bool:
                state = await conn.fetchval("SELECT state FROM sessions WHERE plate = '豫A12340'")
                acked = await conn.fetchval("SELECT acked_at FROM gate_commands WHERE device_id = $1", ENTRY)
                return state == "open" and acked is not None

            await eventually(opened)
            exit_topic = gate_topic(topic_prefix, EXIT, "plate")
            gate.client.publish(exit_topic, plate_read(1, now, "exit", "豫A1234O", 0.6), qos=1)
            await eventually(lambda: has(gate, EXIT, 1))
            held = commands(gate, EXIT)[0]
            tariff = load_example_tariffs()[TARIFF_ID]
            expected = price_stay(entered, now, VehicleClass.SMALL_CAR, tariff).amount_fen
            assert (held["action"], held["reason"], held["amount_fen"]) == ("hold", "payment_due", expected)
            assert str(held["display"]).startswith("豫A12340 3小时05分 ¥")
            await eventually(lambda: free_published(gate, topic_prefix, 4))
            seen = await conn.fetchval("SELECT last_seen_at FROM devices WHERE device_id = $1", EXIT)
            assert seen is not None  # the gate's own messages say when it was last heard from
    finally:
        gate.close()
        await conn.close()


async def test_an_unacked_command_is_resent_then_flagged_and_bad_messages_are_kept(
    database_url: str, app_settings: Settings, topic_prefix: str
) -> None:
    """Sent at most max_sends times, then an unacked_command event; junk (also what the database
    refuses) lands in rejected_messages and the path goes on."""
    conn = await asyncpg.connect(database_url)
    await provision_gate_lots(conn, [LOT], 5)
    gate = connect(str(app_settings.mqtt_url))
    gate.client.subscribe(f"{topic_prefix}/gates/+/command", qos=1)
    settings = gateway_settings(
        app_settings,
        gateway_gate_resend_after_s=0.2,
        gateway_gate_max_sends=3,
        gateway_gate_sweep_interval_s=0.1,
    )
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        async with running_gateway(settings):
            gate.client.publish(
                gate_topic(topic_prefix, ENTRY, "plate"), plate_read(7, now, "entry", "京B55555"), qos=1
            )
            gate.client.publish(gate_topic(topic_prefix, ENTRY, "plate"), b"{not json", qos=1)
            gate.client.publish(
                gate_topic(topic_prefix, "nobody", "plate"), plate_read(1, now, "entry", "京B1"), qos=1
            )
            too_long = plate_read(8, now, "entry", "豫A123456789ABCDE")  # 16: the sessions table refuses it
            gate.client.publish(gate_topic(topic_prefix, ENTRY, "plate"), too_long, qos=1)

            async def flagged() -> bool:
                n = await conn.fetchval("SELECT count(*) FROM gate_events WHERE kind = 'unacked_command'")
                return bool(n == 1)

            await eventually(flagged)

            def sent() -> list[dict[str, object]]:
                return [c for c in commands(gate, ENTRY) if c["plate"] == "京B55555"]

            async def three_arrived() -> bool:  # the last send may still be on its way
                return len(sent()) >= 3

            await eventually(three_arrived)
            assert len(sent()) == 3
            assert len({c["command_id"] for c in sent()}) == 1
            reasons = await conn.fetch("SELECT reason FROM rejected_messages ORDER BY rejected_id")
            assert [r["reason"] for r in reasons] == ["not_json", "unknown_device", "schema"]
            detail = await conn.fetchval("SELECT detail FROM rejected_messages WHERE reason = 'schema'")
            assert "refused by the database (23514)" in detail
    finally:
        gate.close()
        await conn.close()


async def test_a_manual_release_is_sent_at_once_not_at_the_next_sweep(
    database_url: str, app_settings: Settings, topic_prefix: str
) -> None:
    """The API's NOTIFY wakes the gateway's sweep: with an hour between sweeps the command still goes."""
    conn = await asyncpg.connect(database_url)
    await provision_gate_lots(conn, [LOT], 5)
    gate = connect(str(app_settings.mqtt_url))
    gate.client.subscribe(f"{topic_prefix}/gates/+/command", qos=1)
    settings = gateway_settings(app_settings, gateway_gate_sweep_interval_s=3600.0)
    try:
        async with running_gateway(settings):
            lot_id, lane = await gate_lot(conn, EXIT)
            for plate in ("豫M00001", "豫M00002"):  # the second surely after the start-up sweep
                release = Release(EXIT, "栏杆抬不起来", plate, "test-operator", datetime.now(UTC))
                queued = await release_gate(conn, lot_id, lane, release)

                async def sent(command_id: str = str(queued["command_id"])) -> bool:
                    return any(c["command_id"] == command_id for c in commands(gate, EXIT))

                await eventually(sent)
            command = next(c for c in commands(gate, EXIT) if c["command_id"] == queued["command_id"])
            assert (command["action"], command["reason"], command["plate"]) == ("open", "manual", "豫M00002")
    finally:
        gate.close()
        await conn.close()
