"""Bearer tokens: the admin token from settings, operator and driver tokens kept hashed."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
from aiohttp import web

from guidance_api import problem_types as pt
from guidance_api.problems import ProblemError

TOKEN_BYTES = 32  # 256 bits: unguessable bearer tokens
# The admin token is chosen by a person: at least 32 characters (e.g. `openssl rand -base64 24`,
# 192 bits) so that it cannot be guessed online; `parking-api` refuses to start with a shorter one.
MIN_ADMIN_TOKEN_CHARS = 32


def admin_token_problem(admin_token: str | None) -> str | None:
    """Return why *admin_token* is too weak to start with, or None if it is acceptable (or unset)."""
    if admin_token is None:
        return None
    if len(admin_token) < MIN_ADMIN_TOKEN_CHARS or admin_token != admin_token.strip():
        return (
            f"PARKING_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_CHARS} characters without surrounding"
            f" spaces (it has {len(admin_token)}); generate one with: openssl rand -base64 24"
        )
    return None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling and what they may see."""

    role: str  # admin, operator or driver
    token_id: str | None = None
    district_ids: frozenset[str] = field(default_factory=frozenset)
    lot_ids: frozenset[str] = field(default_factory=frozenset)
    plates: frozenset[str] = field(default_factory=frozenset)
    account_id: str | None = None  # a driver token of an account: plates are the account's bound plates

    @property
    def is_admin(self) -> bool:
        """Tell whether this is the admin."""
        return self.role == "admin"

    def may_see_lot(self, lot_id: str, district_id: str) -> bool:
        """Tell whether this principal may read *lot_id* (in *district_id*)."""
        if self.is_admin:
            return True
        return self.role == "operator" and (lot_id in self.lot_ids or district_id in self.district_ids)


def new_token() -> str:
    """Return a fresh bearer token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> str:
    """Return the stored digest of *token*."""
    return hashlib.sha256(token.encode()).hexdigest()


def bearer(request: web.Request) -> str | None:
    """Return the bearer token of *request*, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authenticate(
    request: web.Request, pool: asyncpg.Pool, admin_token: str | None, now: datetime
) -> Principal:
    """Return the caller, or raise 401."""
    token = bearer(request)
    if token is None:
        raise ProblemError(pt.UNAUTHORIZED, "an Authorization: Bearer token is required")
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal("admin")
    row = await pool.fetchrow(
        "SELECT t.token_id, t.role, t.district_ids, t.lot_ids, t.account_id,"
        " CASE WHEN t.account_id IS NULL THEN t.plates ELSE ARRAY("
        "   SELECT b.plate FROM plate_bindings b WHERE b.account_id = t.account_id AND b.unbound_at IS NULL"
        " ) END AS plates"
        " FROM tokens t"
        " WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
        token_digest(token),
        now,
    )
    if row is None:
        raise ProblemError(pt.UNAUTHORIZED, "the token is unknown, revoked or expired")
    return Principal(
        row["role"],
        row["token_id"],
        frozenset(row["district_ids"]),
        frozenset(row["lot_ids"]),
        frozenset(row["plates"]),
        row["account_id"],
    )


def require_admin(principal: Principal) -> None:
    """Raise 403 unless *principal* is the admin."""
    if not principal.is_admin:
        raise ProblemError(pt.FORBIDDEN, "this route needs the admin token")


def require_operator(principal: Principal) -> None:
    """Raise 403 unless *principal* is an operator or the admin."""
    if principal.role not in {"admin", "operator"}:
        raise ProblemError(pt.FORBIDDEN, "this route needs an operator token")
