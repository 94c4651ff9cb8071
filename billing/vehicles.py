# Copyright 2026 city-parking contributors (Apache-2.0)
"""The vehicle class a gate read implies: plate colour per GA 36 (green new energy, yellow large)."""

from __future__ import annotations

from billing.tariff import VehicleClass

# GA 36-2018: blue plates are small cars, yellow large vehicles, green (and yellow-green) new
# energy. Black, white and other plates (foreign, police, military) are priced as small cars.
_BY_COLOR = {"yellow": VehicleClass.LARGE_CAR, "green": VehicleClass.NEW_ENERGY}
NEW_ENERGY_PLATE_LENGTH = 8  # 豫AD12345: new-energy plates carry one more character


def vehicle_class_for(plate: str, plate_color: str | None) -> VehicleClass:
    """Return the class a tariff prices a plate as, from its colour (or its length if unknown)."""
    if plate_color in _BY_COLOR:
        return _BY_COLOR[plate_color]
    if plate_color is None and len(plate) == NEW_ENERGY_PLATE_LENGTH:
        return VehicleClass.NEW_ENERGY
    return VehicleClass.SMALL_CAR
