"""Money over HTTP: accounts and plates, a plate's invoices, paying, the notify route, arrears, write-off."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from billing.adapters.ledger_store import raise_invoice
from billing.notify import sign
from tests.integration.api.conftest import ADMIN
from tests.integration.money.helpers import make_lot, stay
from tests.strategies_money import SECRET, capture_body

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
Headers = dict[str, str]


@dataclass(frozen=True)
class World:
    """A lot, a driver bound to `plate` with consent, one overdue invoice of that plate, tokens."""

    lot_id: str
    plate: str
    invoice_id: str
    amount_fen: int
    driver: Headers
    stranger: Headers
    operator: Headers
    other_operator: Headers


async def issue(api: Client, body: dict[str, Any]) -> Headers:
    resp = await api.post("/v1/admin/tokens", json=body, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def driver_with_plate(api: Client, account_id: str, plate: str) -> Headers:
    resp = await api.put(f"/v1/admin/drivers/{account_id}", json={"name": account_id}, headers=ADMIN)
    assert resp.status in {200, 201}
    token = await issue(api, {"role": "driver", "account_id": account_id})
    resp = await api.put(f"/v1/driver/plates/{quote(plate)}", headers=token)
    assert resp.status in {200, 201}, await resp.text()
    resp = await api.put("/v1/driver/consent", json={"pay_later": True}, headers=token)
    assert resp.status == 200
    return token


@pytest.fixture
async def world(api: Client, database_url: str) -> World:
    conn = await asyncpg.connect(database_url)
    try:
        lot_id = await make_lot(conn, "dm")
        other_lot = await make_lot(conn, "dm-other")
    finally:
        await conn.close()
    digits = f"{int(lot_id.rsplit('-', 1)[-1], 16) % 100_000:05d}"
    plate, stranger_plate = f"豫A{digits}", f"豫C{digits}"
    driver = await driver_with_plate(api, f"acc-{digits}", plate)
    conn = await asyncpg.connect(database_url)
    try:
        priced = stay(lot_id, plate)
        invoice_id = await raise_invoice(conn, priced, datetime.now(UTC) - timedelta(days=5))
        assert invoice_id is not None
    finally:
        await conn.close()
    return World(
        lot_id,
        plate,
        invoice_id,
        priced.quote.amount_fen,
        driver,
        await driver_with_plate(api, f"acc-s-{digits}", stranger_plate),
        await issue(api, {"role": "operator", "lot_ids": [lot_id]}),
        await issue(api, {"role": "operator", "lot_ids": [other_lot]}),
    )


async def test_a_plate_is_bound_once_and_its_driver_alone_reads_its_invoices(
    api: Client, world: World
) -> None:
    """The binding route refuses a plate bound elsewhere; invoices are 403 to anyone else."""
    again = await api.put(f"/v1/driver/plates/{quote(world.plate)}", headers=world.driver)
    assert again.status == 200
    taken = await api.put(f"/v1/driver/plates/{quote(world.plate)}", headers=world.stranger)
    assert taken.status == 409
    assert (await taken.json())["type"].endswith("/plate_bound")
    url = f"/v1/plates/{quote(world.plate)}/invoices?status=all"
    for headers in (world.stranger, world.operator):
        assert (await api.get(url, headers=headers)).status == 403
    assert (await api.get(url)).status == 401
    resp = await api.get(url, headers=world.driver)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    (item,) = [i for i in body["items"] if i["invoice_id"] == world.invoice_id]
    assert (item["amount_fen"], item["due_fen"], item["status"]) == (
        world.amount_fen,
        world.amount_fen,
        "in_arrears",
    )
    assert body["arrears_fen"] >= world.amount_fen
    assert sum(line["amount_fen"] for line in item["lines"]) == world.amount_fen
    account = await (await api.get("/v1/driver/account", headers=world.driver)).json()
    assert world.plate in [p["plate"] for p in account["plates"]]
    assert account["pay_later_consent"] is True


async def test_bad_plate_status_and_invoice_ids_are_400_naming_the_field(api: Client, world: World) -> None:
    cases = [
        (f"/v1/plates/{quote('not a plate')}/invoices", "plate"),
        (f"/v1/plates/{quote(world.plate)}/invoices?status=overdue", "status"),
        (f"/v1/plates/{quote(world.plate)}/invoices?limit=0", "limit"),
    ]
    for url, field in cases:
        resp = await api.get(url, headers=ADMIN)
        assert resp.status == 400, url
        assert [e["field"] for e in (await resp.json())["errors"]] == [field]
    resp = await api.post("/v1/invoices/inv_nope/payments", json={"provider": "wechatpay"}, headers=ADMIN)
    assert resp.status == 400
    resp = await api.post(
        f"/v1/invoices/{world.invoice_id}/payments", json={"provider": "paypal"}, headers=ADMIN
    )
    assert resp.status == 422
    unknown = "inv_" + "0" * 24
    resp = await api.post(f"/v1/invoices/{unknown}/payments", json={"provider": "alipay"}, headers=ADMIN)
    assert resp.status == 404
    assert (await resp.json())["type"].endswith("/unknown_invoice")


def notify_headers(body: bytes, nonce: str, at: datetime | None = None, secret: bytes = SECRET) -> Headers:
    timestamp = str(int((at or datetime.now(UTC)).timestamp()))
    return {
        "X-Pay-Timestamp": timestamp,
        "X-Pay-Nonce": nonce,
        "X-Pay-Signature": sign(secret, timestamp, nonce, body),
        "Content-Type": "application/json",
    }


async def test_pay_then_notify_answers_as_the_rails_expect_and_moves_money_once(
    api: Client, world: World
) -> None:
    """204 for a capture and its duplicate; 401 SIGN_ERROR forged; 400 stale and replayed; 409 after paid."""
    resp = await api.post(
        f"/v1/invoices/{world.invoice_id}/payments", json={"provider": "wechatpay"}, headers=world.operator
    )
    assert resp.status == 201, await resp.text()
    order = await resp.json()
    assert order["amount_fen"] == world.amount_fen
    params = order["pay_params"]
    signed_part = {
        k: params[k] for k in ("out_trade_no", "amount_fen", "currency", "notify_url", "time_expire")
    }
    canonical = json.dumps(signed_part, sort_keys=True, separators=(",", ":")).encode()
    assert params["signature"] == sign(SECRET, params["timestamp"], params["nonce"], canonical)
    assert params["notify_url"].endswith("/v1/payments/notify/wechatpay")
    body = capture_body("EV-1", f"tx-{order['payment_id']}", order["payment_id"], world.amount_fen)
    url = "/v1/payments/notify/wechatpay"
    headers = notify_headers(body, f"n1-{order['payment_id']}")
    first = await api.post(url, data=body, headers=headers)
    assert first.status == 204
    replay = await api.post(url, data=body, headers=headers)
    assert (replay.status, (await replay.json())["code"]) == (400, "PARAM_ERROR")
    retry = await api.post(url, data=body, headers=notify_headers(body, f"n2-{order['payment_id']}"))
    assert retry.status == 204
    forged = await api.post(url, data=body, headers=notify_headers(body, "n3", secret=b"guess"))
    assert (forged.status, (await forged.json())["code"]) == (401, "SIGN_ERROR")
    stale_at = datetime.now(UTC) - timedelta(minutes=10)
    stale = await api.post(url, data=body, headers=notify_headers(body, "n4", stale_at))
    assert stale.status == 400
    unknown = await api.post("/v1/payments/notify/paypal", data=body, headers=notify_headers(body, "n5"))
    assert unknown.status == 404
    again = await api.post(
        f"/v1/invoices/{world.invoice_id}/payments", json={"provider": "alipay"}, headers=world.operator
    )
    assert again.status == 409
    assert (await again.json())["type"].endswith("/nothing_due")
    resp = await api.get(f"/v1/plates/{quote(world.plate)}/invoices?status=paid", headers=ADMIN)
    (item,) = [i for i in (await resp.json())["items"] if i["invoice_id"] == world.invoice_id]
    assert (item["status"], item["paid_fen"], item["due_fen"]) == ("paid", world.amount_fen, 0)


async def test_an_invoice_takes_at_most_five_open_orders(api: Client, world: World) -> None:
    """An app retrying is fine; a loop is refused with 429 until an order is paid or expires."""
    url = f"/v1/invoices/{world.invoice_id}/payments"
    for _ in range(5):
        assert (await api.post(url, json={"provider": "alipay"}, headers=world.driver)).status == 201
    sixth = await api.post(url, json={"provider": "alipay"}, headers=world.driver)
    assert sixth.status == 429
    assert (await sixth.json())["type"].endswith("/too_many_orders")


async def test_operator_arrears_are_scoped_and_paged_and_a_write_off_clears_one(
    api: Client, world: World
) -> None:
    mine = await api.get("/v1/operator/arrears", headers=world.operator)
    assert mine.status == 200, await mine.text()
    items = (await mine.json())["items"]
    assert {i["lot_id"] for i in items} == {world.lot_id}
    assert world.invoice_id in {i["invoice_id"] for i in items}
    theirs = await (await api.get("/v1/operator/arrears", headers=world.other_operator)).json()
    assert world.invoice_id not in {i["invoice_id"] for i in theirs["items"]}
    forbidden = await api.get(f"/v1/operator/arrears?lot_id={world.lot_id}", headers=world.other_operator)
    assert forbidden.status == 403
    assert (await api.get("/v1/operator/arrears", headers=world.driver)).status == 403
    pages, after = [], ""
    while True:
        resp = await api.get(f"/v1/operator/arrears?limit=1{after}", headers=ADMIN)
        page = await resp.json()
        pages += page["items"]
        if page["next"] is None:
            break
        after = f"&after={quote(page['next'])}"
    assert len({i["invoice_id"] for i in pages}) == len(pages) >= 1
    write = f"/v1/operator/invoices/{world.invoice_id}/write-off"
    assert (await api.post(write, json={"reason": "x"}, headers=world.operator)).status == 422
    refused = await api.post(write, json={"reason": "hardship", "amount_fen": 10**7}, headers=world.operator)
    assert refused.status == 422
    assert (await refused.json())["type"].endswith("/money_rule")
    other = await api.post(write, json={"reason": "hardship"}, headers=world.other_operator)
    assert other.status == 403
    done = await api.post(write, json={"reason": "hardship"}, headers=world.operator)
    assert done.status == 200, await done.text()
    assert (await done.json())["due_fen"] == 0


async def test_an_adjustment_changes_what_is_owed_never_below_what_is_due(api: Client, world: World) -> None:
    url = f"/v1/operator/invoices/{world.invoice_id}/adjustments"
    up = await api.post(
        url, json={"amount_fen": 300, "reason": "night surcharge missed"}, headers=world.operator
    )
    assert up.status == 200, await up.text()
    assert (await up.json())["due_fen"] == world.amount_fen + 300
    too_far = await api.post(
        url, json={"amount_fen": -(world.amount_fen + 301), "reason": "x" * 3}, headers=ADMIN
    )
    assert (too_far.status, (await too_far.json())["type"].rsplit("/", 1)[-1]) == (422, "money_rule")
    zero = await api.post(url, json={"amount_fen": 0, "reason": "nothing"}, headers=ADMIN)
    assert [e["field"] for e in (await zero.json())["errors"]] == ["amount_fen"]
    assert (
        await api.post(url, json={"amount_fen": -300, "reason": "back"}, headers=world.other_operator)
    ).status == 403
    assert (await api.post(url, json={"amount_fen": -300, "reason": "back"})).status == 401
    down = await api.post(url, json={"amount_fen": -300, "reason": "goodwill"}, headers=world.operator)
    assert (await down.json())["amount_fen"] == world.amount_fen


async def test_a_lot_money_policy_is_set_by_the_admin_only(api: Client, world: World) -> None:
    url = f"/v1/admin/lots/{world.lot_id}/money-policy"
    policy = {"pay_later": False, "arrears_limit_fen": 100, "deny_entry_when_blacklisted": True}
    assert (await api.put(url, json=policy, headers=world.operator)).status == 403
    resp = await api.put(url, json=policy, headers=ADMIN)
    assert resp.status in {200, 201}
    assert (await resp.json())["pay_within_s"] == 259200
    assert (await api.put("/v1/admin/lots/nope/money-policy", json=policy, headers=ADMIN)).status == 404
    bad = await api.put(url, json={"arrears_limit_fen": -1}, headers=ADMIN)
    assert bad.status == 422
