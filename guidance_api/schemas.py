"""Request bodies of the admin API (pydantic, strict: wrong types are refused, not coerced)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from billing import LotKind
from parking_core.ids import ID_PATTERN, is_valid_id
from parking_core.liveness import DEFAULT_HEARTBEAT_INTERVAL, default_stale_after
from parking_core.lots import DEFAULT_TIME_ZONE
from parking_core.plates import is_plausible_plate, normalise_plate
from parking_core.topics import DeviceKind

LotPlacement = Literal["on_street", "off_street"]  # CONTRACT.md: a lot's `kind`
# The JSON schema of an id (OpenAPI), from the core's one pattern.
ID_SCHEMA: dict[str, Any] = {"type": "string", "pattern": f"^{ID_PATTERN.pattern}$"}


def _checked_id(value: str) -> str:
    if not is_valid_id(value):
        raise PydanticCustomError("pattern", "must match {pattern}", {"pattern": ID_PATTERN.pattern})
    return value


# An id in a body, checked by the core's one id check.
Identifier = Annotated[str, AfterValidator(_checked_id), WithJsonSchema(ID_SCHEMA)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
MAX_LOT_CAPACITY = 100_000  # the largest car parks in China hold ~10k; anything above is a typo
# A centimetre in degrees: finer coordinates are noise, and denormals among them underflow in
# PostgreSQL's distance maths. Refused (0 itself is fine); guidance_api.params does the same.
FINEST_DEGREES = 1e-7


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class DistrictBody(_Body):
    """``PUT /v1/admin/districts/{district_id}``: a district, county or county-level city of the city."""

    name: Name
    kind: Literal["district", "county", "county_city"] = "district"
    outline_name: Name | None = None  # its outline's name on the city map (the city screen draws it)
    public_spaces: int | None = Field(default=None, ge=0, le=10_000_000)  # for coverage as a share
    onboarded_on: date | None = None  # when its lots began to count in coverage


class ZoneBody(_Body):
    """``PUT /v1/admin/zones/{zone_id}``: a zone of a lot (a floor, a section, a block of bays)."""

    lot_id: Identifier
    name: Name
    kind: LotKind | None = Field(
        default=None, description="where the zone is, in billing's words: what a tariff is made for"
    )


class SpotBody(_Body):
    """One spot of a lot."""

    spot_id: Identifier
    label: Annotated[str, StringConstraints(max_length=64)] = ""
    zone_id: Identifier | None = None


class LotBody(_Body):
    """``PUT /v1/admin/lots/{lot_id}``: the whole lot, its spots replacing the ones it had."""

    name: Name
    kind: LotPlacement
    district_id: Identifier
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    capacity: int | None = Field(default=None, ge=0, le=MAX_LOT_CAPACITY)
    time_zone: str = DEFAULT_TIME_ZONE
    tariff_id: Identifier | None = None
    status: Literal["open", "closed"] = "open"
    # "gates": a closed car park counted at its barriers (free = capacity - sessions inside)
    counted_by: Literal["sensors", "gates"] = "sensors"
    spots: list[SpotBody] = Field(default_factory=list, max_length=MAX_LOT_CAPACITY, validate_default=True)

    @field_validator("lat", "lon")
    @classmethod
    def _not_denormal(cls, value: float) -> float:
        if value != 0 and abs(value) < FINEST_DEGREES:
            raise ValueError(f"must be 0 or at least {FINEST_DEGREES:g} from it (finer is noise)")
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value

    @field_validator("spots")
    @classmethod
    def _spots_match_capacity(cls, spots: list[SpotBody], info: ValidationInfo) -> list[SpotBody]:
        seen: dict[str, int] = {}
        for index, spot in enumerate(spots):
            if spot.spot_id in seen:
                raise ValueError(
                    f"spots[{index}].spot_id {spot.spot_id!r} repeats spots[{seen[spot.spot_id]}]"
                )
            seen[spot.spot_id] = index
        capacity = info.data.get("capacity")
        if spots and capacity is not None and capacity != len(spots):
            raise ValueError(f"capacity {capacity} differs from the {len(spots)} spots listed")
        if not spots and capacity is None and "capacity" in info.data:
            raise ValueError("list the spots, or give a capacity for a lot counted at its gates")
        return spots

    @property
    def effective_capacity(self) -> int:
        """Return the capacity, which defaults to the number of spots."""
        return self.capacity if self.capacity is not None else len(self.spots)


class DeviceBody(_Body):
    """``PUT /v1/admin/devices/{device_id}``."""

    kind: DeviceKind
    spot_id: Identifier | None = Field(default=None, validate_default=True)
    lot_id: Identifier | None = Field(default=None, validate_default=True)
    lane: Literal["entry", "exit", "both"] | None = Field(default=None, validate_default=True)
    model: Annotated[str, StringConstraints(max_length=64)] = ""
    heartbeat_interval_s: int = Field(
        default=int(DEFAULT_HEARTBEAT_INTERVAL.total_seconds()), ge=10, le=86_400
    )
    stale_after_s: int | None = Field(default=None, ge=10, le=7 * 86_400)

    @field_validator("spot_id")
    @classmethod
    def _spot_for_sensors_only(cls, spot_id: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "bay_sensor" and spot_id is None:
            raise ValueError("spot_id is required for a bay_sensor")
        if kind in {"gate", "sign"} and spot_id is not None:
            raise ValueError(f"a {kind} is bound to a lot, not a spot: drop spot_id")
        return spot_id

    @field_validator("lot_id")
    @classmethod
    def _lot_for_gates_and_signs(cls, lot_id: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "bay_sensor" and lot_id is not None:
            raise ValueError("a bay_sensor's lot follows from its spot: drop lot_id")
        if kind in {"gate", "sign"} and lot_id is None:
            raise ValueError(f"lot_id is required for a {kind}")
        return lot_id

    @field_validator("lane")
    @classmethod
    def _lane_for_gates(cls, lane: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "gate" and lane is None:
            raise ValueError("lane is required for a gate (entry, exit or both)")
        if kind in {"bay_sensor", "sign"} and lane is not None:
            raise ValueError(f"a {kind} has no lane")
        return lane

    @field_validator("stale_after_s")
    @classmethod
    def _longer_than_heartbeat(cls, stale_after_s: int | None, info: ValidationInfo) -> int | None:
        heartbeat = info.data.get("heartbeat_interval_s")
        if stale_after_s is not None and heartbeat is not None and stale_after_s <= heartbeat:
            raise ValueError(f"must be longer than heartbeat_interval_s ({heartbeat})")
        return stale_after_s

    @property
    def effective_stale_after_s(self) -> int:
        """Return the stale window: given, or 2 × heartbeat + 60 s."""
        if self.stale_after_s is not None:
            return self.stale_after_s
        return int(default_stale_after(timedelta(seconds=self.heartbeat_interval_s)).total_seconds())


class TokenBody(_Body):
    """``POST /v1/admin/tokens``: an operator token scoped to districts or lots, or a driver's."""

    role: Literal["operator", "driver"]
    label: Annotated[str, StringConstraints(max_length=200)] = ""
    district_ids: list[Identifier] = Field(default_factory=list)
    lot_ids: list[Identifier] = Field(default_factory=list)
    plates: list[str] = Field(default_factory=list, max_length=20)
    account_id: Identifier | None = None  # a driver account: the token follows its bound plates
    expires_at: AwareDatetime | None = None

    @field_validator("plates")
    @classmethod
    def _normalise(cls, plates: list[str]) -> list[str]:
        normalised = [normalise_plate(p) for p in plates]
        for index, plate in enumerate(normalised):
            if not is_plausible_plate(plate):
                raise ValueError(f"plates[{index}] {plates[index]!r} is not a Chinese licence plate")
        return normalised

    @model_validator(mode="after")
    def _scoped(self) -> Self:
        if self.role == "operator" and not (self.district_ids or self.lot_ids):
            raise PydanticCustomError("scope", "an operator token needs district_ids or lot_ids")
        if self.role == "operator" and self.plates:
            raise PydanticCustomError("scope", "plates belong on driver tokens")
        if self.role == "driver" and not self.plates and self.account_id is None:
            raise PydanticCustomError("scope", "a driver token needs plates or an account_id")
        if self.account_id is not None and (self.role != "driver" or self.plates):
            raise PydanticCustomError("scope", "account_id is for driver tokens without plates")
        if self.role == "driver" and (self.district_ids or self.lot_ids):
            raise PydanticCustomError("scope", "a driver token is bound to plates, not districts or lots")
        return self


