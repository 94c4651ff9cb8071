"""The demo city sits in Zhengzhou's real districts and counties (the vendored outlines)."""

from __future__ import annotations

import json
from importlib.resources import files
from itertools import pairwise
from typing import Any

OUTLINES = json.loads((files("guidance_api") / "static" / "zhengzhou.geojson").read_text(encoding="utf-8"))
CITY = json.loads((files("simulators") / "cities" / "zhengzhou.json").read_text(encoding="utf-8"))


def inside(lon: float, lat: float, ring: list[list[float]]) -> bool:
    """Tell whether a point is inside a ring (even-odd rule)."""
    crossings = 0
    for (x1, y1), (x2, y2) in pairwise([*ring, ring[0]]):
        if (y1 > lat) != (y2 > lat) and lon < (x2 - x1) * (lat - y1) / (y2 - y1) + x1:
            crossings += 1
    return crossings % 2 == 1


def outline_of(lon: float, lat: float) -> list[str]:
    """Return the names of the outlines that hold a point."""
    names = []
    for feature in OUTLINES["features"]:
        outer, *holes = feature["geometry"]["coordinates"]
        if inside(lon, lat, outer) and not any(inside(lon, lat, hole) for hole in holes):
            names.append(feature["properties"]["name"])
    return names


def test_the_outlines_are_the_twelve_districts_and_counties() -> None:
    """12 polygons: six urban districts, six counties and county-level cities, each with a label point."""
    names = {f["properties"]["name"] for f in OUTLINES["features"]}
    assert names == {
        "中原区", "二七区", "管城回族区", "金水区", "惠济区", "上街区",
        "中牟县", "登封市", "巩义市", "荥阳市", "新密市", "新郑市",
    }  # fmt: skip
    assert all(f["geometry"]["type"] == "Polygon" and f["properties"]["cp"] for f in OUTLINES["features"])


def test_every_demo_lot_lies_in_its_districts_outline() -> None:
    """Each district names its outline, and each of its lots is inside that outline only."""
    districts: list[dict[str, Any]] = CITY["districts"]
    assert {d["outline_name"] for d in districts} == {f["properties"]["name"] for f in OUTLINES["features"]}
    for district in districts:
        for lot in district["lots"]:
            assert outline_of(lot["lon"], lot["lat"]) == [district["outline_name"]], lot["lot_id"]


def test_counties_join_after_the_central_districts() -> None:
    """The city grows outwards: every county's onboarding day is after every urban district's first."""
    central = min(d["onboarded_on"] for d in CITY["districts"] if d["kind"] == "district")
    counties = [d["onboarded_on"] for d in CITY["districts"] if d["kind"] != "district"]
    assert counties
    assert all(day > central for day in counties)
