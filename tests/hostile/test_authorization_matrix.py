"""Every route of the OpenAPI document, called as anonymous, a driver of another plate, an operator
of another district and the admin: each gets what the route's audience allows, and nothing more.

Generated from `/v1/openapi.json` (`x-audience` of each operation), so a route added later is
checked without touching this file. The ids named in paths belong to district A; the operator's
token covers district B only, the driver's is another account's (none of A's plates).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.api.conftest import ADMIN

pytestmark = [pytest.mark.hostile, pytest.mark.db]
Client = TestClient[Any, Any]
A_IDS = {  # district A's ids: they must never reach a caller whose scope is district B
    "district_id": "authz-a",
    "lot_id": "AUTHZ-LOT-A",
    "spot_id": "AUTHZ-SPOT-A",
    "device_id": "AUTHZ-DEV-A",
    "tariff_id": "authz-tariff",
    "token_id": "tok_nonexistent",
    "account_id": "authz-account-a",
    "invoice_id": "inv_" + "0" * 24,
    "plate": "豫A12345",
    "asset": "index.html",
}
QUERY_VALUES = {
    "lat": "34.75",
    "lon": "113.62",
    "entry": "2026-11-23T08:00:00+08:00",
    "exit": "2026-11-23T10:00:00+08:00",
}
AUTH_REFUSED = {401, 403}
STREAM_WAIT_S = 10.0  # an event stream sends its first event at once


async def provision(api: Client) -> dict[str, dict[str, str]]:
    """District A with a lot, a spot and a sensor; district B; return each principal's headers."""
    for district in ("authz-a", "authz-b"):
        assert (await api.put(f"/v1/admin/districts/{district}", json={"name": district}, headers=ADMIN)).ok
    lot = {
        "name": "A",
        "kind": "on_street",
        "district_id": "authz-a",
        "lat": 34.75,
        "lon": 113.62,
        "spots": [{"spot_id": "AUTHZ-SPOT-A"}],
    }
    assert (await api.put("/v1/admin/lots/AUTHZ-LOT-A", json=lot, headers=ADMIN)).ok
    lot_b = lot | {"district_id": "authz-b", "spots": [{"spot_id": "AUTHZ-SPOT-B"}]}
    assert (await api.put("/v1/admin/lots/AUTHZ-LOT-B", json=lot_b, headers=ADMIN)).ok
    device = {"kind": "bay_sensor", "spot_id": "AUTHZ-SPOT-A"}
    assert (await api.put("/v1/admin/devices/AUTHZ-DEV-A", json=device, headers=ADMIN)).ok
    operator = await api.post(
        "/v1/admin/tokens", headers=ADMIN, json={"role": "operator", "district_ids": ["authz-b"]}
    )
    driver = await api.post(
        "/v1/admin/tokens", headers=ADMIN, json={"role": "driver", "plates": ["豫B99999"]}
    )
    return {
        "anonymous": {},
        "driver": {"Authorization": f"Bearer {(await driver.json())['token']}"},
        "operator": {"Authorization": f"Bearer {(await operator.json())['token']}"},
        "admin": ADMIN,
    }


def request_of(path: str, operation: dict[str, Any]) -> tuple[str, dict[str, str], Any]:
    """Return a URL naming district A's ids, its required query values, and an empty JSON body."""
    url = re.sub(r"\{(\w+)\}", lambda m: A_IDS.get(m[1], "x"), path)
    query = {
        p["name"]: QUERY_VALUES.get(p["name"], A_IDS.get(p["name"], "x"))
        for p in operation["parameters"]
        if p["in"] == "query" and (p["required"] or p["name"] in A_IDS)
    }
    return url, query, {} if "requestBody" in operation else None


async def body_of(resp: Any) -> str:
    """Return the body; of an event stream (it never ends), its first chunk: the snapshot."""
    if resp.content_type != "text/event-stream":
        return str(await resp.text())
    try:
        return bytes(await asyncio.wait_for(resp.content.readany(), STREAM_WAIT_S)).decode()
    finally:
        resp.close()


def allowed(audience: str, who: str) -> bool:
    """Tell whether *who* may call a route of *audience* at all (its scope is checked apart).

    Driver routes about an invoice or a plate also serve an operator of its lot (an exit pay
    station), so an operator is in role there and must be refused by scope, not by role.
    """
    ranks = {
        "public": {"anonymous", "driver", "operator", "admin"},
        "operator": {"operator", "admin"},
        "driver": {"driver", "operator", "admin"},
        "admin": {"admin"},
    }
    return who in ranks[audience]


async def test_every_route_answers_each_caller_as_its_audience_allows(api: Client) -> None:
    """401 without a token, 403 for the wrong role, and an operator of district B never sees A."""
    principals = await provision(api)
    document = await (await api.get("/v1/openapi.json")).json()
    checked: list[str] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            audience = operation["x-audience"]
            url, query, body = request_of(path, operation)
            for who in ("anonymous", "driver", "operator", "admin"):
                resp = await api.request(
                    method.upper(),
                    url,
                    params=query,
                    json=body,
                    headers=principals[who],
                    allow_redirects=False,
                )
                text = await body_of(resp)
                where = f"{method.upper()} {path} as {who}: {resp.status} {text[:200]}"
                assert resp.status < 500, where
                if not allowed(audience, who):
                    assert resp.status == (401 if who == "anonymous" else 403), where
                elif audience != "public" and who in {"operator", "driver"}:
                    # in role, out of scope (district B, another account's plates): refused, or
                    # answered without a trace of district A
                    leaked = [  # ids of A the caller did not name itself
                        v for v in A_IDS.values() if v not in url and json.dumps(v)[1:-1] in text
                    ]
                    assert resp.status in AUTH_REFUSED | {404} or not leaked, where
                elif not (audience == "driver" and who == "admin"):  # "my account" has no admin
                    assert resp.status not in AUTH_REFUSED, where
            checked.append(f"{method.upper()} {path}")
    assert len(checked) == sum(len(ops) for ops in document["paths"].values()) >= 20
