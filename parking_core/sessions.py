"""Parking sessions: one ledger for gate and bay stays, a state machine refusing illegal moves."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from parking_core.errors import IllegalTransitionError, NaiveTimeError
from parking_core.ids import LotId, SpotId


class SessionState(StrEnum):
    """Where a session is in its life (docs/gates.md draws the machine)."""

    PENDING = "pending"  # a gate opened for an entry read; the passage has not been seen yet
    CANCELLED = "cancelled"  # no passage followed the entry read within the lot's window
    OPEN = "open"  # the vehicle is in: gate passage, or a bay sensor turned occupied
    CLOSED = "closed"  # the vehicle left (exit read, or the bay turned free); not priced yet
    PRICED = "priced"  # the tariff engine priced the stay; amount_fen is final
    INVOICED = "invoiced"  # billed after leaving (pay later)
    PAID = "paid"  # settled in full
    IN_ARREARS = "in_arrears"  # an invoice is overdue
    WRITTEN_OFF = "written_off"  # given up on, with a reason


class SessionKind(StrEnum):
    """How a session is counted: at a lot's gates, or at one bay by its sensor."""

    GATE = "gate"
    BAY = "bay"


# Every legal move; anything else raises IllegalTransitionError naming both states.
TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.PENDING: frozenset({SessionState.OPEN, SessionState.CANCELLED}),
    SessionState.CANCELLED: frozenset(),
    SessionState.OPEN: frozenset({SessionState.CLOSED}),
    SessionState.CLOSED: frozenset({SessionState.PRICED}),
    SessionState.PRICED: frozenset({SessionState.INVOICED, SessionState.PAID}),
    SessionState.INVOICED: frozenset({SessionState.PAID, SessionState.IN_ARREARS}),
    SessionState.IN_ARREARS: frozenset({SessionState.PAID, SessionState.WRITTEN_OFF}),
    SessionState.PAID: frozenset(),
    SessionState.WRITTEN_OFF: frozenset(),
}
# States in which a vehicle counts as inside (and holds the lot's one-session-per-plate slot).
INSIDE = frozenset({SessionState.PENDING, SessionState.OPEN})


def check_transition(session_id: str, current: SessionState, target: SessionState) -> None:
    """Raise IllegalTransitionError unless *current* may move to *target*."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransitionError(session_id, current.value, target.value)


@dataclass(frozen=True, slots=True)
class Session:
    """One stay of one vehicle: at a gated lot (plate known) or at one bay (plate when attached)."""

    session_id: str
    lot_id: LotId
    kind: SessionKind
    state: SessionState
    started_at: datetime
    plate: str | None = None
    spot_id: SpotId | None = None
    ended_at: datetime | None = None
    amount_fen: int | None = None
    paid_fen: int = 0

    def __post_init__(self) -> None:
        for name in ("started_at", "ended_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise NaiveTimeError(f"session {name}")

    def move(self, target: SessionState) -> Session:
        """Return the session in *target* state, or raise IllegalTransitionError."""
        check_transition(self.session_id, self.state, target)
        return replace(self, state=target)

    def confirm(self) -> Session:
        """A passage (or the bay sensor) confirmed the vehicle is in: pending → open."""
        return self.move(SessionState.OPEN)

    def cancel(self) -> Session:
        """No passage followed the entry read: pending → cancelled."""
        return self.move(SessionState.CANCELLED)

    def close(self, at: datetime) -> Session:
        """The vehicle left at *at*: open → closed."""
        if at.utcoffset() is None:
            raise NaiveTimeError("session end")
        return replace(self.move(SessionState.CLOSED), ended_at=max(at, self.started_at))

    def price(self, amount_fen: int) -> Session:
        """The stay was priced: closed → priced."""
        if amount_fen < 0:
            raise ValueError("a stay never costs less than nothing")
        return replace(self.move(SessionState.PRICED), amount_fen=amount_fen)

    def settle(self) -> Session:
        """Paid in full (at the gate, a pay station, or an invoice): priced/invoiced/in_arrears → paid."""
        return self.move(SessionState.PAID)

    @property
    def is_inside(self) -> bool:
        """Tell whether the vehicle counts as inside the lot."""
        return self.state in INSIDE

    @property
    def due_fen(self) -> int:
        """Return what is still owed on a priced stay (0 before pricing)."""
        return max(0, (self.amount_fen or 0) - self.paid_fen)
