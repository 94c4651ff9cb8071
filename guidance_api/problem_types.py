"""The catalogue of problem types: every slug the API answers with, its statuses and its meaning."""

from __future__ import annotations

from dataclasses import dataclass

# The `type` of a problem is this base and a slug; the slug is what clients switch on, so a slug is
# never renamed. docs/api.md lists the catalogue below (tests/unit/api/test_problem_types.py checks).
PROBLEM_TYPE_BASE = "https://parking.example/problems/"


@dataclass(frozen=True, slots=True)
class ProblemType:
    """One kind of problem: its stable slug, its title, the statuses it comes with, and what it means."""

    slug: str
    title: str
    statuses: tuple[int, ...]
    meaning: str

    @property
    def status(self) -> int:
        """Return the usual status of this problem."""
        return self.statuses[0]

    @property
    def uri(self) -> str:
        """Return the problem's `type` URI."""
        return PROBLEM_TYPE_BASE + self.slug


VALIDATION = ProblemType(
    "validation",
    "Invalid request",
    (400, 422),
    "a path id or query parameter (400) or a body field (422) is invalid; `errors[]` names each field",
)
MALFORMED_BODY = ProblemType("malformed_body", "Malformed body", (400,), "the body is missing or not JSON")
UNAUTHORIZED = ProblemType(
    "unauthorized", "Unauthorized", (401,), "no bearer token, or an unknown, revoked or expired one"
)
FORBIDDEN = ProblemType(
    "forbidden", "Forbidden", (403,), "the token's role or scope does not cover this route or lot"
)
NOT_FOUND = ProblemType("not_found", "Not found", (404,), "no such route or file")
METHOD_NOT_ALLOWED = ProblemType(
    "method_not_allowed", "Method not allowed", (405,), "the route exists but not with this method"
)
BODY_TOO_LARGE = ProblemType("body_too_large", "Body too large", (413,), "the body exceeds the 8 MiB limit")
BAD_REQUEST = ProblemType(
    "bad_request", "Bad request", (400, 411, 415, 416, 431), "any other request the HTTP layer refuses"
)
UNKNOWN_LOT = ProblemType("unknown_lot", "Unknown lot", (404,), "the lot named in the path does not exist")
UNKNOWN_SPOT = ProblemType("unknown_spot", "Unknown spot", (404,), "the spot named does not exist")
UNKNOWN_DISTRICT = ProblemType(
    "unknown_district", "Unknown district", (404,), "the district named in the path does not exist"
)
UNKNOWN_TOKEN = ProblemType("unknown_token", "Unknown token", (404,), "no token has the token_id in the path")
UNKNOWN_REFERENCE = ProblemType(
    "unknown_reference",
    "Unknown reference",
    (422,),
    "a body field names a district, lot, zone or spot that does not exist (or a zone of another lot)",
)
CONFLICT = ProblemType(
    "conflict",
    "Conflict",
    (409,),
    "the request contradicts what exists (a spot of another lot, a spot bound twice, a unique constraint)",
)
VERSION_PUBLISHED = ProblemType(
    "version_published",
    "Version already published",
    (409,),
    "a tariff version is published with other content: publish a new version",
)
INVALID_TARIFF = ProblemType(
    "invalid_tariff", "Invalid tariff", (422,), "the tariff document is invalid; `errors[]` lists every path"
)
NO_TARIFF = ProblemType(
    "no_tariff",
    "No tariff",
    (404, 422),
    "the lot has no tariff (in force now: 404), or none is in force at the stay's entry (422)",
)
BILLING = ProblemType("billing", "Cannot price this stay", (422,), "billing refused to price the stay")
UNKNOWN_INVOICE = ProblemType(
    "unknown_invoice", "Unknown invoice", (404,), "the invoice named does not exist"
)
UNKNOWN_ACCOUNT = ProblemType(
    "unknown_account", "Unknown account", (404,), "the driver account named does not exist"
)
NOTHING_DUE = ProblemType(
    "nothing_due", "Nothing due", (409,), "the invoice is paid or written off: there is nothing to pay"
)
TOO_MANY_ORDERS = ProblemType(
    "too_many_orders",
    "Too many payment orders",
    (429,),
    "the invoice already has 5 open payment orders: pay one of them, or wait until they expire (30 min)",
)
PLATE_BOUND = ProblemType(
    "plate_bound", "Plate bound elsewhere", (409,), "the plate is bound to another driver account"
)
MONEY_RULE = ProblemType(
    "money_rule",
    "Refused by a money rule",
    (422,),
    "the ledger refuses the movement (a write-off larger than what is due, a refund larger than kept)",
)
UNKNOWN_GATE = ProblemType(
    "unknown_gate", "Unknown gate", (404,), "no gate device has the id named in the path"
)
UNKNOWN_SESSION = ProblemType(
    "unknown_session", "Unknown session", (404,), "the parking session named does not exist"
)
NOT_INSIDE = ProblemType(
    "not_inside",
    "No vehicle inside",
    (409,),
    "the session has ended (a payment before exit), or the spot has no open session (attaching a plate)",
)
NO_ROOM = ProblemType(
    "no_room",
    "No space to hold",
    (409,),
    "no free space can be held at the lot (or in the zone asked for) now",
)
LOT_NOT_PUBLIC = ProblemType(
    "lot_not_public", "Not open to the public", (409,), "the lot is closed, or shared and outside its windows"
)
SPOT_NOT_FREE = ProblemType(
    "spot_not_free",
    "Spot not free",
    (409,),
    "the spot asked for is not free, or a spot to be closed is held by a reservation",
)
NOT_HELD = ProblemType(
    "not_held",
    "Reservation not held",
    (409,),
    "the reservation has already arrived, been cancelled or released",
)
UNKNOWN_RESERVATION = ProblemType(
    "unknown_reservation",
    "Unknown reservation",
    (404,),
    "no reservation with this id is visible to the caller",
)
UNKNOWN_CLOSURE = ProblemType(
    "unknown_closure", "Unknown closure", (404,), "the closure named does not exist"
)
NOT_SHARED = ProblemType("not_shared", "Not shared", (404,), "the lot publishes no sharing windows")
UNAVAILABLE = ProblemType(
    "unavailable",
    "Service unavailable",
    (503,),
    "the database is unreachable, restarting or overloaded; retry after `Retry-After` seconds",
)
INTERNAL = ProblemType(
    "internal", "Internal server error", (500,), "a bug: it is logged; nothing a client sends should cause it"
)

CATALOGUE: tuple[ProblemType, ...] = (
    VALIDATION,
    MALFORMED_BODY,
    UNAUTHORIZED,
    FORBIDDEN,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    BODY_TOO_LARGE,
    BAD_REQUEST,
    UNKNOWN_LOT,
    UNKNOWN_SPOT,
    UNKNOWN_DISTRICT,
    UNKNOWN_TOKEN,
    UNKNOWN_REFERENCE,
    CONFLICT,
    VERSION_PUBLISHED,
    INVALID_TARIFF,
    NO_TARIFF,
    BILLING,
    UNKNOWN_INVOICE,
    UNKNOWN_ACCOUNT,
    NOTHING_DUE,
    TOO_MANY_ORDERS,
    PLATE_BOUND,
    MONEY_RULE,
    UNKNOWN_GATE,
    UNKNOWN_SESSION,
    NOT_INSIDE,
    NO_ROOM,
    LOT_NOT_PUBLIC,
    SPOT_NOT_FREE,
    NOT_HELD,
    UNKNOWN_RESERVATION,
    UNKNOWN_CLOSURE,
    NOT_SHARED,
    UNAVAILABLE,
    INTERNAL,
)
