# Copyright 2026 city-parking contributors (Apache-2.0)
"""What a reservation costs when it ends: the tariff's reservation and no-show fees, exact to the fen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from billing.quotes import LineKind, Quote, QuoteLine, TimedCharge
from billing.tariff import Tariff, VehicleClass, require_aware
from parking_core.reservations import HoldStatus


class FeeKind(StrEnum):
    """The kinds of charge a reservation can give rise to."""

    RESERVATION = "reservation"  # the hold was kept, cancelled after the cut-off, or not shown up for
    NO_SHOW = "no_show"  # on top, when nobody arrived before the deadline


@dataclass(frozen=True, slots=True)
class FeeLine:
    """One charge of a reservation, in fen (never negative)."""

    kind: FeeKind
    amount_fen: int


def reservation_fees(
    tariff: Tariff, outcome: HoldStatus, *, late_cancellation: bool = False
) -> list[FeeLine]:
    """Return the charges of a hold that ended in *outcome* (zero amounts are left out).

    Arrived: the reservation fee. Cancelled before the lot's cut-off: nothing; after it: the
    reservation fee. No-show: the reservation fee and the no-show fee. A hold still held costs nothing
    yet. Fees are the same for every vehicle class (they pay for the space kept, not the stay).
    """
    kinds: list[tuple[FeeKind, int]] = []
    if outcome is HoldStatus.ARRIVED or (outcome is HoldStatus.CANCELLED and late_cancellation):
        kinds.append((FeeKind.RESERVATION, tariff.reservation_fee_fen))
    elif outcome is HoldStatus.NO_SHOW:
        kinds += [
            (FeeKind.RESERVATION, tariff.reservation_fee_fen),
            (FeeKind.NO_SHOW, tariff.no_show_fee_fen),
        ]
    return [FeeLine(kind, amount) for kind, amount in kinds if amount > 0]


LINE_KINDS = {FeeKind.RESERVATION: LineKind.RESERVATION_FEE, FeeKind.NO_SHOW: LineKind.NO_SHOW_FEE}


def fee_quote(tariff: Tariff, lines: list[FeeLine], made_at: datetime, ended_at: datetime) -> Quote:
    """Return the fees of one reservation as a quote, the shape an invoice is raised from.

    The "stay" runs from when the hold was made to when it ended; every fee falls due at its end.
    """
    require_aware("made_at", made_at)
    require_aware("ended_at", ended_at)
    quote_lines = tuple(
        QuoteLine(LINE_KINDS[line.kind], line.amount_fen, start=made_at, end=ended_at) for line in lines
    )
    total = sum(line.amount_fen for line in lines)
    charges = (TimedCharge(ended_at, total),) if total else ()
    return Quote(
        total,
        quote_lines,
        charges,
        tariff.tariff_id,
        tariff.version,
        VehicleClass.SMALL_CAR,  # fees are the same for every class
        made_at,
        max(made_at, ended_at),
    )
