"""Hypothesis strategies for billing: valid tariff documents, tariffs and stays."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from billing import Tariff, VehicleClass, parse_tariff
from billing.tariff import format_minute

SHANGHAI = ZoneInfo("Asia/Shanghai")
UNITS_MIN = (15, 30, 60)  # the charging units Chinese tariffs use
MAX_STAY = timedelta(days=3)


@st.composite
def tiers(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Draw 1-3 contiguous tiers, the last open-ended, bounds on the unit grid."""
    unit = draw(st.sampled_from(UNITS_MIN))
    count = draw(st.integers(1, 3))
    widths = draw(st.lists(st.integers(1, 8), min_size=count - 1, max_size=count - 1))
    found, start = [], 0
    for width in [*widths, None]:
        end = None if width is None else start + width * unit
        price = draw(st.integers(0, 600))
        found.append({"start_min": start, "end_min": end, "unit_min": unit, "unit_price_fen": price})
        start = end or start
    return found


@st.composite
def band_charges(draw: st.DrawFn) -> dict[str, Any]:
    """Draw how one band charges: free, flat per entry, or tiered, with an optional cap."""
    charge = draw(st.sampled_from(["free", "flat", "tiered", "tiered"]))
    if charge == "free":
        return {"charge": "free"}
    doc: dict[str, Any] = {"charge": charge}
    if charge == "flat":
        doc["flat_fee_fen"] = draw(st.integers(0, 2000))
    else:
        doc["rounding"] = draw(st.sampled_from(["up", "down", "half_up"]))
        doc["tiers"] = draw(tiers())
    if draw(st.booleans()):
        doc["max_fee_fen"] = draw(st.integers(0, 3000))
    return doc


@st.composite
def band_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Draw bands that tile the day: cut points on a 30-minute grid, the last band wrapping."""
    cuts = sorted(draw(st.sets(st.integers(0, 47).map(lambda h: h * 30), min_size=1, max_size=4)))
    if len(cuts) == 1:
        edges = [(0, 1440)]
    else:
        edges = [(cuts[i], cuts[(i + 1) % len(cuts)]) for i in range(len(cuts))]
    bands = []
    for i, (start, end) in enumerate(edges):
        name = {"zh": f"时段{i}", "en": f"band {i}"}
        bands.append(
            {
                "band_id": f"b{i}",
                "name": name,
                "start": format_minute(start),
                "end": format_minute(end),
                **draw(band_charges()),
            },
        )
    return bands


@st.composite
def tariff_documents(draw: st.DrawFn, *, free_minutes: bool = True, caps: bool = True) -> dict[str, Any]:
    """Draw a valid tariff JSON document."""
    doc: dict[str, Any] = {
        "tariff_id": "t-prop",
        "version": 1,
        "name": {"zh": "测试", "en": "test"},
        "valid_from": "2024-01-01",
        "bands": draw(band_lists()),
        "holidays": ["2025-10-01", "2025-10-02"],
        "workdays": ["2025-09-28"],
    }
    if free_minutes:
        doc["free_minutes"] = draw(st.integers(0, 30))
        doc["free_minutes_deducted"] = draw(st.booleans())
    if caps and draw(st.booleans()):
        doc["daily_max_fee_fen"] = draw(st.integers(0, 5000))
        doc["daily_window"] = draw(st.sampled_from(["calendar_day", "rolling_24h"]))
    if caps and draw(st.booleans()):
        doc["session_max_fee_fen"] = draw(st.integers(0, 8000))
    if draw(st.booleans()):
        doc["vehicle_classes"] = {"large_car": {"factor_percent": draw(st.integers(0, 300))}}
    return doc


def tariffs(*, free_minutes: bool = True, caps: bool = True) -> st.SearchStrategy[Tariff]:
    """Draw a parsed, valid tariff."""
    return tariff_documents(free_minutes=free_minutes, caps=caps).map(parse_tariff)


def entries() -> st.SearchStrategy[datetime]:
    """Draw an aware entry time in 2025, Shanghai time, to the second."""
    start = datetime(2025, 1, 1, tzinfo=SHANGHAI)
    return st.integers(0, 364 * 24 * 3600).map(lambda s: start + timedelta(seconds=s))


def durations(max_stay: timedelta = MAX_STAY) -> st.SearchStrategy[timedelta]:
    """Draw a stay length from zero to *max_stay*, to the second."""
    return st.integers(0, int(max_stay.total_seconds())).map(lambda s: timedelta(seconds=s))


def vehicle_classes() -> st.SearchStrategy[VehicleClass]:
    """Draw a vehicle class."""
    return st.sampled_from(VehicleClass)
