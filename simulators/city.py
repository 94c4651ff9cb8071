"""City layouts for simulations: districts × lots × spots, from arguments or a JSON file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Zhengzhou city centre: lots are scattered around it so geo queries have something to find.
CENTRE_LAT = 34.7466
CENTRE_LON = 113.6253


@dataclass(frozen=True, slots=True)
class SpotSpec:
    """One spot and the bay sensor bound to it."""

    spot_id: str
    device_id: str


@dataclass(frozen=True, slots=True)
class LotSpec:
    """One lot with its spots."""

    lot_id: str
    district_id: str
    name: str
    kind: str
    lat: float
    lon: float
    spots: tuple[SpotSpec, ...]

    @property
    def capacity(self) -> int:
        """Return the lot's capacity: one per spot."""
        return len(self.spots)


@dataclass(frozen=True, slots=True)
class CityLayout:
    """Districts, lots and spots of a simulated city."""

    districts: tuple[str, ...]
    lots: tuple[LotSpec, ...]

    @property
    def spots(self) -> list[SpotSpec]:
        """Return every spot of the city."""
        return [spot for lot in self.lots for spot in lot.spots]

    def lot_of(self) -> dict[str, str]:
        """Return spot_id → lot_id."""
        return {spot.spot_id: lot.lot_id for lot in self.lots for spot in lot.spots}


def _lot(district: str, index: int, n_spots: int, prefix: str, offset: int) -> LotSpec:
    lot_id = f"{prefix}{district}-l{index}"
    spots = tuple(SpotSpec(f"{lot_id}-s{i:04d}", f"sen-{lot_id}-s{i:04d}") for i in range(n_spots))
    step = 0.004 * offset  # lots about 400 m apart, spiralling out of the centre
    return LotSpec(
        lot_id,
        f"{prefix}{district}",
        f"Lot {lot_id}",
        "on_street" if index % 2 == 0 else "off_street",
        CENTRE_LAT + step * ((offset % 7) - 3) / 3,
        CENTRE_LON + step * ((offset % 5) - 2) / 2,
        spots,
    )


def generate_city(districts: int, lots_per_district: int, spots_per_lot: int, prefix: str = "") -> CityLayout:
    """Return a regular city: ids are ``{prefix}dN``, ``…-lM`` and ``…-sNNNN`` (sensor ``sen-…``)."""
    names = tuple(f"{prefix}d{i}" for i in range(districts))
    lots = tuple(
        _lot(f"d{d}", lot, spots_per_lot, prefix, d * lots_per_district + lot)
        for d in range(districts)
        for lot in range(lots_per_district)
    )
    return CityLayout(names, lots)


def load_city(path: Path) -> CityLayout:
    """Read a layout: ``{"districts": [{"district_id", "lots": [{"lot_id", "spots": N}]}]}``.

    ``spots`` is a count or a list of spot ids; ``kind``, ``lat``, ``lon`` and ``name`` optional.
    """
    data: dict[str, Any] = json.loads(path.read_text())
    districts: list[str] = []
    lots: list[LotSpec] = []
    for district in data["districts"]:
        district_id = str(district["district_id"])
        districts.append(district_id)
        for lot in district["lots"]:
            lot_id = str(lot["lot_id"])
            raw = lot["spots"]
            spot_ids = [f"{lot_id}-s{i:04d}" for i in range(raw)] if isinstance(raw, int) else raw
            offset = len(lots)
            lots.append(
                LotSpec(
                    lot_id,
                    district_id,
                    str(lot.get("name", lot_id)),
                    str(lot.get("kind", "on_street")),
                    float(lot.get("lat", CENTRE_LAT + 0.003 * (offset % 10))),
                    float(lot.get("lon", CENTRE_LON + 0.003 * (offset // 10))),
                    tuple(SpotSpec(str(s), f"sen-{s}") for s in spot_ids),
                )
            )
    return CityLayout(tuple(districts), tuple(lots))