class ReservationBody(_Body):
    """``POST /v1/reservations``: hold a space at a lot (a spot or a zone of it if asked) for a plate."""

    lot_id: Identifier
    plate: str
    arrival_from: AwareDatetime
    arrival_to: AwareDatetime
    spot_id: Identifier | None = None
    zone_id: Identifier | None = None

    @field_validator("plate")
    @classmethod
    def _plate(cls, plate: str) -> str:
        normalised = normalise_plate(plate)
        if not is_plausible_plate(normalised):
            raise ValueError(f"{plate!r} is not a Chinese licence plate")
        return normalised

    @model_validator(mode="after")
    def _spot_or_zone(self) -> Self:
        if self.spot_id is not None and self.zone_id is not None:
            raise PydanticCustomError("spot_or_zone", "ask for a spot or a zone, not both")
        return self


Clock = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")]
MAX_CLOSURE_SPOTS = 5000  # a whole floor of a big car park at once


class ClosureBody(_Body):
    """``POST /v1/operator/lots/{lot_id}/closures``: close spaces now or from ``starts_at``."""

    spot_ids: list[Identifier] = Field(min_length=1, max_length=MAX_CLOSURE_SPOTS)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if len(set(self.spot_ids)) != len(self.spot_ids):
            raise PydanticCustomError("spot_ids", "spot_ids repeat a spot")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise PydanticCustomError("schedule", "ends_at must be after starts_at")
        return self


