# Copyright 2026 city-parking contributors (Apache-2.0)
"""Zhengzhou-style example tariffs shipped as package data in billing/tariffs/*.json."""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING

from billing.errors import UnknownExampleTariffError
from billing.parsing import parse_tariff

if TYPE_CHECKING:
    from billing.tariff import Tariff

EXAMPLE_PACKAGE = "billing"
EXAMPLE_FOLDER = "tariffs"  # listed under [tool.setuptools.package-data] in pyproject.toml


def example_tariff_documents() -> dict[str, dict[str, object]]:
    """Return the raw JSON documents of the example tariffs, keyed by tariff_id."""
    folder = resources.files(EXAMPLE_PACKAGE).joinpath(EXAMPLE_FOLDER)
    documents: dict[str, dict[str, object]] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            document = json.loads(entry.read_text(encoding="utf-8"))
            documents[str(document["tariff_id"])] = document
    return documents


def load_example_tariffs() -> dict[str, Tariff]:
    """Return the example tariffs (zz-zone1-on-street, ...), parsed and validated."""
    return {tariff_id: parse_tariff(document) for tariff_id, document in example_tariff_documents().items()}


def load_example_tariff(tariff_id: str) -> Tariff:
    """Return one example tariff by id, or raise `UnknownExampleTariffError`."""
    documents = example_tariff_documents()
    if tariff_id not in documents:
        raise UnknownExampleTariffError(tariff_id)
    return parse_tariff(documents[tariff_id])


def example_lot_tariff_ids() -> dict[str, str]:
    """Return which example tariff suits each kind of demo lot, by zone and lot kind.

    The demo city links lots to tariffs by `tariff_id`; this mapping lets it pick one without
    hard-coding file names: keys are "zone{n}-{lot_kind}".
    """
    return {
        f"zone{tariff.zone}-{tariff.lot_kind}": tariff_id
        for tariff_id, tariff in load_example_tariffs().items()
        if tariff.zone is not None and tariff.lot_kind is not None
    }
