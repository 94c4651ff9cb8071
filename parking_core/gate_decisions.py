"""Gate decisions: what an entry or exit plate read gets, as a command value and events (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from parking_core.gates import (
    Action,
    Command,
    GateEvent,
    GateEventKind,
    GatePolicy,
    NoEntryPolicy,
    PlateRead,
    Reason,
    display_text,
)
from parking_core.plate_matching import AmbiguousMatch, MatchResult, NoMatch, PlateMatch, match_plate


@dataclass(frozen=True, slots=True)
class InsideSession:
    """A session of the lot that counts as inside (pending or open), as a decision needs it."""

    session_id: str
    plate: str
    pending: bool
    started_at: datetime


@dataclass(frozen=True, slots=True)
class EntryContext:
    """What an entry decision needs to know about the lot and the plate, loaded in one transaction.

    ``held_spots`` is the hook for reservations and sharing windows: spots promised to others at
    this moment, taken off the room. ``reserved_for_plate`` says this plate holds one of them.
    ``arrears_fen`` is what the plate owes (the money rules fill it in).
    """

    capacity: int
    inside: int  # pending + open sessions of the lot
    plate_session: InsideSession | None = None  # this plate's own inside session, if any
    held_spots: int = 0
    reserved_for_plate: bool = False
    arrears_fen: int = 0
    closed_to_public: bool = False  # a shared lot outside its windows, and this plate is no member
    # A shared lot inside a window, for a plate that is no member: the public quota now, and what of it
    # is taken (the public's inside sessions and the holds of other plates). None: no quota applies.
    public_quota: int | None = None
    public_taken: int = 0

    @property
    def room(self) -> int:
        """Return how many more vehicles may enter now."""
        return self.capacity - self.inside - self.held_spots

    @property
    def public_room(self) -> int | None:
        """Return how many more of the public may enter a shared lot now (None: not limited)."""
        return None if self.public_quota is None else self.public_quota - self.public_taken


class SessionEffect(StrEnum):
    """What a decision does to the ledger of sessions."""

    NONE = "none"
    OPEN_PENDING = "open_pending"  # a new session waits for its passage
    REUSE = "reuse"  # the plate is already pending here: the same session, the gate re-opens
    CLOSE = "close"  # the matched session closes, priced
    NO_ENTRY_SESSION = "no_entry_session"  # an exit with no entry opens a fee-only session


@dataclass(frozen=True, slots=True)
class Decision:
    """A decided plate read: the command, what it does to the sessions, and operator events."""

    command: Command
    effect: SessionEffect = SessionEffect.NONE
    session_id: str | None = None  # the session reused, superseded (entry) or closed (exit)
    match_score: float | None = None
    events: tuple[GateEvent, ...] = ()


def _hold(read: PlateRead, reason: Reason) -> Decision:
    return Decision(Command(Action.HOLD, reason, read.plate, 0, display_text(read.plate, reason)))


def _refusal(policy: GatePolicy, context: EntryContext) -> Reason | None:
    """Return why a new entry is refused before room is counted: arrears, or a shared lot's off hours."""
    if policy.arrears_limit_fen is not None and context.arrears_fen > policy.arrears_limit_fen:
        return Reason.ARREARS
    if context.closed_to_public and not context.reserved_for_plate:
        return Reason.NOT_PUBLIC
    return None


def _no_room(context: EntryContext, superseding: bool) -> Reason:
    """Return `full` when the lot has no room, `quota_full` when a shared lot's public quota is used
    up (for the public only), else `entry`. A plate superseding its own session frees that place.
    """
    freed = 1 if superseding else 0
    if context.room + freed <= 0:
        return Reason.FULL
    public_room = context.public_room
    if public_room is not None and public_room + freed <= 0:
        return Reason.QUOTA_FULL
    return Reason.ENTRY


