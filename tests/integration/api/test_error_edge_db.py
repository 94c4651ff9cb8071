"""The error edge on a real PostgreSQL: SQLSTATE classes become 400/409/422/503, never a 500."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, make_mocked_request

from guidance_api.app import create_app
from guidance_api.error_edge import translate
from parking_core.adapters.settings import Settings

pytestmark = pytest.mark.db

Client = TestClient[Any, Any]
MakeClient = Callable[[web.Application], Awaitable[Client]]
GET = make_mocked_request("GET", "/v1/lots")
PUT = make_mocked_request("PUT", "/v1/admin/lots/X")


async def caught(database_url: str, sql: str, *args: Any) -> asyncpg.PostgresError:
    """Run *sql* on the real database and return the error PostgreSQL raised."""
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.PostgresError) as raised:
            await conn.execute(sql, *args)
    finally:
        await conn.close()
    return raised.value


async def test_data_exceptions_are_the_clients_input(database_url: str) -> None:
    """Class 22 (bad text for a type, a NUL byte) is 400 without a body and 422 with one."""
    bad_int = await caught(database_url, "SELECT 'abc'::int")
    nul = await caught(database_url, "SELECT $1::text", "a\x00b")
    assert (bad_int.sqlstate, nul.sqlstate) == ("22P02", "22021")
    assert (translate(bad_int, GET).status, translate(bad_int, GET).slug) == (400, "validation")
    assert translate(nul, PUT).status == 422


async def test_integrity_errors_name_their_constraint(database_url: str) -> None:
    """Class 23: a duplicate is a 409, a missing reference and a broken check are 422."""
    await caught(database_url, "INSERT INTO districts VALUES ('d1', 'x'), ('d1', 'y')")
    duplicate = await caught(database_url, "INSERT INTO districts VALUES ('d1', 'x'), ('d1', 'y')")
    missing = await caught(
        database_url,
        "INSERT INTO lots (lot_id, district_id, name, kind, lat, lon, capacity)"
        " VALUES ('L', 'nowhere', 'n', 'on_street', 0, 0, 1)",
    )
    check = await caught(database_url, "INSERT INTO districts VALUES ('bad id!', 'x')")
    found = [translate(exc, PUT) for exc in (duplicate, missing, check)]
    assert [(p.status, p.slug) for p in found] == [
        (409, "conflict"),
        (422, "unknown_reference"),
        (422, "validation"),
    ]
    assert [p.extra["constraint"] for p in found] == [
        "districts_pkey",
        "lots_district_id_fkey",
        "districts_district_id_check",
    ]
    assert found[1].errors[0]["field"] == "district_id"


async def test_a_terminated_connection_is_503_with_retry_after(database_url: str) -> None:
    """An administrator's shutdown of the backend (08003 in the middle of a query, then a closed
    connection) means: retry.
    """
    conn = await asyncpg.connect(database_url)
    try:
        with pytest.raises(asyncpg.PostgresError) as during:
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        with pytest.raises(asyncpg.InterfaceError) as after:
            await conn.execute("SELECT 1")
    finally:
        conn.terminate()
    assert during.value.sqlstate == "08003"
    for exc in (during.value, after.value):
        problem = translate(exc, GET)
        assert (problem.status, problem.slug) == (503, "unavailable")
        assert problem.headers == {"Retry-After": "2"}


async def test_a_pooled_connection_killed_by_the_server_is_never_a_500(
    app_settings: Settings, database_url: str, aiohttp_client: MakeClient
) -> None:
    """The request that meets the dead connection may get a 503 to retry; the next one succeeds."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        api = await aiohttp_client(create_app(app_settings, pool))
        pid = await pool.fetchval("SELECT pg_backend_pid()")
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        first = await api.get("/v1/lots")
        assert first.status in {200, 503}
        if first.status == 503:
            assert first.headers["Retry-After"] == "2"
        assert (await api.get("/v1/lots")).status == 200
    finally:
        await pool.close()


async def test_a_closed_pool_answers_503_not_500(
    app_settings: Settings, database_url: str, aiohttp_client: MakeClient
) -> None:
    """While the server shuts down its pool, requests get a problem that says to retry."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    api = await aiohttp_client(create_app(app_settings, pool))
    await pool.close()
    resp = await api.get("/v1/lots")
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "2"
    assert (await resp.json())["type"].endswith("/unavailable")


async def test_a_nul_byte_in_a_query_parameter_is_400(
    app_settings: Settings, aiohttp_client: MakeClient
) -> None:
    """Text PostgreSQL cannot store reaches it only as a 400, whichever route it came through."""
    api = await aiohttp_client(create_app(app_settings))
    headers = {"Authorization": "Bearer test-admin-token-of-32-characters-or-more"}
    resp = await api.get("/v1/operator/rejected-messages", params={"reason": "a\x00b"}, headers=headers)
    assert resp.status == 400
    assert resp.content_type == "application/problem+json"
