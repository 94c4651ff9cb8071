"""Typed identifiers shared by the domain modules (plain strings at runtime)."""

from __future__ import annotations

import re
from typing import NewType

from parking_core.errors import InvalidIdError

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


def _checked(kind: str, value: str) -> str:
    if not is_valid_id(value):
        raise InvalidIdError(kind, value)
    return value


def spot_id(value: str) -> SpotId:
    """Return *value* as a SpotId after checking its form."""
    return SpotId(_checked("spot", value))


def device_id(value: str) -> DeviceId:
    """Return *value* as a DeviceId after checking its form."""
    return DeviceId(_checked("device", value))


def lot_id(value: str) -> LotId:
    """Return *value* as a LotId after checking its form."""
    return LotId(_checked("lot", value))


def zone_id(value: str) -> ZoneId:
    """Return *value* as a ZoneId after checking its form."""
    return ZoneId(_checked("zone", value))


def district_id(value: str) -> DistrictId:
    """Return *value* as a DistrictId after checking its form."""
    return DistrictId(_checked("district", value))
