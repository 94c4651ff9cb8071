"""Payment notifications: the signature, its refusals, and the notify procedure under hostile delivery."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import given

from billing.errors import NotificationRefusedError
from billing.ledger import Balance, EntryKind, LedgerEntry
from billing.notify import Capture, SignedHeaders, parse_notification, sign, verify
from billing.payment_book import PaymentBook
from billing.payments import NotifyAnswer, PaymentOrder
from tests.strategies_money import SECRET, T0, World, capture_body, signed, worlds

DOC_BODY = (
    b'{"id":"EV-1","event_type":"TRANSACTION.SUCCESS","resource":{"transaction_id":"4200000001",'
    b'"out_trade_no":"pay_0001","trade_state":"SUCCESS","amount":{"total":1200,"currency":"CNY"},'
    b'"success_time":"2026-11-23T10:15:00+08:00"}}'
)


def test_the_worked_example_of_docs_money_md() -> None:
    """The signature printed in docs/money.md is what `sign` computes."""
    signature = sign(b"test-payment-secret", "1795400100", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", DOC_BODY)
    assert signature == "c756589886a33c4a79ffd4909f754c1563d8f3f800804d7b9d616d08bf899ce7"
    headers = SignedHeaders("1795400100", "5K8264ILTKCH16CQ2502SI8ZNMTM67VS", signature)
    assert verify(b"test-payment-secret", headers, DOC_BODY, T0) == "5K8264ILTKCH16CQ2502SI8ZNMTM67VS"
    capture = parse_notification(DOC_BODY)
    assert isinstance(capture, Capture)
    assert (capture.transaction_id, capture.payment_id, capture.amount_fen) == (
        "4200000001",
        "pay_0001",
        1200,
    )


@pytest.mark.parametrize(
    ("headers", "body", "reason"),
    [
        (SignedHeaders(None, "n", "s"), DOC_BODY, "missing_signature"),
        (SignedHeaders("17954x", "n", "s"), DOC_BODY, "bad_timestamp"),
        (SignedHeaders("1795400100", "n" * 65, "s"), DOC_BODY, "bad_nonce"),
        (signed(DOC_BODY, T0, "n"), DOC_BODY + b" ", "bad_signature"),
        (signed(DOC_BODY, T0, "n", b"other secret"), DOC_BODY, "bad_signature"),
        (signed(DOC_BODY, T0 - timedelta(minutes=5, seconds=1), "n"), DOC_BODY, "stale_timestamp"),
        (signed(DOC_BODY, T0 + timedelta(minutes=5, seconds=1), "n"), DOC_BODY, "stale_timestamp"),
        (SignedHeaders("1795400100", "n", "名字"), DOC_BODY, "bad_signature"),
    ],
)
def test_forged_stale_and_malformed_signatures_are_refused_by_reason(
    headers: SignedHeaders, body: bytes, reason: str
) -> None:
    with pytest.raises(NotificationRefusedError) as refused:
        verify(SECRET, headers, body, T0)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "not JSON"),
        (b"[]", "event_type is required"),
        (DOC_BODY.replace(b'"total":1200', b'"total":12.5'), "resource.amount.total"),
        (DOC_BODY.replace(b'"total":1200', b'"total":true'), "resource.amount.total"),
        (DOC_BODY.replace(b"CNY", b"USD"), "currency"),
        (DOC_BODY.replace(b'"SUCCESS"', b'"NOTPAY"'), "trade_state"),
        (DOC_BODY.replace(b"+08:00", b""), "offset"),
        (DOC_BODY.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.CLOSED"), "unknown event_type"),
    ],
)
def test_bodies_that_are_not_a_capture_are_refused_naming_the_field(body: bytes, field: str) -> None:
    with pytest.raises(NotificationRefusedError, match=field):
        parse_notification(body)


def book_for(world: World) -> PaymentBook:
    book = PaymentBook(SECRET)
    for index, amount in enumerate(world.invoices):
        book.record(LedgerEntry(f"inv_{index}", EntryKind.INVOICED, amount, T0))
    for index, invoice in enumerate(world.orders):
        order_id = f"pay_{index}"
        amount = world.invoices[invoice]
        book.orders[order_id] = PaymentOrder(order_id, f"inv_{invoice}", "wechatpay", amount, T0, T0)
    return book


def deliver(book: PaymentBook, world: World) -> tuple[set[str], list[tuple[str, NotifyAnswer, int]]]:
    """Deliver every drawn delivery; return the genuine transactions delivered fresh, and each answer."""
    sent: list[tuple[SignedHeaders, bytes]] = []
    fresh: set[str] = set()
    answers: list[tuple[str, NotifyAnswer, int]] = []
    for number, delivery in enumerate(world.deliveries):
        capture = world.captures[delivery.capture]
        body = capture_body(
            f"EV-{number}", capture.transaction_id, f"pay_{capture.order}", capture.amount_fen
        )
        now = T0 + timedelta(seconds=delivery.delay_s)
        how = "fresh" if delivery.how == "replay" and not sent else delivery.how
        headers = signed(body, now, f"nonce-{number}")
        if how == "stale":
            headers = signed(body, now - timedelta(minutes=6), f"nonce-{number}")
        elif how == "forged":
            headers = signed(body, now, f"nonce-{number}", b"guessed")
        elif how == "tampered":
            body = body.replace(b'"total": ', b'"total": 1')
        elif how == "replay":
            headers, body = sent[-1]
        before = len(book.entries)
        answer = book.receive("wechatpay", headers, body, now)
        answers.append((how, answer, len(book.entries) - before))
        if how == "fresh":
            sent.append((headers, body))
            fresh.add(capture.transaction_id)
    return fresh, answers


@given(worlds())
def test_hostile_delivery_never_moves_money_twice_and_never_loses_a_genuine_capture(world: World) -> None:
    """Forged, stale, tampered, replayed, duplicated and reordered deliveries of genuine captures."""
    book = book_for(world)
    fresh, answers = deliver(book, world)
    captured = Counter(e.reference for e in book.entries if e.kind is EntryKind.CAPTURED)
    assert set(captured) == fresh  # every genuine capture delivered fresh is recorded...
    assert all(count == 1 for count in captured.values())  # ...exactly once
    for how, answer, moved in answers:
        if how in {"stale", "forged", "tampered", "replay"}:
            assert not answer.ok
            assert moved == 0
    amounts = {c.transaction_id: c.amount_fen for c in world.captures}
    for index, amount in enumerate(world.invoices):
        balance: Balance = book.balances[f"inv_{index}"]
        paid_in = sum(
            amounts[e.reference]
            for e in book.entries
            if e.kind is EntryKind.CAPTURED and e.invoice_id == f"inv_{index}"
        )
        assert balance.captured_fen == paid_in
        assert balance.applied_fen == min(amount, paid_in)  # applied = captured - refunded, never > owed
        assert balance.due_fen == amount - balance.applied_fen >= 0
    assert sum(r.amount_fen for r in book.refunds.values()) == sum(
        b.refunded_fen for b in book.balances.values()
    )
