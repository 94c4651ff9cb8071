# Copyright 2026 city-parking contributors (Apache-2.0)
"""The overstay surcharge of a shared lot as a quote: every started unit past the window's end, in fen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.quotes import LineKind, Quote, QuoteLine, TimedCharge
from billing.tariff import VehicleClass, require_aware
from parking_core.sharing import EndTerms, overstay_units


@dataclass(frozen=True, slots=True)
class Overstay:
    """A public stay that began in a sharing window and left after the window's end."""

    started_at: datetime
    window_end: datetime
    left_at: datetime
    terms: EndTerms

    @property
    def units(self) -> int:
        """Return the started overstay units."""
        return overstay_units(self.window_end, self.left_at, self.terms.overstay_unit)

    @property
    def amount_fen(self) -> int:
        """Return the surcharge: units × the owner's unit fee."""
        return self.units * self.terms.overstay_unit_fee_fen


def overstay_quote(overstay: Overstay, tariff_id: str, tariff_version: int) -> Quote:
    """Return the surcharge as a quote (one line), the shape an invoice is raised from.

    The quote runs from the stay's start to when it left; the line from the window's end; the whole
    surcharge is charged when the car left. *tariff_id* and *tariff_version* name the stay's tariff.
    """
    require_aware("started_at", overstay.started_at)
    unit_min = int(overstay.terms.overstay_unit.total_seconds() // 60)
    amount = overstay.amount_fen
    line = QuoteLine(
        LineKind.OVERSTAY_SURCHARGE,
        amount,
        start=overstay.window_end,
        end=overstay.left_at,
        units=overstay.units,
        unit_min=unit_min,
        unit_price_fen=overstay.terms.overstay_unit_fee_fen,
        detail="past the end of the sharing window",
    )
    charges = (TimedCharge(overstay.left_at, amount),) if amount else ()
    return Quote(
        amount,
        (line,),
        charges,
        tariff_id,
        tariff_version,
        VehicleClass.SMALL_CAR,  # the surcharge is the same for every class
        overstay.started_at,
        max(overstay.started_at, overstay.left_at),
    )
