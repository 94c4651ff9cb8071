"""Every route of the OpenAPI document, called as anonymous, a driver of another plate, an operator
of another district and the admin: each gets what the route's audience allows, and nothing more.

Generated from `/v1/openapi.json` (`x-audience` of each operation), so a route added later is
checked without touching this file. The ids named in paths belong to district A (its lot, spot,
gate, an open session and an invoice exist); the operator's token covers district B only, the
driver's is another account's (none of A's plates).

A caller who may not use a route (refused by its audience, or naming A's things without A in its
scope) is refused whatever it sends: every route is called again by each of them with bodies that
are not JSON or of no route's shape, and must answer 401/403, never 400 or 422.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import asyncpg
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
    "session_id": "00000000-0000-4000-8000-00000000000a",
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
# Not JSON, and JSON of no route's shape: a refused caller must not learn what the body should be.
MALFORMED_BODIES = (b'{"lot_id": ', json.dumps({"unexpected": [1, {"deep": None}], "plate": 7}).encode())
# The path ids that make a route act on district A's things, by the scope of each in-role caller:
# the operator's token covers district B only, the driver's holds none of A's plates.
SCOPED_BY = {
    "operator": frozenset(A_IDS) - {"token_id", "account_id", "tariff_id", "asset"},
    "driver": frozenset({"plate", "invoice_id", "session_id"}),
}
STREAM_WAIT_S = 10.0  # an event stream sends its first event at once


async def provision(api: Client, db: asyncpg.Connection) -> dict[str, dict[str, str]]:
    """District A with a lot, a spot, a gate, an open session and an invoice; district B; return each
    principal's headers (again: both tests of the module share its database).
    """
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
    gate = {"kind": "gate", "lot_id": "AUTHZ-LOT-A", "lane": "both"}
    assert (await api.put("/v1/admin/devices/AUTHZ-DEV-A", json=gate, headers=ADMIN)).ok
    await db.execute(
        "INSERT INTO sessions (session_id, lot_id, kind, state, spot_id, started_at)"
        " VALUES ($1, 'AUTHZ-LOT-A', 'bay', 'open', 'AUTHZ-SPOT-A', now() - interval '1 hour')"
        " ON CONFLICT DO NOTHING",
        uuid.UUID(A_IDS["session_id"]),
    )
    await db.execute(
        "INSERT INTO invoices (invoice_id, session_id, lot_id, plate, entry_at, exit_at, amount_fen, lines,"
        " tariff_id, tariff_version, issued_at, due_at)"
        " VALUES ($1, 'authz-session', 'AUTHZ-LOT-A', $2, now() - interval '3 hours',"
        " now() - interval '2 hours', 600, '[]', 'authz-tariff', 1, now(), now() + interval '7 days')"
        " ON CONFLICT DO NOTHING",
        A_IDS["invoice_id"],
        A_IDS["plate"],
    )
    await db.execute(
        "INSERT INTO invoice_balances (invoice_id, plate, lot_id, due_at, invoiced_fen)"
        " VALUES ($1, $2, 'AUTHZ-LOT-A', now() + interval '7 days', 600) ON CONFLICT DO NOTHING",
        A_IDS["invoice_id"],
        A_IDS["plate"],
    )
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


def may_not_use(path: str, audience: str, who: str) -> bool:
    """Tell whether *who* may not call *path* as the matrix names it: refused by the audience, or in
    role but naming district A's things (the admin and the public routes have no such limit).
    """
    if not allowed(audience, who):
        return True
    names = set(re.findall(r"\{(\w+)\}", path))
    return audience != "public" and bool(names & SCOPED_BY.get(who, frozenset()))


async def test_every_route_answers_each_caller_as_its_audience_allows(
    api: Client, db: asyncpg.Connection
) -> None:
    """401 without a token, 403 for the wrong role, and an operator of district B never sees A."""
    principals = await provision(api, db)
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


async def test_a_caller_who_may_not_use_a_route_is_refused_whatever_the_body(
    api: Client, db: asyncpg.Connection
) -> None:
    """Authorization comes before validation: a malformed body never turns a 401/403 into a 400/422
    (which would tell a caller without rights what the route expects, and that the ids exist).
    """
    principals = await provision(api, db)
    document = await (await api.get("/v1/openapi.json")).json()
    refused: list[str] = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            url, query, _ = request_of(path, operation)
            for who in ("anonymous", "driver", "operator"):
                if not may_not_use(path, operation["x-audience"], who):
                    continue
                for body in MALFORMED_BODIES:
                    headers = principals[who] | {"Content-Type": "application/json"}
                    resp = await api.request(
                        method.upper(), url, params=query, data=body, headers=headers, allow_redirects=False
                    )
                    text = await body_of(resp)
                    where = f"{method.upper()} {path} as {who} with {body!r}: {resp.status} {text[:200]}"
                    assert resp.status == (401 if who == "anonymous" else 403), where
                refused.append(f"{method.upper()} {path} as {who}")
    # every route but the public ones refuses the anonymous caller; the scoped ones, the others too
    assert sum(1 for r in refused if r.endswith("as anonymous")) >= 20
    assert "POST /v1/invoices/{invoice_id}/payments as operator" in refused
    assert "POST /v1/invoices/{invoice_id}/payments as driver" in refused
