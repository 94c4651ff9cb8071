# Copyright 2026 city-parking contributors (Apache-2.0)
"""What `price_stay` returns: the amount, the lines that explain it, and the timed charges."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime, tzinfo

    from billing.tariff import VehicleClass


# The longest stay `price_stay` prices at all: a year (a car left for longer is a case for people,
# not for the tariff). Pricing works per day and per charging unit; a year prices in ~0.2 s here.
MAX_PRICED_STAY_DAYS = 366
# The longest stay the public quote route prices: a month (~20 ms of work, a reply of tens of kB).
# Longer parking is sold as monthly permits, not quoted by the hour.
MAX_QUOTED_STAY_DAYS = 31


class LineKind(StrEnum):
    """What a quote line explains."""

    FREE_MINUTES = "free_minutes"  # the stay was within, or had deducted, the free minutes
    FREE_BAND = "free_band"  # time in a band that charges nothing
    FLAT = "flat"  # a flat fee for entering a band occurrence
    TIER = "tier"  # units of one tier of a tiered band
    BAND_CAP = "band_cap"  # reduction by a band occurrence's max_fee_fen (negative)
    DAILY_CAP = "daily_cap"  # reduction by the daily max fee (negative)
    SESSION_CAP = "session_cap"  # reduction by the session max fee (negative)
    RESERVATION_FEE = "reservation_fee"  # a kept, late-cancelled or missed reservation (reservation_fees.py)
    NO_SHOW_FEE = "no_show_fee"  # a reservation nobody arrived for
    OVERSTAY_SURCHARGE = "overstay_surcharge"  # a public stay past a shared lot's window (overstay.py)


@dataclass(frozen=True, slots=True)
class TimedCharge:
    """An amount charged at an instant; feed earlier quotes' charges back as earlier charges."""

    at: datetime
    amount_fen: int


@dataclass(frozen=True, slots=True)
class QuoteLine:
    """One line of a quote; the lines' amounts add up to the quote's amount."""

    kind: LineKind
    amount_fen: int  # negative for cap reductions
    band_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    tier_index: int | None = None
    units: int | None = None
    unit_min: int | None = None
    unit_price_fen: int | None = None
    cap_fen: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Quote:
    """The price of one stay under one tariff version, and why."""

    amount_fen: int
    lines: tuple[QuoteLine, ...]
    charges: tuple[TimedCharge, ...]  # what was charged when, after every cap
    tariff_id: str
    tariff_version: int
    vehicle_class: VehicleClass
    entry: datetime
    exit: datetime


def _time(value: datetime | None, tz: tzinfo) -> str | None:
    return None if value is None else value.astimezone(tz).isoformat()


def line_to_json(line: QuoteLine, tz: tzinfo) -> dict[str, Any]:
    """Return one quote line as JSON, times in the lot's time zone, omitting empty fields."""
    doc: dict[str, Any] = {"kind": line.kind.value, "amount_fen": line.amount_fen}
    optional = {
        "band_id": line.band_id,
        "start": _time(line.start, tz),
        "end": _time(line.end, tz),
        "tier_index": line.tier_index,
        "units": line.units,
        "unit_min": line.unit_min,
        "unit_price_fen": line.unit_price_fen,
        "cap_fen": line.cap_fen,
        "detail": line.detail or None,
    }
    doc.update({key: value for key, value in optional.items() if value is not None})
    return doc


def quote_to_json(quote: Quote, tz: tzinfo) -> dict[str, Any]:
    """Return a quote as the JSON body of `GET /v1/lots/{lot_id}/quote`."""
    return {
        "amount_fen": quote.amount_fen,
        "tariff_id": quote.tariff_id,
        "tariff_version": quote.tariff_version,
        "vehicle_class": quote.vehicle_class.value,
        "entry": quote.entry.astimezone(tz).isoformat(),
        "exit": quote.exit.astimezone(tz).isoformat(),
        "lines": [line_to_json(line, tz) for line in quote.lines],
        "charges": [
            {"at": c.at.astimezone(tz).isoformat(), "amount_fen": c.amount_fen} for c in quote.charges
        ],
    }
