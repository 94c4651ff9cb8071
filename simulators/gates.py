"""Simulated barrier gates: cars through closed lots over a day, with camera and loop faults.

The simulator plays the gates' cameras and loops: it publishes plate reads and passages, waits for
each read's command (one outstanding read per gate), acks every command and reacts as a driver would
(re-read when unsure, turn away when full). It keeps the ground truth of every visit.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import aiomqtt

from parking_core.topics import gate_topic

PROVINCES = "豫京冀鲁晋皖鄂"
# A confusable character of each (the camera confusions of parking_core.plate_matching).
MISREAD = {"0": "O", "8": "B", "1": "I", "2": "Z", "5": "S"}
COMMAND_WAIT_S = 30.0  # generous: a loaded machine may be slow; not a latency bound


class Outcome(StrEnum):
    """What became of a visit, physically."""

    STAYED = "stayed"  # in and out through the gates
    INSIDE = "inside"  # in, not out (held at the exit, or the day ended)
    REFUSED = "refused"  # held at the entry, drove away
    CANCELLED = "cancelled"  # the barrier opened, the car reversed away (no passage)
    NOT_YET = "not_yet"  # the simulation ended before it arrived


@dataclass
class Visit:
    """One car's visit to one lot, and its faults."""

    plate: str
    lot: int
    arrive: datetime
    leave: datetime
    unsure_entry: bool = False  # first entry read below the confidence threshold
    misread_exit: bool = False  # exit read with one camera confusion
    duplicate: bool = False  # the entry read is delivered twice
    no_passage: bool = False  # the barrier opens, the car does not go through
    tailgater: bool = False  # a second car slips in behind it (and out behind it)
    outcome: Outcome = Outcome.NOT_YET
    entry_ts: datetime | None = None  # the read that opened the entry gate
    exit_ts: datetime | None = None  # the read that opened the exit gate
    reasons: list[str] = field(default_factory=list)
    amount_fen: int | None = None


