# Copyright 2026 city-parking contributors (Apache-2.0)
"""Arrears per plate across the city: reminders, escalation to the deny list, pay-later eligibility."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from billing.tariff import require_aware

DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class LotMoneyPolicy:
    """What a lot allows: pay-later at all, how much arrears it tolerates, entry for deny-listed plates."""

    pay_later: bool = True
    arrears_limit_fen: int = 5_000  # ¥50: pay-later needs arrears strictly below this
    deny_entry_when_blacklisted: bool = False  # a lot may refuse entry, not only pay-later


@dataclass(frozen=True, slots=True)
class ArrearsPolicy:
    """The city's arrears rules: when to remind, when a plate goes on the deny list."""

    # Reminder steps, as offsets from the due date: the day before, the day after, a week after.
    reminder_offsets: tuple[timedelta, ...] = (-DAY, DAY, 7 * DAY)
    blacklist_after: timedelta = 15 * DAY  # an invoice this long overdue puts the plate on the list
    blacklist_at_fen: int = 20_000  # ¥200 overdue in all also does


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    """An invoice with something still due, as arrears rules see it."""

    invoice_id: str
    plate: str
    lot_id: str
    due_at: datetime
    due_fen: int


def arrears_fen(invoices: Iterable[OpenInvoice], now: datetime) -> int:
    """Return a plate's arrears at *now*: what is due on its invoices past their due date."""
    require_aware("now", now)
    return sum(inv.due_fen for inv in invoices if inv.due_fen > 0 and inv.due_at <= now)


class ReminderKind(StrEnum):
    """What a reminder says."""

    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    FINAL_NOTICE = "final_notice"  # the last step: the deny list follows


@dataclass(frozen=True, slots=True)
class Reminder:
    """A reminder to write to the outbox for one invoice (one per step at most)."""

    invoice_id: str
    plate: str
    step: int
    kind: ReminderKind
    due_fen: int
    due_at: datetime


def reminder_due(
    invoice: OpenInvoice, policy: ArrearsPolicy, now: datetime, last_sent_step: int | None
) -> Reminder | None:
    """Return the reminder to send now for *invoice*, or None.

    Only the latest step whose time has come is sent: a notifier that was down does not send a
    burst of stale reminders. Steps already passed by a later one are never sent.
    """
    require_aware("now", now)
    if invoice.due_fen <= 0:
        return None
    reached = [i for i, off in enumerate(policy.reminder_offsets) if invoice.due_at + off <= now]
    if not reached or (last_sent_step is not None and reached[-1] <= last_sent_step):
        return None
    step = reached[-1]
    offset = policy.reminder_offsets[step]
    kind = ReminderKind.DUE_SOON if offset < timedelta(0) else ReminderKind.OVERDUE
    if step == len(policy.reminder_offsets) - 1 and offset >= timedelta(0):
        kind = ReminderKind.FINAL_NOTICE
    return Reminder(invoice.invoice_id, invoice.plate, step, kind, invoice.due_fen, invoice.due_at)


def blacklist_reason(invoices: Sequence[OpenInvoice], policy: ArrearsPolicy, now: datetime) -> str | None:
    """Return why a plate with these open invoices belongs on the deny list now, or None."""
    overdue = [inv for inv in invoices if inv.due_fen > 0 and inv.due_at <= now]
    if any(now - inv.due_at >= policy.blacklist_after for inv in overdue):
        return f"an invoice overdue for {policy.blacklist_after.days} days or more"
    if sum(inv.due_fen for inv in overdue) >= policy.blacklist_at_fen:
        return f"arrears of {policy.blacklist_at_fen} fen or more"
    return None


class PayLater(StrEnum):
    """Whether a plate may leave first and pay later at a lot, and if not, why."""

    ELIGIBLE = "eligible"
    NO_ACCOUNT = "no_account"  # the plate is bound to no driver account
    NO_CONSENT = "no_consent"  # the driver did not agree to pay later
    LOT_DISABLED = "lot_disabled"  # the lot does not offer pay-later
    BLACKLISTED = "blacklisted"  # on the deny list
    ARREARS = "arrears"  # arrears at or above the lot's limit


@dataclass(frozen=True, slots=True)
class PlateStanding:
    """What the exit decision knows of a plate's money, read in its transaction."""

    bound: bool
    consented: bool
    blacklisted: bool
    arrears_fen: int


def pay_later_verdict(standing: PlateStanding, lot: LotMoneyPolicy) -> PayLater:
    """Return whether the plate may leave first and pay later at a lot with *lot* policy."""
    if standing.blacklisted:
        return PayLater.BLACKLISTED
    if standing.arrears_fen >= lot.arrears_limit_fen:
        return PayLater.ARREARS
    if not lot.pay_later:
        return PayLater.LOT_DISABLED
    if not standing.bound:
        return PayLater.NO_ACCOUNT
    if not standing.consented:
        return PayLater.NO_CONSENT
    return PayLater.ELIGIBLE


def entry_refused(standing: PlateStanding, lot: LotMoneyPolicy) -> bool:
    """Tell whether a lot refuses entry to the plate: deny-listed at a lot that says so."""
    return standing.blacklisted and lot.deny_entry_when_blacklisted
