"""Session state machine and tolerant plate matching: examples and Hypothesis properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from parking_core.errors import IllegalTransitionError
from parking_core.ids import LotId
from parking_core.plate_matching import (
    CONFUSION_GROUPS,
    AmbiguousMatch,
    NoMatch,
    PlateMatch,
    match_plate,
    plate_penalty,
    plate_score,
)
from parking_core.sessions import TRANSITIONS, Session, SessionKind, SessionState

T0 = datetime(2026, 11, 23, 8, tzinfo=UTC)


def session(state: SessionState) -> Session:
    return Session("s1", LotId("l1"), SessionKind.GATE, state, T0, plate="豫A12345")


@given(st.sampled_from(list(SessionState)), st.sampled_from(list(SessionState)))
def test_every_illegal_transition_is_refused_by_name(current: SessionState, target: SessionState) -> None:
    """A move not in the table raises IllegalTransitionError naming the session and both states."""
    if target in TRANSITIONS[current]:
        assert session(current).move(target).state is target
        return
    with pytest.raises(IllegalTransitionError) as caught:
        session(current).move(target)
    assert (caught.value.session_id, caught.value.current, caught.value.target) == (
        "s1",
        current.value,
        target.value,
    )


def test_a_gate_stay_goes_pending_open_closed_priced_paid() -> None:
    """The happy path, with the amount due after a pay-station payment."""
    s = session(SessionState.PENDING).confirm().close(T0 + timedelta(hours=2)).price(1200)
    assert (s.state, s.ended_at, s.due_fen) == (SessionState.PRICED, T0 + timedelta(hours=2), 1200)
    assert s.settle().state is SessionState.PAID
    with pytest.raises(IllegalTransitionError):
        s.settle().close(T0)


def test_paid_and_written_off_are_final_and_cancelled_never_opens() -> None:
    """Final states have no way out."""
    for final in (SessionState.PAID, SessionState.WRITTEN_OFF, SessionState.CANCELLED):
        assert TRANSITIONS[final] == frozenset()
    with pytest.raises(IllegalTransitionError):
        session(SessionState.CANCELLED).confirm()


@pytest.mark.parametrize(
    ("read", "known", "penalty"),
    [
        ("豫A12345", "豫A12345", 0),
        ("京A12345", "豫A12345", 1),  # province character
        ("豫A1234O", "豫A12340", 1),  # O for 0
        ("豫AD2345", "豫A02345", 1),  # D for 0
        ("豫A8234S", "豫AB2345", 2),  # 8/B and S/5
        ("豫AI2Z45", "豫A12245", 2),  # I/1 and Z/2
        ("豫A1245", "豫A12345", 1),  # one character missing
        ("A12345", "豫A12345", 1),  # the province character missing
        ("豫A12346", "豫A12345", None),  # 6 and 5 are not confused
        ("豫A125", "豫A12345", None),  # two missing
    ],
)
def test_known_confusions_cost_one_each(read: str, known: str, penalty: int | None) -> None:
    """Each confusion or the missing character costs one; anything else is no match."""
    assert plate_penalty(read, known) == penalty


plates = st.text(alphabet="豫京A0OD8B1I2Z5S3479X", min_size=5, max_size=8)


@given(plates, plates)
def test_matching_is_symmetric_in_the_confusions(a: str, b: str) -> None:
    """score(a, b) == score(b, a) for any two strings."""
    assert plate_penalty(a, b) == plate_penalty(b, a)
    assert plate_score(a, b) == plate_score(b, a)


@given(plates, st.lists(plates, max_size=8))
def test_matching_never_picks_between_equally_good_plates(read: str, known: list[str]) -> None:
    """A match is strictly better than every other candidate; a tie is AmbiguousMatch."""
    result = match_plate(read, known)
    scores = {k: plate_score(read, k) for k in known}
    if isinstance(result, PlateMatch):
        assert all(s < result.score for k, s in scores.items() if k != result.plate)
        assert scores[result.plate] == result.score
    elif isinstance(result, AmbiguousMatch):
        assert len(result.plates) >= 2
        assert all(scores[p] == result.score for p in result.plates)
        assert max(scores.values()) == result.score
    else:
        assert isinstance(result, NoMatch)
        assert all(s < 0.7 for s in scores.values())


def test_a_misread_matches_the_one_session_and_a_tie_matches_none() -> None:
    """豫A1234O is 豫A12340; with 豫A1234D also inside nobody is chosen."""
    assert match_plate("豫A1234O", ["豫A12340", "豫B99999"]) == PlateMatch("豫A12340", 0.85)
    tie = match_plate("豫A1234O", ["豫A12340", "豫A1234D"])
    assert isinstance(tie, AmbiguousMatch)
    assert tie.plates == ("豫A12340", "豫A1234D")


def test_three_confusions_fall_below_the_minimum() -> None:
    """Three confusions score 0.55 < 0.7: no match."""
    result = match_plate("京A8Z345", ["豫AB2345"])
    assert isinstance(result, NoMatch)
    assert result.best_score == pytest.approx(0.55)


def test_confusion_groups_are_disjoint() -> None:
    """A character belongs to one group only, so shape classes are well defined."""
    chars = "".join(CONFUSION_GROUPS)
    assert len(chars) == len(set(chars))