@dataclass
class GateTruth:
    """Everything the gates did, to compare with the database."""

    visits: list[Visit] = field(default_factory=list)
    reads: int = 0
    commands: dict[tuple[str, int], set[str]] = field(default_factory=dict)  # (device, seq) → ids
    tailgaters: int = 0
    misreads_matched: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return a summary for other tools."""
        return {
            "visits": len(self.visits),
            "outcomes": {o.value: sum(v.outcome is o for v in self.visits) for o in Outcome},
            "reads": self.reads,
            "tailgaters": self.tailgaters,
            "misreads_matched": self.misreads_matched,
        }


def random_plate(rng: random.Random) -> str:
    """Return a plausible plate with at least one confusable character."""
    body = "".join(rng.choice("0123456789") for _ in range(4))
    return f"{rng.choice(PROVINCES)}{rng.choice('ABCDEF')}{rng.choice('01258')}{body}"


def misread(plate: str, rng: random.Random) -> str:
    """Return *plate* with one camera confusion."""
    spots = [i for i, c in enumerate(plate) if c in MISREAD and i > 1]
    i = rng.choice(spots)
    return plate[:i] + MISREAD[plate[i]] + plate[i + 1 :]


# Arrivals at one lot's entry are at least this far apart, and a passage follows its read within
# seconds: a passage can only belong to the car just read (docs/gates.md: oldest open command).
MIN_GAP = timedelta(minutes=5)


def plan_day(lots: int, cars: int, start: datetime, seed: int, fault_rate: float) -> list[Visit]:
    """Return *cars* visits over a day (one in ten a plate back again later), faults at *fault_rate*."""
    rng = random.Random(seed)
    visits: list[Visit] = []
    plates: set[str] = set()
    for index in range(cars):
        lot = rng.randrange(lots)
        earlier = [v for v in visits if v.lot == lot]
        if earlier and index % 10 == 9:  # the same plate back at the same lot after it left
            plate, arrive = earlier[-1].plate, earlier[-1].leave + timedelta(hours=rng.uniform(1, 3))
        else:
            plate, arrive = random_plate(rng), start + timedelta(minutes=rng.uniform(0, 20 * 60))
            while plate in plates:
                plate = random_plate(rng)
        plates.add(plate)
        while clash := [v for v in earlier if abs(v.arrive - arrive) < MIN_GAP]:
            arrive = max(v.arrive for v in clash) + MIN_GAP
        stay = timedelta(minutes=rng.choice([10, 45, 90, 200, 420]) + rng.uniform(0, 30))
        unsure, misread_exit, duplicate, no_passage, tailgater = (rng.random() < fault_rate for _ in range(5))
        visits.append(
            Visit(
                plate,
                lot,
                arrive,
                arrive + stay,
                unsure_entry=unsure,
                misread_exit=misread_exit,
                duplicate=duplicate,
                no_passage=no_passage,
                tailgater=tailgater,
            )
        )
    return visits


@dataclass
class GateSimulator:
    """Drives the gates of *lots* (lot_id, entry device, exit device) through planned visits."""

    prefix: str
    lots: list[tuple[str, str, str]]
    truth: GateTruth = field(default_factory=GateTruth)
    _seq: dict[str, int] = field(default_factory=dict)
    _waiting: dict[str, asyncio.Queue[dict[str, Any]]] = field(default_factory=dict)
    _seen: set[str] = field(default_factory=set)  # command ids answered: a re-send is skipped

    def _next_seq(self, device: str) -> int:
        self._seq[device] = self._seq.get(device, 0) + 1
        return self._seq[device]

    async def listen(self, client: aiomqtt.Client) -> None:
        """Route every command to its gate's queue (run as a task)."""
        async for message in client.messages:
            device = str(message.topic).rsplit("/", 2)[-2]
            payload = message.payload if isinstance(message.payload, bytes) else b""
            await self._waiting.setdefault(device, asyncio.Queue()).put(json.loads(payload))

    async def _command(self, client: aiomqtt.Client, device: str, again: str | None = None) -> dict[str, Any]:
        """Return the gate's next command (*again*: the same one, for a redelivered read)."""
        queue = self._waiting.setdefault(device, asyncio.Queue())
        while True:
            command = await asyncio.wait_for(queue.get(), COMMAND_WAIT_S)
            if command["command_id"] == again or command["command_id"] not in self._seen:
                break  # anything else is the re-send of a command already answered
        self._seen.add(command["command_id"])
        ack = {"command_id": command["command_id"], "ts": command["ts"], "ok": True}
        await client.publish(gate_topic(self.prefix, device, "ack"), json.dumps(ack), qos=1)
        return command

    async def read(  # noqa: PLR0913 -- one read as a camera sends it
        self,
        client: aiomqtt.Client,
        device: str,
        lane: str,
        plate: str,
        ts: datetime,
        *,
        confidence: float = 0.97,
        twice: bool = False,
    ) -> dict[str, Any]:
        """Publish a plate read (twice if asked) and return its command; record what came back."""
        seq = self._next_seq(device)
        body = {"seq": seq, "ts": ts.isoformat(), "lane": lane, "plate": plate, "plate_color": "blue"}
        payload = json.dumps(body | {"confidence": confidence}, ensure_ascii=False)
        topic = gate_topic(self.prefix, device, "plate")
        self.truth.reads += 1
        ids = self.truth.commands.setdefault((device, seq), set())
        await client.publish(topic, payload, qos=1)
        command = await self._command(client, device)
        ids.add(command["command_id"])
        if twice:  # redelivered: the same command comes again
            await client.publish(topic, payload, qos=1)
            ids.add((await self._command(client, device, command["command_id"]))["command_id"])
        return command

    async def passage(self, client: aiomqtt.Client, device: str, lane: str, ts: datetime) -> None:
        """Publish a passage of the gate's loop."""
        body = {"seq": self._next_seq(device), "ts": ts.isoformat(), "lane": lane}
        await client.publish(gate_topic(self.prefix, device, "passage"), json.dumps(body), qos=1)

    async def arrive(self, client: aiomqtt.Client, v: Visit) -> None:
        """A car at the entry: read (maybe unsure, maybe twice), re-read if asked, pass or turn away."""
        _, entry, _ = self.lots[v.lot]
        confidence = 0.5 if v.unsure_entry else 0.97
        command = await self.read(
            client, entry, "entry", v.plate, v.arrive, confidence=confidence, twice=v.duplicate
        )
        v.reasons.append(command["reason"])
        ts = v.arrive
        if command["action"] == "hold" and command["reason"] == "low_confidence":
            ts = v.arrive + timedelta(seconds=10)
            command = await self.read(client, entry, "entry", v.plate, ts)
            v.reasons.append(command["reason"])
        if command["action"] != "open":
            v.outcome = Outcome.REFUSED
            return
        v.entry_ts = ts
        if v.no_passage:
            v.outcome = Outcome.CANCELLED
            return
        await self.passage(client, entry, "entry", ts + timedelta(seconds=4))
        if v.tailgater:
            self.truth.tailgaters += 1
            await self.passage(client, entry, "entry", ts + timedelta(seconds=7))
        v.outcome = Outcome.INSIDE

    async def depart(self, client: aiomqtt.Client, v: Visit) -> None:
        """A car at the exit: read (maybe misread), re-read when unsure, pass when the gate opens."""
        _, _, exit_ = self.lots[v.lot]
        shown = misread(v.plate, random.Random(v.plate)) if v.misread_exit else v.plate
        command = await self.read(
            client, exit_, "exit", shown, v.leave, confidence=0.6 if v.misread_exit else 0.97
        )
        v.reasons.append(command["reason"])
        ts = v.leave
        if command["action"] == "hold" and command["reason"] == "low_confidence":
            ts = v.leave + timedelta(seconds=10)
            command = await self.read(client, exit_, "exit", v.plate, ts)
            v.reasons.append(command["reason"])
        elif v.misread_exit and command["action"] == "open":
            self.truth.misreads_matched += 1
        if command["action"] != "open":
            return  # held: the driver calls staff, the car stays
        v.outcome, v.exit_ts, v.amount_fen = Outcome.STAYED, ts, command["amount_fen"]
        await self.passage(client, exit_, "exit", ts + timedelta(seconds=4))
        if v.tailgater:
            await self.passage(client, exit_, "exit", ts + timedelta(seconds=7))

    async def run(
        self, client: aiomqtt.Client, visits: list[Visit], until: datetime | None = None
    ) -> GateTruth:
        """Play *visits* in time order (those before *until*); return the ground truth."""
        await client.subscribe(f"{self.prefix}/gates/+/command", qos=1)
        listener = asyncio.create_task(self.listen(client))
        events = sorted(
            [(v.arrive, 0, i) for i, v in enumerate(visits)] + [(v.leave, 1, i) for i, v in enumerate(visits)]
        )
        try:
            for at, kind, i in events:
                if until is not None and at >= until:
                    break
                v = visits[i]
                if kind == 0:
                    await self.arrive(client, v)
                elif v.outcome is Outcome.INSIDE:
                    await self.depart(client, v)
        finally:
            listener.cancel()
        self.truth.visits = visits
        return self.truth
