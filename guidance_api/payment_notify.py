"""The payment providers' route: signed result notifications, answered as the rails expect."""

from __future__ import annotations

import structlog
from aiohttp import web

from billing.adapters.notify_store import Delivery, receive
from billing.notify import NONCE_HEADER, PROVIDERS, SIGNATURE_HEADER, TIMESTAMP_HEADER, SignedHeaders
from billing.payments import NotifyAnswer
from guidance_api.context import DB_POOL, SETTINGS, utc_now
from guidance_api.openapi import Param, RouteDoc, Routes

routes = Routes()
log = structlog.get_logger("guidance_api.payments")
MAX_NOTIFY_BODY = 16 * 1024  # a real notification is about 1 KiB; anything far larger is refused unread

ANSWER_SCHEMA = {
    "type": "object",
    "description": "only on failure (WeChat Pay v3's shape); success is an empty 204",
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
}


def failure(status: int, code: str, message: str) -> web.Response:
    """Return a failure answer in the provider's shape (it will retry the notification)."""
    return web.json_response({"code": code, "message": message}, status=status)


@routes.add(
    RouteDoc(
        "POST",
        "/v1/payments/notify/{provider}",
        "A payment provider's signed result notification",
        "payments",
        "public",
        (Param("provider", "path", {"enum": sorted(PROVIDERS)}),),
        response=ANSWER_SCHEMA,
        status=204,
    )
)
async def post_notify(request: web.Request) -> web.Response:
    """Signed with HMAC-SHA256 over the timestamp, the nonce and the body, each followed by a
    newline (headers `X-Pay-Timestamp`, `X-Pay-Nonce`, `X-Pay-Signature`; secret
    `PARKING_PAYMENT_SECRET`), compared in constant time. A timestamp more than 5 minutes off and a
    nonce seen before are refused. Idempotent per provider transaction id: a repeated capture
    answers success and moves nothing; a capture for an invoice already paid is recorded and
    refunded. Success is 204 with no body; a failure is 4xx with `{"code", "message"}`
    (`SIGN_ERROR`, `PARAM_ERROR`, `RESOURCE_NOT_EXISTS`), and the provider retries. docs/money.md.
    """
    provider = request.match_info["provider"]
    secret = request.app[SETTINGS].payment_secret
    if secret is None:
        return failure(503, "SYSTEM_ERROR", "payments are not configured")
    if request.content_length is not None and request.content_length > MAX_NOTIFY_BODY:
        return failure(413, "PARAM_ERROR", f"a notification is at most {MAX_NOTIFY_BODY} bytes")
    body = await request.content.read(MAX_NOTIFY_BODY + 1)
    if len(body) > MAX_NOTIFY_BODY:
        return failure(413, "PARAM_ERROR", f"a notification is at most {MAX_NOTIFY_BODY} bytes")
    headers = SignedHeaders(
        request.headers.get(TIMESTAMP_HEADER),
        request.headers.get(NONCE_HEADER),
        request.headers.get(SIGNATURE_HEADER),
    )
    received = await receive(
        request.app[DB_POOL], Delivery(provider, headers, body), secret.get_secret_value().encode(), utc_now()
    )
    answer = received.answer
    log.info(
        "payment.notified",
        provider=provider,
        answer=answer.value,
        transaction_id=received.transaction_id,
    )
    if answer.ok:
        return web.Response(status=answer.http_status)
    return failure(answer.http_status, answer.provider_code, _message(answer))


def _message(answer: NotifyAnswer) -> str:
    return answer.value.replace("_", " ")
