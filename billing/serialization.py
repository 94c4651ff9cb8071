# Copyright 2026 city-parking contributors (Apache-2.0)
"""Turn a `Tariff` back into its JSON document; `parse_tariff` reads it back unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from billing.tariff import Charge, DayType, format_minute

if TYPE_CHECKING:
    from billing.tariff import Band, PricingRules, Tariff, Tier


def tariff_to_json(tariff: Tariff) -> dict[str, Any]:
    """Return *tariff* as a JSON document (what `GET /v1/lots/{lot_id}/tariff` publishes)."""
    doc: dict[str, Any] = {
        "tariff_id": tariff.tariff_id,
        "version": tariff.version,
        "name": {"zh": tariff.name_zh, "en": tariff.name_en},
        "zone": tariff.zone,
        "lot_kind": None if tariff.lot_kind is None else tariff.lot_kind.value,
        "time_zone": tariff.time_zone,
        "currency": tariff.currency,
        "valid_from": tariff.valid_from.isoformat(),
        "valid_to": None if tariff.valid_to is None else tariff.valid_to.isoformat(),
        "holidays": [d.isoformat() for d in tariff.holidays],
        "workdays": [d.isoformat() for d in tariff.workdays],
        **rules_to_json(tariff.rules),
        "reservation_fee_fen": tariff.reservation_fee_fen,
        "no_show_fee_fen": tariff.no_show_fee_fen,
    }
    if tariff.vehicle_rules:
        classes: dict[str, Any] = {}
        for rule in tariff.vehicle_rules:
            if rule.rules is not None:
                classes[rule.vehicle_class.value] = {"rules": rules_to_json(rule.rules)}
            else:
                classes[rule.vehicle_class.value] = {"factor_percent": rule.factor_percent}
        doc["vehicle_classes"] = classes
    return doc


def rules_to_json(rules: PricingRules) -> dict[str, Any]:
    """Return the pricing fields of a tariff (or of a vehicle class's own rules) as JSON."""
    return {
        "free_minutes": rules.free_minutes,
        "free_minutes_deducted": rules.free_minutes_deducted,
        "daily_max_fee_fen": rules.daily_max_fee_fen,
        "daily_window": rules.daily_window.value,
        "session_max_fee_fen": rules.session_max_fee_fen,
        "bands": [band_to_json(band) for band in rules.bands],
    }


def band_to_json(band: Band) -> dict[str, Any]:
    """Return one band as JSON, with only the fields its kind of charge allows."""
    doc: dict[str, Any] = {
        "band_id": band.band_id,
        "name": {"zh": band.name_zh, "en": band.name_en},
        "start": format_minute(band.start_min),
        "end": format_minute(band.end_min),
        "charge": band.charge.value,
    }
    if band.day_types != tuple(DayType):
        doc["day_types"] = [d.value for d in band.day_types]
    if band.charge is Charge.FLAT:
        doc["flat_fee_fen"] = band.flat_fee_fen
    if band.charge is Charge.TIERED:
        doc["rounding"] = band.rounding.value
        doc["tiers"] = [_tier_to_json(t) for t in band.tiers]
    if band.charge is not Charge.FREE and band.max_fee_fen is not None:
        doc["max_fee_fen"] = band.max_fee_fen
    return doc


def _tier_to_json(tier: Tier) -> dict[str, Any]:
    return {
        "start_min": tier.start_min,
        "end_min": tier.end_min,
        "unit_min": tier.unit_min,
        "unit_price_fen": tier.unit_price_fen,
    }