class SharingRuleBody(_Body):
    """One recurring window: "weekdays 19:00-08:00, 120 spaces"; an end not after the start wraps."""

    rule_id: Identifier
    day_types: list[Literal["weekday", "weekend", "holiday"]] = Field(min_length=1, max_length=3)
    start: Clock
    end: Clock
    spaces: int = Field(ge=0, le=MAX_LOT_CAPACITY)

    @field_validator("start")
    @classmethod
    def _start_in_day(cls, start: str) -> str:
        if start == "24:00":
            raise ValueError("a window starts at 00:00-23:59")
        return start

    @field_validator("end")
    @classmethod
    def _end_not_midnight_zero(cls, end: str) -> str:
        return "24:00" if end == "00:00" else end


class SharingBody(_Body):
    """``PUT /v1/operator/lots/{lot_id}/sharing``: the owner's windows, members and terms."""

    owner_name: Name
    owner_share_percent: int = Field(ge=0, le=100)
    rules: list[SharingRuleBody] = Field(max_length=50)
    members: list[str] = Field(default_factory=list, max_length=20_000)
    reminder_before_min: int = Field(default=30, ge=0, le=1440)
    overstay_unit_min: int = Field(default=60, ge=1, le=1440)
    overstay_unit_fee_fen: int = Field(default=0, ge=0, le=100_000_000)

    @field_validator("members")
    @classmethod
    def _plates(cls, members: list[str]) -> list[str]:
        normalised = [normalise_plate(p) for p in members]
        for index, plate in enumerate(normalised):
            if not is_plausible_plate(plate):
                raise ValueError(f"members[{index}] {members[index]!r} is not a Chinese licence plate")
        return sorted(set(normalised))

    @field_validator("rules")
    @classmethod
    def _distinct(cls, rules: list[SharingRuleBody]) -> list[SharingRuleBody]:
        ids = [r.rule_id for r in rules]
        if len(set(ids)) != len(ids):
            raise ValueError("rule_id repeats")
        return rules
