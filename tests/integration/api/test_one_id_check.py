"""One id check: the API's path, query and body ids and the schema's CHECKs all use the core's pattern."""

from __future__ import annotations

import re
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from guidance_api.schemas import Identifier
from parking_core.ids import ID_PATTERN, is_valid_id
from tests.integration.api.conftest import ADMIN

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
IDENTIFIER: TypeAdapter[str] = TypeAdapter(Identifier)
NOT_IDS = ["豫", "a b", "", "x" * 65, "ＡＢ", "a\n", "a/b", "١٢"]


def body_accepts(value: str) -> bool:
    try:
        IDENTIFIER.validate_python(value)
    except ValidationError:
        return False
    return True


@given(st.one_of(st.text(max_size=70), st.from_regex(ID_PATTERN, fullmatch=True), st.sampled_from(NOT_IDS)))
def test_a_body_id_is_valid_exactly_when_the_core_says(value: str) -> None:
    """Body fields use the core's check, so they cannot drift from it."""
    assert body_accepts(value) == is_valid_id(value)


async def test_the_schema_checks_ids_with_the_same_pattern(db: asyncpg.Connection) -> None:
    """Every id CHECK constraint of the migrations is the core's pattern, anchored."""
    rows = await db.fetch(
        "SELECT conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS def FROM pg_constraint"
        " WHERE contype = 'c' AND pg_get_constraintdef(oid) LIKE '%\\_id ~ %'"
    )
    patterns = {re.search(r"~ '([^']*)'", r["def"]).group(1) for r in rows}  # type: ignore[union-attr]
    assert {r["tbl"] for r in rows} >= {"districts", "lots", "spots", "devices", "zones"}
    assert patterns == {f"^{ID_PATTERN.pattern}$"}


@pytest.mark.parametrize("value", NOT_IDS[:2])
async def test_query_and_path_ids_refuse_what_the_core_refuses(api: Client, value: str) -> None:
    """`豫` passed the operator route's old isalnum() check; every id parameter now refuses it."""
    for path in ("/v1/operator/devices", "/v1/operator/rejected-messages"):
        key = "lot_id" if path.endswith("devices") else "device_id"
        resp = await api.get(path, params={key: value}, headers=ADMIN)
        assert resp.status == 400, path
        assert (await resp.json())["errors"][0]["field"] == key
    resp = await api.get("/v1/lots", params={"district_id": value})
    assert resp.status == 400
    resp = await api.get(f"/v1/lots/{value}")
    assert resp.status == 400
