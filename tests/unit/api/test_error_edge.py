"""The one error edge: its table is ordered, its slugs are the documented ones, each error maps right."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from asyncpg.exceptions import InternalClientError

from billing import ExitBeforeEntryError, NaiveDatetimeError, NoTariffInForceError, parse_tariff
from billing.errors import TariffValidationError
from guidance_api import problem_types as pt
from guidance_api.error_edge import TRANSLATIONS, translate
from guidance_api.problems import ProblemError
from parking_core.adapters.provisioning import ConflictError, UnknownReferenceError
from parking_core.errors import InvalidIdError, UnknownSpotError, WrongSpotError
from parking_core.ids import SpotId

DOCS = Path(__file__).resolve().parents[3] / "docs" / "api.md"
GET = make_mocked_request("GET", "/v1/lots/X")
PUT = make_mocked_request("PUT", "/v1/admin/lots/X")


def test_no_entry_of_the_table_hides_a_later_one() -> None:
    """First match wins, so a subclass must come before its base."""
    classes = [cls for cls, _ in TRANSLATIONS]
    for i, earlier in enumerate(classes):
        for later in classes[i + 1 :]:
            assert not issubclass(later, earlier), f"{later.__name__} is hidden by {earlier.__name__}"


def test_slugs_are_unique_snake_case_and_under_one_host() -> None:
    """One spelling per problem: `invalid_tariff`, never `invalid-tariff` or another host."""
    slugs = [kind.slug for kind in pt.CATALOGUE]
    assert len(slugs) == len(set(slugs))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", slug) for slug in slugs)
    assert {kind.uri.removesuffix(kind.slug) for kind in pt.CATALOGUE} == {pt.PROBLEM_TYPE_BASE}


def test_docs_list_every_slug_with_its_statuses() -> None:
    """docs/api.md's table of problem types is the catalogue, slug by slug and status by status."""
    rows = re.findall(r"^\| `([a-z_]+)` \| ([0-9, ]+) \|", DOCS.read_text(), flags=re.MULTILINE)
    documented = {slug: tuple(int(s) for s in statuses.split(",")) for slug, statuses in rows}
    assert documented == {kind.slug: kind.statuses for kind in pt.CATALOGUE}


def test_every_problem_type_is_used_somewhere_in_the_api() -> None:
    """No slug is listed that nothing can answer with."""
    source = "\n".join(p.read_text() for p in (DOCS.parents[1] / "guidance_api").glob("*.py"))
    for name, value in vars(pt).items():
        if isinstance(value, pt.ProblemType):
            assert re.search(rf"\bpt\.{name}\b", source), name


def tariff_error() -> TariffValidationError:
    with pytest.raises(TariffValidationError) as caught:
        parse_tariff({"tariff_id": "bad id!"})
    return caught.value


CASES = [
    (InvalidIdError("lot", "豫"), GET, 400, "validation", "lot_id"),
    (InvalidIdError("spot", "a b"), PUT, 422, "validation", "spot_id"),
    (UnknownSpotError(SpotId("S1")), GET, 404, "unknown_spot", None),
    (WrongSpotError(SpotId("S1"), SpotId("S2")), PUT, 422, "validation", None),
    (ExitBeforeEntryError(datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)), GET, 400,
     "validation", "exit"),
    (NaiveDatetimeError("entry", datetime(2026, 1, 1)), GET, 400, "validation", "entry"),
    (NoTariffInForceError("T", datetime(2026, 1, 1, tzinfo=UTC)), GET, 404, "no_tariff", None),
    (tariff_error(), PUT, 422, "invalid_tariff", "tariff_id"),
    (UnknownReferenceError("unknown district 'x'", "district_id"), PUT, 422, "unknown_reference",
     "district_id"),
    (ConflictError("spot bound twice", "spot_id"), PUT, 409, "conflict", "spot_id"),
    (web.HTTPNotFound(), GET, 404, "not_found", None),
    (web.HTTPMethodNotAllowed("DELETE", ["GET"]), GET, 405, "method_not_allowed", None),
    (web.HTTPRequestEntityTooLarge(8, 9), PUT, 413, "body_too_large", None),
    (asyncpg.InterfaceError("pool is closing"), GET, 503, "unavailable", None),
    (asyncpg.InterfaceError("connection is closed"), GET, 503, "unavailable", None),
    (InternalClientError("cannot switch to state 11"), GET, 503, "unavailable", None),
    (ConnectionRefusedError(111, "Connection refused"), GET, 503, "unavailable", None),
    (TimeoutError(), GET, 503, "unavailable", None),
    (asyncpg.InterfaceError("cannot perform operation: another operation is in progress"), GET, 500,
     "internal", None),
    (KeyError("a bug"), GET, 500, "internal", None),
]  # fmt: skip


@pytest.mark.parametrize(("exc", "request_", "status", "slug", "field"), CASES)
def test_each_error_becomes_its_documented_problem(
    exc: Exception, request_: web.Request, status: int, slug: str, field: str | None
) -> None:
    """Status, slug and the named field; the status is one the catalogue documents for the slug."""
    problem = translate(exc, request_)
    assert (problem.status, problem.slug) == (status, slug)
    assert status in problem.kind.statuses
    fields = [e["field"] for e in problem.errors]
    assert (fields[0] if fields else None) == field
    if slug == "unavailable":
        assert problem.headers["Retry-After"].isdigit()


def test_a_problem_raised_by_a_route_passes_unchanged() -> None:
    """Routes raise ProblemError for their own outcomes (unknown lot, scope); the edge renders it."""
    raised = ProblemError(pt.UNKNOWN_LOT, "no lot 'X'", lot_id="X")
    assert translate(raised, GET) is raised
    assert raised.body("/v1/lots/X")["type"] == "https://parking.example/problems/unknown_lot"
