"""Gate decisions as values: every entry and exit reason, the display texts, the pure ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from parking_core.gate_decisions import (
    EntryContext,
    ExitOptions,
    InsideSession,
    SessionEffect,
    StayCharge,
    decide_entry,
    decide_exit,
    decide_unmatched_exit,
)
from parking_core.gates import (
    Action,
    GateEventKind,
    GatePolicy,
    Lane,
    NoEntryPolicy,
    PlateRead,
    Reason,
    display_text,
)
from parking_core.ids import DeviceId, LotId
from parking_core.plate_matching import AmbiguousMatch, NoMatch

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)
PLATE = "豫A12345"


def read(lane: Lane = Lane.ENTRY, plate: str = PLATE, confidence: float = 0.95, at: int = 0) -> PlateRead:
    return PlateRead(
        DeviceId("g1"), LotId("l1"), 1, T0 + timedelta(minutes=at), lane, plate, confidence=confidence
    )


def test_entry_opens_when_there_is_room_and_holds_when_full() -> None:
    """Room is capacity minus inside minus held spots (the reservations hook)."""
    opened = decide_entry(read(), GatePolicy(), EntryContext(capacity=10, inside=9))
    assert (opened.command.action, opened.command.reason) == (Action.OPEN, Reason.ENTRY)
    assert opened.effect is SessionEffect.OPEN_PENDING
    held = decide_entry(read(), GatePolicy(), EntryContext(capacity=10, inside=9, held_spots=1))
    assert (held.command.action, held.command.reason, held.effect) == (
        Action.HOLD,
        Reason.FULL,
        SessionEffect.NONE,
    )
    reserved = EntryContext(capacity=10, inside=9, held_spots=1, reserved_for_plate=True)
    assert decide_entry(read(), GatePolicy(), reserved).command.reason is Reason.RESERVED


def test_a_shared_lots_public_quota_holds_the_public_only() -> None:
    """Quota 3 with 3 public cars in (or held for others): the public is held `quota_full` though
    the lot has room; members (no quota applies) and the plate holding a space enter; a car of the
    public entering again frees its own place; a full lot says `full` first."""
    used_up = EntryContext(capacity=10, inside=5, public_quota=3, public_taken=3)
    held = decide_entry(read(), GatePolicy(), used_up)
    assert (held.command.action, held.command.reason, held.effect) == (
        Action.HOLD,
        Reason.QUOTA_FULL,
        SessionEffect.NONE,
    )
    assert held.command.display == f"{PLATE} 共享车位已满"
    member = EntryContext(capacity=10, inside=5)  # the store sets no quota for a member
    assert decide_entry(read(), GatePolicy(), member).command.reason is Reason.ENTRY
    mine = EntryContext(capacity=10, inside=5, reserved_for_plate=True, public_quota=3, public_taken=3)
    assert decide_entry(read(), GatePolicy(), mine).command.reason is Reason.RESERVED
    room_left = EntryContext(capacity=10, inside=5, public_quota=3, public_taken=2)
    assert decide_entry(read(), GatePolicy(), room_left).command.reason is Reason.ENTRY
    own = InsideSession("s1", PLATE, pending=False, started_at=T0)
    again = EntryContext(capacity=10, inside=5, plate_session=own, public_quota=3, public_taken=3)
    assert decide_entry(read(), GatePolicy(), again).command.reason is Reason.ENTRY
    full = EntryContext(capacity=5, inside=5, public_quota=3, public_taken=3)
    assert decide_entry(read(), GatePolicy(), full).command.reason is Reason.FULL


def test_deny_list_low_confidence_and_arrears_hold() -> None:
    """Each refusal names its reason; low confidence comes first (the plate itself is in doubt)."""
    deny = GatePolicy(deny_list=frozenset({PLATE}))
    assert decide_entry(read(), deny, EntryContext(10, 0)).command.reason is Reason.BLACKLISTED
    assert (
        decide_entry(read(confidence=0.5), deny, EntryContext(10, 0)).command.reason is Reason.LOW_CONFIDENCE
    )
    owing = GatePolicy(arrears_limit_fen=0)
    assert decide_entry(read(), owing, EntryContext(10, 0, arrears_fen=1)).command.reason is Reason.ARREARS
    assert (
        decide_entry(read(), GatePolicy(), EntryContext(10, 0, arrears_fen=1)).command.action is Action.OPEN
    )


def test_a_re_read_of_a_pending_plate_reuses_its_session_even_when_full() -> None:
    """The same car still at the barrier: the same session, the gate opens again."""
    own = InsideSession("s1", PLATE, pending=True, started_at=T0)
    decision = decide_entry(read(), GatePolicy(), EntryContext(capacity=1, inside=1, plate_session=own))
    assert (decision.command.action, decision.effect, decision.session_id) == (
        Action.OPEN,
        SessionEffect.REUSE,
        "s1",
    )


def test_entering_again_while_inside_supersedes_and_flags_the_missed_exit() -> None:
    """The old session's place is freed and operators hear of the missed exit."""
    own = InsideSession("s1", PLATE, pending=False, started_at=T0)
    decision = decide_entry(read(), GatePolicy(), EntryContext(capacity=1, inside=1, plate_session=own))
    assert decision.command.action is Action.OPEN
    assert [e.kind for e in decision.events] == [GateEventKind.EXIT_MISSING]


