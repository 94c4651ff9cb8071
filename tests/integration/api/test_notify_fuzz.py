"""The notify route under arbitrary input: never a 500, never money moved by anything unsigned."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.notify import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from guidance_api.app import create_app
from parking_core.adapters.settings import Settings
from tests.strategies_money import SECRET, capture_body

pytestmark = pytest.mark.db
PROVIDERS = st.sampled_from(["wechatpay", "alipay", "paypal", "%E5%BE%AE", "x" * 70])
# What a client can put in a header: printable Latin-1 (aiohttp refuses control characters itself).
TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80)
BODIES = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda n, a: capture_body("EV", f"tx-fz-{n}", f"pay_fz_{n}", a),
        st.integers(0, 99),
        st.integers(1, 9999),
    ),
)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[str, dict[str, str], bytes]:
    """A provider, headers (absent, garbage, or a right signature over a fresh or stale time), a body."""
    body = draw(BODIES)
    headers: dict[str, str] = {}
    how = draw(st.sampled_from(["none", "garbage", "signed", "stale"]))
    if how == "garbage":
        for name in (TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER):
            if draw(st.booleans()):
                headers[name] = draw(TEXT)
    elif how in {"signed", "stale"}:
        at = int(time.time()) - (3600 if how == "stale" else 0)
        nonce = f"fz-{draw(st.integers(0, 10**9))}"
        headers = {
            TIMESTAMP_HEADER: str(at),
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: sign(SECRET, str(at), nonce, body),
        }
    return draw(PROVIDERS), headers, body


async def deliver(app_settings: Settings, cases: list[tuple[str, dict[str, str], bytes]]) -> list[Any]:
    out = []
    async with TestServer(create_app(app_settings)) as server, aiohttp.ClientSession() as session:
        for provider, headers, body in cases:
            async with session.post(
                server.make_url(f"/v1/payments/notify/{provider}"), data=body, headers=headers
            ) as resp:
                out.append((resp.status, await resp.read(), resp.content_type))
    return out


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=st.lists(deliveries(), min_size=1, max_size=8))
def test_arbitrary_notifications_get_a_provider_answer_and_move_no_money(
    app_settings: Settings, database_url: str, cases: list[tuple[str, dict[str, str], bytes]]
) -> None:
    """Only 204, 400, 401, 404 (JSON `{code, message}` when not 204); no capture for unknown orders."""

    async def run() -> None:
        before = await count_captures(database_url)
        answers = await deliver(app_settings, cases)
        for status, body, content_type in answers:
            assert status in {204, 400, 401, 404}, (status, body)
            if status != 204:
                assert content_type == "application/json"
                assert set(json.loads(body)) == {"code", "message"}
        assert await count_captures(database_url) == before  # no fuzzed order exists: nothing applied

    asyncio.run(run())


def test_a_signed_body_with_a_nul_byte_is_refused_not_stored(app_settings: Settings) -> None:
    """PostgreSQL text cannot hold NUL: the logged body replaces it, the answer is a 400, not a 422."""
    at, nonce, body = str(int(time.time())), "fz-nul", b'{"event":"\x00"}'
    headers = {TIMESTAMP_HEADER: at, NONCE_HEADER: nonce, SIGNATURE_HEADER: sign(SECRET, at, nonce, body)}
    [(status, answer, _)] = asyncio.run(deliver(app_settings, [("wechatpay", headers, body)]))
    assert status == 400, answer
    assert json.loads(answer)["code"] == "PARAM_ERROR"


async def count_captures(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM payment_captures"))
    finally:
        await conn.close()
