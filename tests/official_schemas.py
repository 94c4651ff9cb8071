"""Validators built from the official schema files vendored in tests/schemas (CDS, Smart Data Models)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SCHEMAS = Path(__file__).parent / "schemas"
CDS = SCHEMAS / "cds-openapi"
SDM = SCHEMAS / "smart-data-models"
# The Smart Data Models schemas name each other by their published URLs; these are the same files.
SDM_URLS = {
    "https://smart-data-models.github.io/data-models/common-schema.json": SDM
    / "data-models/common-schema.json",
    **{
        f"https://smart-data-models.github.io/dataModel.Parking/{name}/schema.json": SDM
        / f"dataModel.Parking/{name}/schema.json"
        for name in ("ParkingSpot", "OnStreetParking", "OffStreetParking")
    },
}


# One known defect of the official CDS OpenAPI files, corrected at load time (tests/schemas/README.md):
# geoJSON_polygon.yaml takes its coordinates from coordinates.yaml, a list of positions, while the
# CDS specification (general-information.md, "Polygon") and RFC 7946 3.1.6 make a Polygon's
# coordinates a list of linear rings. As shipped, no RFC 7946 polygon validates, and a flat list of
# positions matches both branches of curb_zone's `oneOf` (Polygon, LineString), so no zone can.
POLYGON_FILE = CDS / "Shared Data Models" / "geoJSON_polygon.yaml"
RFC7946_RINGS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "array",
        "minItems": 4,
        "items": {"type": "array", "minItems": 2, "maxItems": 3, "items": {"type": "number"}},
    },
}


def load(path: Path) -> Any:
    """Return a YAML or JSON schema file's contents (with the one correction above)."""
    text = path.read_text(encoding="utf-8")
    contents = yaml.safe_load(text) if path.suffix == ".yaml" else json.loads(text)
    if path == POLYGON_FILE and contents["properties"]["coordinates"] == {
        **contents["properties"]["coordinates"],
        "$ref": "./coordinates.yaml",
    }:
        contents["properties"]["coordinates"] = RFC7946_RINGS
    return contents


def retrieve(uri: str) -> Resource[Any]:
    """Find a referenced schema among the vendored files; nothing is fetched from the network."""
    path = SDM_URLS.get(uri)
    if path is None:
        parts = urlsplit(uri)
        if parts.scheme != "file":
            raise LookupError(f"{uri} is not vendored in tests/schemas")
        path = Path(unquote(parts.path))
    return Resource.from_contents(load(path), default_specification=DRAFT202012)


@cache
def registry() -> Registry[Any]:
    """Return the registry that resolves every reference from the vendored files."""
    return Registry(retrieve=retrieve)  # type: ignore[call-arg]


def pointer(*parts: str) -> str:
    """Return a JSON pointer fragment of *parts* (escaping `~` and `/`)."""
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in ("", *parts))


def validator(uri: str) -> Draft202012Validator:
    """Return a strict validator (formats checked: uuid, date-time…) of the schema at *uri*."""
    return Draft202012Validator({"$ref": uri}, registry=registry(), format_checker=FormatChecker())


def cds_response(api: str, path: str, status: str = "200") -> Draft202012Validator:
    """Return the validator of a CDS API's JSON response (e.g. "Curbs API", "/curbs/zones")."""
    file_uri = (CDS / "APIs" / f"{api}.yaml").as_uri()
    where = pointer("paths", path, "get", "responses", status, "content", "application/json", "schema")
    return validator(f"{file_uri}#{where}")


def cds_model(name: str) -> Draft202012Validator:
    """Return the validator of a CDS shared data model (e.g. "aggregate")."""
    return validator((CDS / "Shared Data Models" / f"{name}.yaml").as_uri())


def smart_data_model(entity_type: str) -> Draft202012Validator:
    """Return the validator of a Smart Data Models Parking entity (key-values form)."""
    return validator(f"https://smart-data-models.github.io/dataModel.Parking/{entity_type}/schema.json")


def errors(check: Draft202012Validator, instance: Any) -> list[str]:
    """Return every validation error as `path: message`, empty when *instance* is valid."""
    return [
        f"{'/'.join(str(p) for p in e.absolute_path)}: {e.message}"
        for e in sorted(check.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    ]
