"""Typed identifiers shared by the domain modules (plain strings at runtime)."""

from __future__ import annotations

import re
from typing import NewType

SpotId = NewType("SpotId", str)
LotId = NewType("LotId", str)
DeviceId = NewType("DeviceId", str)
ZoneId = NewType("ZoneId", str)
DistrictId = NewType("DistrictId", str)

# CONTRACT.md: every id is 1-64 characters of letters, digits, underscore, dot and dash.
ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def is_valid_id(value: str) -> bool:
    """Tell whether *value* is a well-formed id per the public contract."""
    return ID_PATTERN.fullmatch(value) is not None


def spot_id(value: str) -> SpotId:
    """Return *value* as a SpotId after checking its form."""
    if not is_valid_id(value):
        raise ValueError(f"malformed spot id {value!r}")
    return SpotId(value)


def device_id(value: str) -> DeviceId:
    """Return *value* as a DeviceId after checking its form."""
    if not is_valid_id(value):
        raise ValueError(f"malformed device id {value!r}")
    return DeviceId(value)


def lot_id(value: str) -> LotId:
    """Return *value* as a LotId after checking its form."""
    if not is_valid_id(value):
        raise ValueError(f"malformed lot id {value!r}")
    return LotId(value)
