"""A pure model of the gate path's ledger: reads, passages and expiry in, commands and sessions out.

The gateway's SQL store does the same in the database; tests feed both the same stream and compare.
Idempotent by ``(device_id, seq)``: a redelivered read gets the very command it got the first time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from parking_core.gate_decisions import (
    Decision,
    EntryContext,
    ExitOptions,
    InsideSession,
    SessionEffect,
    StayCharge,
    decide_entry,
    decide_exit,
    decide_unmatched_exit,
    match_exit,
)
from parking_core.gates import Action, GateEvent, GateEventKind, GatePolicy, Lane, Passage, PlateRead
from parking_core.ids import DeviceId, LotId
from parking_core.plate_matching import PlateMatch
from parking_core.sessions import SessionState

# An amount charged at an instant (the tariff engine's TimedCharge, as a plain pair).
Charge = tuple[datetime, int]
# price(entry, exit, plate, the plate's earlier charges at the lot) -> (fen, this stay's charges):
# the gateway passes the tariff engine, so the daily cap counts across stays.
PriceStay = Callable[[datetime, datetime, str, list[Charge]], tuple[int, list[Charge]]]
# Earlier stays ending this long before an entry still count against its daily cap.
EARLIER_LOOKBACK = timedelta(days=2)


@dataclass(slots=True)
class LedgerSession:
    """A session as the model keeps it (the columns the SQL store's sessions table compares on)."""

    session_id: str
    lot_id: LotId
    plate: str
    state: SessionState
    started_at: datetime
    ended_at: datetime | None = None
    amount_fen: int | None = None
    paid_fen: int = 0
    no_entry: bool = False
    entry_device: DeviceId | None = None
    charges: list[Charge] = field(default_factory=list)


@dataclass(slots=True)
class _OpenCommand:
    device_id: DeviceId
    ts: datetime  # the read's own ts (the gate's clock): its passage is matched on that clock
    decided_at: datetime  # when the gateway received the read: the pending window runs from here
    plate: str | None
    session_id: str | None
    passed: bool = False


@dataclass(slots=True)
class GateLedger:
    """Sessions and commands of gated lots, built from gate messages in arrival order."""

    capacity: dict[LotId, int]
    price: PriceStay
    policies: dict[LotId, GatePolicy] = field(default_factory=dict)
    sessions: dict[str, LedgerSession] = field(default_factory=dict)
    decisions: dict[tuple[DeviceId, int], Decision] = field(default_factory=dict)
    passages: set[tuple[DeviceId, int]] = field(default_factory=set)
    events: list[GateEvent] = field(default_factory=list)
    _awaiting: list[_OpenCommand] = field(default_factory=list)

    def policy(self, lot_id: LotId) -> GatePolicy:
        """Return a lot's gate policy (defaults when it has none)."""
        return self.policies.get(lot_id, GatePolicy())

    def inside(self, lot_id: LotId) -> list[InsideSession]:
        """Return the lot's pending and open sessions, oldest first."""
        inside = [
            InsideSession(s.session_id, s.plate, s.state is SessionState.PENDING, s.started_at)
            for s in self.sessions.values()
            if s.lot_id == lot_id and s.state in {SessionState.PENDING, SessionState.OPEN}
        ]
        return sorted(inside, key=lambda s: (s.started_at, s.session_id))

    def read(self, read: PlateRead, received_at: datetime | None = None) -> Decision:
        """Decide a plate read once; a repeated ``(device_id, seq)`` gets the first decision.

        *received_at* is when the gateway received the read (its clock; the read's own ts when
        omitted): an open command waits for its passage from then, so a late upload keeps its window.
        """
        key = (read.device_id, read.seq)
        if key in self.decisions:
            return self.decisions[key]
        decision = self._entry(read) if read.lane is Lane.ENTRY else self._exit(read)
        self.decisions[key] = decision
        self.events.extend(decision.events)
        if decision.command.action is Action.OPEN:
            decided_at = read.ts if received_at is None else received_at
            self._awaiting.append(
                _OpenCommand(read.device_id, read.ts, decided_at, read.plate, decision.session_id)
            )
        return decision

    def _entry(self, read: PlateRead) -> Decision:
        inside = self.inside(read.lot_id)
        own = next((s for s in inside if s.plate == read.plate), None)
        context = EntryContext(self.capacity[read.lot_id], len(inside), own)
        decision = decide_entry(read, self.policy(read.lot_id), context)
        if decision.effect is SessionEffect.OPEN_PENDING:
            if own is not None:  # exit missed: the old stay ends unpriced, for operators
                old = self.sessions[own.session_id]
                old.state, old.ended_at = SessionState.CLOSED, read.ts
            session_id = f"{read.device_id}:{read.seq}"
            self.sessions[session_id] = LedgerSession(
                session_id,
                read.lot_id,
                read.plate,
                SessionState.PENDING,
                read.ts,
                entry_device=read.device_id,
            )
            decision = replace(decision, session_id=session_id)
        return decision

    def _exit(self, read: PlateRead) -> Decision:
        policy = self.policy(read.lot_id)
        inside = self.inside(read.lot_id)
        match = match_exit(read, inside, policy)
        if not isinstance(match, PlateMatch):
            decision = decide_unmatched_exit(read, match, policy)
            if decision.effect is SessionEffect.NO_ENTRY_SESSION:
                session_id = f"{read.device_id}:{read.seq}"
                self.sessions[session_id] = LedgerSession(
                    session_id,
                    read.lot_id,
                    read.plate,
                    SessionState.OPEN,
                    read.ts,
                    amount_fen=policy.no_entry_fee_fen,
                    no_entry=True,
                )
                decision = replace(decision, session_id=session_id)
            return decision
        session = next(self.sessions[s.session_id] for s in inside if s.plate == match.plate)
        charges: list[Charge] = []
        if session.no_entry:
            amount = session.amount_fen or 0
        else:
            earlier = self.earlier_charges(session, read.ts)
            amount, charges = self.price(session.started_at, read.ts, session.plate, earlier)
        charge = StayCharge(session.session_id, session.plate, session.started_at, amount, session.paid_fen)
        decision = decide_exit(read, charge, match.score, ExitOptions())
        if decision.effect is SessionEffect.CLOSE:
            session.state, session.ended_at, session.amount_fen = SessionState.PRICED, read.ts, amount
            session.charges = charges
            if charge.due_fen == 0:
                session.state = SessionState.PAID
        return decision

    def earlier_charges(self, session: LedgerSession, until: datetime) -> list[Charge]:
        """Return the charges of the plate's earlier priced stays at the lot (for the daily cap)."""
        since = session.started_at - EARLIER_LOOKBACK
        return [
            charge
            for s in self.sessions.values()
            if s.plate == session.plate and s.lot_id == session.lot_id and not s.no_entry
            if s.ended_at is not None and since < s.ended_at <= until and s.amount_fen is not None
            for charge in s.charges
        ]

    def pay(self, session_id: str, amount_fen: int) -> None:
        """Record a payment at a pay station on an open session."""
        self.sessions[session_id].paid_fen += amount_fen

    def passage(self, passage: Passage) -> list[GateEvent]:
        """Confirm the oldest open command of that gate still awaiting its vehicle, or tailgating."""
        key = (passage.device_id, passage.seq)
        if key in self.passages:
            return []
        self.passages.add(key)
        window = self.policy(passage.lot_id).pending_window
        waiting = [
            c
            for c in self._awaiting
            if c.device_id == passage.device_id and not c.passed and c.ts <= passage.ts <= c.ts + window
        ]
        if passage.plate is not None:
            waiting = [c for c in waiting if c.plate == passage.plate] or waiting
        if not waiting:
            event = GateEvent(
                GateEventKind.TAILGATING, passage.device_id, passage.lot_id, passage.ts, passage.plate
            )
            self.events.append(event)
            return [event]
        command = min(waiting, key=lambda c: c.ts)
        command.passed = True
        if command.session_id is not None and passage.lane is Lane.ENTRY:
            session = self.sessions[command.session_id]
            if session.state is SessionState.PENDING:
                session.state = SessionState.OPEN
        return []

    def expire(self, now: datetime, lot_of: Callable[[DeviceId], LotId]) -> list[GateEvent]:
        """Cancel pending entries and flag open commands whose passage never came within the window.

        *now* is the gateway's clock: the window runs from when the read was received, not its ts.
        """
        found: list[GateEvent] = []
        for command in self._awaiting:
            lot_id = lot_of(command.device_id)
            if command.passed or command.decided_at + self.policy(lot_id).pending_window >= now:
                continue
            command.passed = True  # flagged once
            session = self.sessions.get(command.session_id or "")
            if session is not None and session.state is SessionState.PENDING:
                session.state = SessionState.CANCELLED
            found.append(
                GateEvent(
                    GateEventKind.MISSING_PASSAGE,
                    command.device_id,
                    lot_id,
                    command.ts,
                    command.plate,
                    command.session_id,
                )
            )
        self.events.extend(found)
        return found
