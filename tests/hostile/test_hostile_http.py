"""The requests that used to answer 500 or freeze the API: each is now a 4xx naming its field."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from billing.examples import example_tariff_documents
from tests.integration.api.conftest import ADMIN

pytestmark = [pytest.mark.hostile, pytest.mark.db]
Client = TestClient[Any, Any]
NUL = "a\u0000b"
LOT = {"name": "H1", "kind": "on_street", "district_id": "hx", "lat": 34.75, "lon": 113.62}


async def provision(api: Client) -> str:
    """District hx with lot H1 (one spot) under an example tariff; return the tariff's id."""
    tariff_id, document = next(iter(example_tariff_documents().items()))
    resp = await api.put(f"/v1/admin/tariffs/{tariff_id}", json=document, headers=ADMIN)
    assert resp.status in {200, 201}, await resp.text()
    assert (await api.put("/v1/admin/districts/hx", json={"name": "HX"}, headers=ADMIN)).ok
    lot = LOT | {"tariff_id": tariff_id, "spots": [{"spot_id": "H1-1"}]}
    assert (await api.put("/v1/admin/lots/H1", json=lot, headers=ADMIN)).ok
    return tariff_id


async def refused(resp: Any, field: str, statuses: set[int] = frozenset({400, 422})) -> None:  # type: ignore[assignment]
    assert resp.status in statuses, await resp.text()
    problem = await resp.json()
    assert field in {e["field"] for e in problem.get("errors", [])}, problem


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/admin/districts/hx2", {"name": NUL}, "name"),
        ("/v1/admin/lots/H2", LOT | {"name": NUL}, "name"),
        ("/v1/admin/lots/H2", LOT | {"spots": [{"spot_id": "H2-1", "label": NUL}]}, "spots[0].label"),
        ("/v1/admin/devices/HD1", {"kind": "bay_sensor", "spot_id": "H1-1", "model": NUL}, "model"),
        ("/v1/admin/devices/HD1", {"kind": "bay_sensor", "spot_id": "H1-1", "model": "m", NUL: 1}, NUL),
    ],
)
async def test_nul_in_a_body_field_is_refused_naming_it(
    api: Client, path: str, body: Any, field: str
) -> None:
    """A NUL anywhere in a body (value or key) is a 422 naming the field, before any SQL."""
    await provision(api)
    await refused(await api.put(path, json=body, headers=ADMIN), field)


async def test_nul_in_tokens_and_queries_is_refused_naming_it(api: Client) -> None:
    """Token labels, the public ?district_id= and the operator's reason filter."""
    await provision(api)
    token = {"role": "operator", "district_ids": ["hx"], "label": NUL}
    await refused(await api.post("/v1/admin/tokens", json=token, headers=ADMIN), "label")
    await refused(await api.get("/v1/lots", params={"district_id": NUL}), "district_id")
    await refused(
        await api.get("/v1/operator/rejected-messages", params={"reason": NUL}, headers=ADMIN), "reason"
    )
    await refused(await api.get("/v1/operator/devices", params={"status": NUL}, headers=ADMIN), "status")


@pytest.mark.parametrize("year", ["0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-08:00"])
async def test_years_1_and_9999_are_refused_naming_the_parameter(api: Client, year: str) -> None:
    """Occupancy and quote times at the ends of the calendar are 400s, not overflows."""
    await provision(api)
    occupancy = "/v1/operator/lots/H1/occupancy"
    await refused(await api.get(occupancy, params={"from": year}, headers=ADMIN), "from")
    await refused(await api.get(occupancy, params={"to": year}, headers=ADMIN), "to")
    quote = {"entry": "2026-11-23T08:00:00+08:00", "exit": year}
    await refused(await api.get("/v1/lots/H1/quote", params=quote), "exit")
    await refused(await api.get("/v1/lots/H1/quote", params={"entry": year, "exit": year}), "entry")


async def test_odd_limits_are_refused(api: Client) -> None:
    """`limit=²` passes isdigit() but is no integer: a 400 naming limit."""
    for limit in ("²", "٣", "1e3", "0x10", " 5"):
        resp = await api.get("/v1/operator/devices", params={"limit": limit}, headers=ADMIN)
        if resp.status != 200:  # ٣ is a decimal digit 3 to Python: accepting it is fine
            await refused(resp, "limit")


async def test_a_deeply_nested_body_is_refused_before_parsing(api: Client) -> None:
    """A tariff body nested 100,000 deep is a 400, not a RecursionError."""
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000):
        resp = await api.put(
            "/v1/admin/tariffs/deep", data=body, headers=ADMIN | {"Content-Type": "application/json"}
        )
        assert resp.status == 400, await resp.text()
        resp = await api.put(
            "/v1/admin/districts/deep", data=body, headers=ADMIN | {"Content-Type": "application/json"}
        )
        assert resp.status == 400, await resp.text()


@pytest.mark.parametrize("tiny", [5e-324, 2.2e-308, -1e-300, 1e-12])
async def test_denormal_coordinates_are_refused_naming_them(api: Client, tiny: float) -> None:
    """Sub-centimetre coordinates next to 0 (underflow in the distance maths) are refused."""
    await provision(api)
    await refused(
        await api.put("/v1/admin/lots/H3", json=LOT | {"lat": tiny, "capacity": 1}, headers=ADMIN), "lat"
    )
    await refused(
        await api.put("/v1/admin/lots/H3", json=LOT | {"lon": tiny, "capacity": 1}, headers=ADMIN), "lon"
    )
    await refused(await api.get("/v1/vacancies", params={"lat": str(tiny), "lon": "113.6"}), "lat")
    await refused(await api.get("/v1/vacancies", params={"lat": "34.7", "lon": repr(tiny)}), "lon")
    ok = await api.get("/v1/vacancies", params={"lat": "0", "lon": "0"})
    assert ok.status == 200


async def test_a_spot_with_a_zone_is_never_a_500(api: Client) -> None:
    """A spot naming a zone is created or refused with a problem naming zone_id."""
    await provision(api)
    lot = LOT | {"spots": [{"spot_id": "H4-1", "zone_id": "Z1"}]}
    resp = await api.put("/v1/admin/lots/H4", json=lot, headers=ADMIN)
    assert resp.status < 500, await resp.text()
    if resp.status >= 400:
        assert "zone_id" in str((await resp.json()).get("errors"))


async def test_a_quote_is_bounded(api: Client) -> None:
    """A stay over the quote maximum is a 400 naming exit; one at the maximum is priced."""
    await provision(api)
    entry = "2026-11-01T08:00:00+08:00"
    long = await api.get("/v1/lots/H1/quote", params={"entry": entry, "exit": "2046-11-01T08:00:00+08:00"})
    await refused(long, "exit", {400})
    month = await api.get("/v1/lots/H1/quote", params={"entry": entry, "exit": "2026-12-02T08:00:00+08:00"})
    assert month.status == 200, await month.text()
    assert (await month.json())["amount_fen"] > 0