def decide_entry(read: PlateRead, policy: GatePolicy, context: EntryContext) -> Decision:
    """Decide an entry read: deny list, confidence, re-read, arrears, reservation, room, a shared lot's
    public quota (docs/gates.md).
    """
    plate = read.plate
    if read.confidence < policy.min_confidence:
        return _hold(read, Reason.LOW_CONFIDENCE)
    if plate in policy.deny_list:
        return _hold(read, Reason.BLACKLISTED)
    own = context.plate_session
    if own is not None and own.pending:
        reason = Reason.RESERVED if context.reserved_for_plate else Reason.ENTRY
        command = Command(Action.OPEN, reason, plate, 0, display_text(plate, reason))
        return Decision(command, SessionEffect.REUSE, own.session_id)
    refusal = _refusal(policy, context)
    if refusal is not None:
        return _hold(read, refusal)
    reason = Reason.RESERVED if context.reserved_for_plate else _no_room(context, own is not None)
    if reason in {Reason.FULL, Reason.QUOTA_FULL}:
        return _hold(read, reason)
    events: tuple[GateEvent, ...] = ()
    if own is not None:  # in again without having left: its exit was missed
        events = (
            GateEvent(
                GateEventKind.EXIT_MISSING, read.device_id, read.lot_id, read.ts, plate, own.session_id
            ),
        )
    command = Command(Action.OPEN, reason, plate, 0, display_text(plate, reason))
    return Decision(command, SessionEffect.OPEN_PENDING, own.session_id if own else None, None, events)


def match_exit(read: PlateRead, inside: list[InsideSession], policy: GatePolicy) -> MatchResult:
    """Match an exit read to the lot's inside sessions: exact first, then tolerant (plate_matching)."""
    plates = [s.plate for s in inside]
    if read.plate in plates:
        return PlateMatch(read.plate, 1.0)
    return match_plate(read.plate, plates, policy.min_match_score)


@dataclass(frozen=True, slots=True)
class StayCharge:
    """The priced stay of a matched session (the tariff engine's amount, or a no-entry fee)."""

    session_id: str
    plate: str
    started_at: datetime
    amount_fen: int
    paid_fen: int = 0

    @property
    def due_fen(self) -> int:
        """Return what is still owed."""
        return max(0, self.amount_fen - self.paid_fen)


@dataclass(frozen=True, slots=True)
class ExitOptions:
    """Ways out without paying at the barrier; the money rules decide them per plate."""

    pay_later: bool = False  # the plate may leave first and pay later (invoice)
    # Why pay-later is refused when that is worth telling the driver (`arrears`, `blacklisted`):
    # the hold carries this reason instead of `payment_due`.
    held_for: Reason | None = None


def decide_unmatched_exit(read: PlateRead, match: MatchResult, policy: GatePolicy) -> Decision:
    """Decide an exit read that matched no single session: ambiguous, or the no-entry policy."""
    if isinstance(match, AmbiguousMatch):
        event = GateEvent(
            GateEventKind.AMBIGUOUS_PLATE,
            read.device_id,
            read.lot_id,
            read.ts,
            read.plate,
            detail={"candidates": ",".join(match.plates), "score": f"{match.score:.2f}"},
        )
        held = _hold(read, Reason.LOW_CONFIDENCE)
        return Decision(held.command, match_score=match.score, events=(event,))
    score = match.best_score if isinstance(match, NoMatch) else None
    if policy.no_entry_record is NoEntryPolicy.REFER:
        held = _hold(read, Reason.NO_ENTRY_RECORD)
        return Decision(held.command, match_score=score)
    fee = policy.no_entry_fee_fen
    action = Action.HOLD if fee else Action.OPEN
    text = display_text(read.plate, Reason.NO_ENTRY_RECORD, None, fee)
    command = Command(action, Reason.NO_ENTRY_RECORD, read.plate, fee, text)
    effect = SessionEffect.NO_ENTRY_SESSION if fee else SessionEffect.NONE
    return Decision(command, effect, match_score=score)


def decide_exit(
    read: PlateRead,
    charge: StayCharge,
    match_score: float,
    options: ExitOptions = ExitOptions(),
) -> Decision:
    """Decide an exit read matched to a priced stay: free, paid, pay later, or hold with the amount."""
    stay = max(timedelta(0), read.ts - charge.started_at)
    plate = charge.plate
    if charge.amount_fen == 0:
        reason, action, amount = Reason.FREE, Action.OPEN, 0
    elif charge.due_fen == 0:
        reason, action, amount = Reason.PAID, Action.OPEN, charge.amount_fen
    elif options.pay_later:
        reason, action, amount = Reason.PAY_LATER, Action.OPEN, charge.due_fen
    else:
        held = options.held_for or Reason.PAYMENT_DUE
        text = display_text(plate, Reason.PAYMENT_DUE, stay, charge.due_fen)  # pay here, whatever the why
        command = Command(Action.HOLD, held, plate, charge.due_fen, text)
        return Decision(command, SessionEffect.NONE, charge.session_id, match_score)
    command = Command(action, reason, plate, amount, display_text(plate, reason, stay, amount))
    return Decision(command, SessionEffect.CLOSE, charge.session_id, match_score)