def test_exit_free_paid_pay_later_and_payment_due() -> None:
    """Free within free minutes, paid when paid ahead, pay later when allowed, else hold with amount."""
    exit_read = read(Lane.EXIT, at=185)
    free = decide_exit(exit_read, StayCharge("s1", PLATE, T0, 0), 1.0)
    assert (free.command.action, free.command.reason, free.effect) == (
        Action.OPEN,
        Reason.FREE,
        SessionEffect.CLOSE,
    )
    paid = decide_exit(exit_read, StayCharge("s1", PLATE, T0, 1200, paid_fen=1200), 1.0)
    assert (paid.command.reason, paid.command.amount_fen) == (Reason.PAID, 1200)
    later = decide_exit(exit_read, StayCharge("s1", PLATE, T0, 1200), 1.0, ExitOptions(pay_later=True))
    assert later.command.display == "豫A12345 3小时05分 ¥12.00 已记账"
    due = decide_exit(exit_read, StayCharge("s1", PLATE, T0, 1200, paid_fen=200), 0.85)
    assert (due.command.action, due.command.reason, due.command.amount_fen, due.effect) == (
        Action.HOLD,
        Reason.PAYMENT_DUE,
        1000,
        SessionEffect.NONE,
    )
    assert due.command.display == "豫A12345 3小时05分 ¥10.00 请缴费"


def test_an_exit_refused_pay_later_for_arrears_or_the_deny_list_says_why() -> None:
    """The money rules' refusal is the hold's reason; the amount and 请缴费 stay on the display."""
    exit_read = read(Lane.EXIT, at=185)
    for why in (Reason.ARREARS, Reason.BLACKLISTED):
        held = decide_exit(exit_read, StayCharge("s1", PLATE, T0, 1200), 1.0, ExitOptions(held_for=why))
        assert (held.command.action, held.command.reason, held.command.amount_fen) == (Action.HOLD, why, 1200)
        assert held.command.display == "豫A12345 3小时05分 ¥12.00 请缴费"
        assert held.effect is SessionEffect.NONE
    free = decide_exit(exit_read, StayCharge("s1", PLATE, T0, 0), 1.0, ExitOptions(held_for=Reason.ARREARS))
    assert free.command.reason is Reason.FREE  # nothing to pay: nothing to hold for


def test_no_entry_record_refers_or_charges_the_lot_fee() -> None:
    """Refer holds with no amount; charge holds with the fee (or opens when the fee is 0)."""
    exit_read = read(Lane.EXIT)
    refer = decide_unmatched_exit(exit_read, NoMatch(), GatePolicy())
    assert (refer.command.action, refer.command.reason, refer.command.amount_fen) == (
        Action.HOLD,
        Reason.NO_ENTRY_RECORD,
        0,
    )
    charge = GatePolicy(no_entry_record=NoEntryPolicy.CHARGE, no_entry_fee_fen=2000)
    fee = decide_unmatched_exit(exit_read, NoMatch(), charge)
    assert (fee.command.action, fee.command.amount_fen, fee.effect) == (
        Action.HOLD,
        2000,
        SessionEffect.NO_ENTRY_SESSION,
    )
    assert fee.command.display == "豫A12345 ¥20.00 请缴费"
    zero = decide_unmatched_exit(exit_read, NoMatch(), GatePolicy(no_entry_record=NoEntryPolicy.CHARGE))
    assert zero.command.action is Action.OPEN


def test_an_ambiguous_exit_holds_for_a_re_read_and_tells_operators() -> None:
    """Two sessions matching equally: nobody is charged on a guess."""
    decision = decide_unmatched_exit(read(Lane.EXIT), AmbiguousMatch(("a", "b"), 0.85), GatePolicy())
    assert decision.command.reason is Reason.LOW_CONFIDENCE
    assert decision.events[0].kind is GateEventKind.AMBIGUOUS_PLATE
    assert decision.events[0].detail["candidates"] == "a,b"


def test_display_text_follows_the_contract_example() -> None:
    """CONTRACT.md: ``豫A12345 3小时05分 ¥12.00 已记账``; short stays show minutes only."""
    assert display_text(PLATE, Reason.PAY_LATER, timedelta(hours=3, minutes=5), 1200) == (
        "豫A12345 3小时05分 ¥12.00 已记账"
    )
    assert (
        display_text(PLATE, Reason.FREE, timedelta(minutes=9, seconds=59), 0)
        == "豫A12345 9分 ¥0.00 免费 一路顺风"
    )
