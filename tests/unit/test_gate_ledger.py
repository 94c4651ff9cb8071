"""The pure gate ledger: redelivery and interleaving of lots change no session and no command."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given

from parking_core.gate_decisions import Decision
from parking_core.gate_ledger import GateLedger
from parking_core.gates import Action, GateEventKind, Lane, Passage, PlateRead, Reason
from parking_core.sessions import SessionState
from tests.strategies_gates import (
    CAPACITY,
    LOTS,
    T0,
    GateMessage,
    gate_device,
    interleaved,
    lot_of,
    price_by_hour,
)


def ledger() -> GateLedger:
    return GateLedger(dict.fromkeys(LOTS, CAPACITY), price_by_hour)


def feed(book: GateLedger, stream: list[GateMessage]) -> dict[tuple[str, int], Decision]:
    """Feed a stream; return the decision every read got, checking a repeat gets the same one."""
    answers: dict[tuple[str, int], Decision] = {}
    for message in stream:
        if isinstance(message, PlateRead):
            decision = book.read(message)
            key = (message.device_id, message.seq)
            assert answers.setdefault(key, decision) == decision
        else:
            book.passage(message)
    book.expire(T0 + timedelta(days=2), lot_of)
    return answers


def sessions(book: GateLedger) -> list[tuple[object, ...]]:
    return sorted(
        (s.lot_id, s.plate, s.state.value, s.started_at, s.ended_at, s.amount_fen)
        for s in book.sessions.values()
    )


@given(interleaved())
def test_redelivery_and_the_interleaving_of_lots_yield_the_same_sessions(
    streams: tuple[list[GateMessage], list[GateMessage]],
) -> None:
    """Each read answered once (a repeat gets the same command); sessions as if delivered once."""
    once, delivered = streams
    clean, noisy = ledger(), ledger()
    first = feed(clean, once)
    again = feed(noisy, delivered)
    assert first == again
    assert sessions(clean) == sessions(noisy)
    assert sorted(e.kind for e in clean.events) == sorted(e.kind for e in noisy.events)


@given(interleaved())
def test_never_more_inside_than_capacity_nor_two_sessions_of_a_plate(
    streams: tuple[list[GateMessage], list[GateMessage]],
) -> None:
    """The invariants the database enforces with constraints hold in the model after every message."""
    book = ledger()
    for message in streams[1]:
        if isinstance(message, PlateRead):
            book.read(message)
        else:
            book.passage(message)
        for lot in LOTS:
            inside = book.inside(lot)
            assert len(inside) <= CAPACITY
            assert len({s.plate for s in inside}) == len(inside)


def test_a_day_at_one_lot() -> None:
    """Entry, passage, misread exit matched, priced; a read without passage is cancelled."""
    lot = LOTS[0]
    entry, exit_ = gate_device(lot, Lane.ENTRY), gate_device(lot, Lane.EXIT)
    book = ledger()
    book.read(PlateRead(entry, lot, 1, T0, Lane.ENTRY, "豫A12340"))
    book.passage(Passage(entry, lot, 2, T0 + timedelta(seconds=5), Lane.ENTRY))
    book.read(PlateRead(entry, lot, 3, T0 + timedelta(minutes=1), Lane.ENTRY, "豫B88888"))
    leave = T0 + timedelta(hours=2, minutes=10)
    decision = book.read(PlateRead(exit_, lot, 1, leave, Lane.EXIT, "豫A1234O", confidence=0.7))
    assert (decision.command.action, decision.command.reason, decision.command.amount_fen) == (
        Action.HOLD,
        Reason.PAYMENT_DUE,
        900,
    )
    assert decision.match_score == 0.85
    session_id = decision.session_id
    assert session_id is not None
    book.pay(session_id, 900)
    paid = book.read(PlateRead(exit_, lot, 2, leave + timedelta(minutes=2), Lane.EXIT, "豫A12340"))
    assert (paid.command.action, paid.command.reason) == (Action.OPEN, Reason.PAID)
    book.passage(Passage(exit_, lot, 3, leave + timedelta(minutes=2, seconds=3), Lane.EXIT))
    book.expire(T0 + timedelta(hours=3), lot_of)
    states = {s.plate: s.state for s in book.sessions.values()}
    assert states == {"豫A12340": SessionState.PAID, "豫B88888": SessionState.CANCELLED}
    assert [e.kind for e in book.events] == [GateEventKind.MISSING_PASSAGE]
    assert book.passage(Passage(exit_, lot, 9, leave + timedelta(hours=1), Lane.EXIT))[0].kind is (
        GateEventKind.TAILGATING
    )


def test_the_pending_window_runs_from_the_receipt_not_the_reads_ts() -> None:
    """A read uploaded 3 h late is not expired by the next sweep; a minute past its window it is."""
    lot = LOTS[0]
    entry = gate_device(lot, Lane.ENTRY)
    book = ledger()
    received = T0 + timedelta(hours=3)
    book.read(PlateRead(entry, lot, 1, T0, Lane.ENTRY, "豫A12340"), received)
    assert book.expire(received + timedelta(seconds=1), lot_of) == []
    window = book.policy(lot).pending_window
    assert [e.plate for e in book.expire(received + window + timedelta(minutes=1), lot_of)] == ["豫A12340"]
    assert [s.state for s in book.sessions.values()] == [SessionState.CANCELLED]
