"""Driver accounts in PostgreSQL: plates bound to one account at a time (audited), pay-later consent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from billing.adapters.ledger_store import AuditEntry, Conn, audit
from billing.errors import PlateBoundElsewhereError

PUT_ACCOUNT = """
INSERT INTO driver_accounts (account_id, name) VALUES ($1, $2)
ON CONFLICT (account_id) DO UPDATE SET name = EXCLUDED.name
RETURNING (xmax = 0) AS created
"""
ACCOUNT = """
SELECT account_id, name, pay_later_consent, consent_changed_at FROM driver_accounts WHERE account_id = $1
"""
PLATES = """
SELECT plate, bound_at FROM plate_bindings WHERE account_id = $1 AND unbound_at IS NULL ORDER BY plate
"""
BINDING = "SELECT account_id FROM plate_bindings WHERE plate = $1 AND unbound_at IS NULL FOR UPDATE"
BIND = "INSERT INTO plate_bindings (plate, account_id, bound_at, bound_by) VALUES ($1, $2, $3, $4)"
UNBIND = """
UPDATE plate_bindings SET unbound_at = $3, unbound_by = $4
WHERE plate = $1 AND account_id = $2 AND unbound_at IS NULL
RETURNING binding_id
"""
CONSENT = """
UPDATE driver_accounts SET pay_later_consent = $2, consent_changed_at = $3 WHERE account_id = $1
RETURNING account_id
"""


@dataclass(frozen=True, slots=True)
class Account:
    """A driver account and the plates bound to it now."""

    account_id: str
    name: str
    pay_later_consent: bool
    consent_changed_at: datetime | None
    plates: tuple[tuple[str, datetime], ...]


async def put_account(conn: Conn, account_id: str, name: str) -> bool:
    """Create or rename a driver account; return whether it was created."""
    return bool(await conn.fetchval(PUT_ACCOUNT, account_id, name))


async def account(conn: Conn, account_id: str) -> Account | None:
    """Return an account with its bound plates, or None."""
    row = await conn.fetchrow(ACCOUNT, account_id)
    if row is None:
        return None
    plates = tuple((r["plate"], r["bound_at"]) for r in await conn.fetch(PLATES, account_id))
    return Account(
        row["account_id"], row["name"], row["pay_later_consent"], row["consent_changed_at"], plates
    )


async def bound_plates(conn: Conn, account_id: str) -> frozenset[str]:
    """Return the plates bound to *account_id* now."""
    return frozenset(r["plate"] for r in await conn.fetch(PLATES, account_id))


async def bind_plate(conn: Conn, account_id: str, plate: str, actor: str, now: datetime) -> bool:
    """Bind *plate* to *account_id*; return whether it is new. Refuses a plate bound elsewhere."""
    try:
        async with conn.transaction():
            holder = await conn.fetchval(BINDING, plate)
            if holder == account_id:
                return False
            if holder is not None:
                raise PlateBoundElsewhereError(plate)
            await conn.execute(BIND, plate, account_id, now, actor)
            await audit(conn, now, AuditEntry(actor, "plate.bound", plate, account_id))
    except asyncpg.UniqueViolationError as exc:  # one_account_per_plate: a concurrent binding won
        raise PlateBoundElsewhereError(plate) from exc
    return True


async def unbind_plate(conn: Conn, account_id: str, plate: str, actor: str, now: datetime) -> bool:
    """Unbind *plate* from *account_id*; return whether it was bound. Its invoices stay with the plate."""
    async with conn.transaction():
        unbound = await conn.fetchval(UNBIND, plate, account_id, now, actor)
        if unbound is not None:
            await audit(conn, now, AuditEntry(actor, "plate.unbound", plate, account_id))
    return unbound is not None


async def set_consent(conn: Conn, account_id: str, pay_later: bool, actor: str, now: datetime) -> bool:
    """Record the account's consent to pay later (or its withdrawal); return whether the account exists."""
    async with conn.transaction():
        found = await conn.fetchval(CONSENT, account_id, pay_later, now)
        if found is not None:
            await audit(
                conn,
                now,
                AuditEntry(actor, "consent.changed", None, account_id, None, {"pay_later": pay_later}),
            )
    return found is not None
