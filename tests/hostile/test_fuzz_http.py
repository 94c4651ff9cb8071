"""Schemathesis over the served `/v1/openapi.json`: bounded, seeded, derandomized; no 5xx, ever.

Every operation of the document (routes added later included: the list comes from the same route
table) gets generated paths, queries and bodies, valid and invalid, sent with the admin token so
that nothing stops at authentication.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.generation.case import Case
from schemathesis.schemas import BaseSchema

from guidance_api.app import all_routes
from guidance_api.openapi import streams
from tests.integration.api.conftest import ADMIN

pytestmark = [pytest.mark.hostile, pytest.mark.db]
EXAMPLES_PER_OPERATION = 30  # ~700 requests in all, valid and invalid: a minute here
DOCUMENT = all_routes().document("x", "0")
# Server-sent events never end: a generated call would read the stream for ever. The document marks
# them (`text/event-stream` answers); the authorization matrix and the operator page test read their
# first event instead.
STREAMS = frozenset(
    (method.upper(), path)
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
    if streams(operation)
)
OPERATIONS = sorted(
    (method.upper(), path)
    for path, methods in DOCUMENT["paths"].items()
    for method in methods
    if (method.upper(), path) not in STREAMS
)


@pytest.fixture(scope="module")
def api_schema(live_api: str) -> BaseSchema:
    """Load the document the running API serves; calls go to that API."""
    schema = schemathesis.openapi.from_url(f"{live_api}/v1/openapi.json")
    schema.config.update(base_url=live_api)
    return schema


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_generated_request_is_a_server_error(api_schema: BaseSchema, method: str, path: str) -> None:
    """Whatever the generator sends to this operation, the answer is a success or a problem."""
    operation = api_schema[path][method]
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)
    )
    session = requests.Session()

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases)
    def call(case: Case[Any]) -> None:
        response = case.call(session=session, headers=ADMIN, timeout=30)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} {case.query}: {response.text[:400]}"
        )

    try:
        call()
    finally:
        session.close()


def test_the_event_stream_is_marked_in_the_document() -> None:
    """The exclusion above comes from the document: the live feed is the stream it names."""
    assert ("GET", "/v1/operator/live") in STREAMS
    assert not STREAMS & set(OPERATIONS)
