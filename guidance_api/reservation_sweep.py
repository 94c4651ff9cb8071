"""The API's sweep: arrivals by sensor, no-shows, reservation fees, closure schedules, sharing quotas,
reminders before a sharing window ends and overstay surcharges after it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from billing import Tariff, parse_tariff
from billing.adapters.ledger_store import raise_invoice
from billing.invoices import PricedStay
from billing.reservation_fees import fee_quote, reservation_fees
from guidance_api.context import CLOCK, DB_POOL
from guidance_api.sharing_ends import charge_overstays, send_reminders
from guidance_api.sharing_terms import shared_lots
from parking_core.adapters.closures_store import apply_schedules
from parking_core.adapters.hold_endings import release_no_shows, sensor_arrivals
from parking_core.adapters.lot_changes import Connection, prune_changes, record_lot_change
from parking_core.reservations import HoldStatus

log = structlog.get_logger("guidance_api")
SWEEP_INTERVAL_S = 2.0  # no-shows are released within about this long after their deadline
UNPRICED = """
SELECT reservation_id, lot_id, plate, status, late_cancellation, tariff_id, tariff_version, created_at,
       ended_at
FROM reservations WHERE reservation_id = $1 AND fees_charged_at IS NULL FOR UPDATE
"""
INSERT_CHARGE = """
INSERT INTO reservation_charges (reservation_id, lot_id, plate, kind, amount_fen, tariff_id, tariff_version,
                                 charged_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (reservation_id, kind) DO NOTHING
"""


@dataclass
class SweepResult:
    """What one sweep did."""

    arrivals: int = 0
    no_shows: int = 0
    priced: int = 0
    closures: int = 0
    sharing_changed: list[str] = field(default_factory=list)
    reminders: int = 0  # drivers told their sharing window ends soon
    overstays: int = 0  # stays past a window's end judged (and their surcharge invoiced)


async def tariff_version(conn: Connection, tariff_id: str, version: int) -> Tariff | None:
    """Return one stored tariff version."""
    doc = await conn.fetchval(
        "SELECT document FROM tariff_versions WHERE tariff_id = $1 AND version = $2", tariff_id, version
    )
    return None if doc is None else parse_tariff(json.loads(doc))


async def charge_fees(conn: Connection, now: datetime, limit: int = 500) -> int:
    """Price and invoice the fees of ended reservations (the tariff version in force when each was
    made); return how many were priced.
    """
    ids = await conn.fetch(
        "SELECT reservation_id FROM reservations WHERE status <> 'held' AND fees_charged_at IS NULL"
        " ORDER BY ended_at LIMIT $1",
        limit,
    )
    priced = 0
    for found in ids:
        async with conn.transaction():
            row = await conn.fetchrow(UNPRICED, found["reservation_id"])
            if row is not None:  # another sweeper may have priced it meanwhile
                await _price(conn, row, now)
                priced += 1
    return priced


async def _price(conn: Connection, row: Any, now: datetime) -> None:
    """Charge one ended reservation's fees, invoice them through the money ledger, mark it priced."""
    tariff = None
    if row["tariff_id"] is not None and row["tariff_version"] is not None:
        tariff = await tariff_version(conn, row["tariff_id"], row["tariff_version"])
    lines = []
    if tariff is not None:
        late = row["late_cancellation"]
        lines = reservation_fees(tariff, HoldStatus(row["status"]), late_cancellation=late)
    for line in lines:
        await conn.execute(
            INSERT_CHARGE,
            row["reservation_id"],
            row["lot_id"],
            row["plate"],
            line.kind.value,
            line.amount_fen,
            row["tariff_id"],
            row["tariff_version"],
            now,
        )
    if tariff is not None and lines:
        quote = fee_quote(tariff, lines, row["created_at"], row["ended_at"])
        stay = PricedStay(row["reservation_id"], row["lot_id"], row["plate"], quote)
        invoice_id = await raise_invoice(conn, stay, now)  # not a session id: no session follows it
        await conn.execute(
            "UPDATE reservation_charges SET invoice_id = $2 WHERE reservation_id = $1 AND invoice_id IS NULL",
            row["reservation_id"],
            invoice_id,
        )
    await conn.execute(
        "UPDATE reservations SET fees_charged_at = $2 WHERE reservation_id = $1", row["reservation_id"], now
    )


async def refresh_sharing(conn: Connection, now: datetime, lot_id: str | None = None) -> list[str]:
    """Set each shared lot's public quota for *now* from its rules and its tariff's calendar."""
    changed = []
    for lot in await shared_lots(conn, now, lot_id):
        quota = lot.quota_at(now)
        if quota != lot.shared_spaces:
            async with conn.transaction():
                await conn.execute("UPDATE lots SET shared_spaces = $2 WHERE lot_id = $1", lot.lot_id, quota)
                await record_lot_change(conn, [lot.lot_id], now, "sharing")
            changed.append(lot.lot_id)
    return changed


async def sweep(pool: asyncpg.Pool, now: datetime) -> SweepResult:
    """Run every part of the sweep once at *now* (tests pass a simulated clock).

    Several API processes may sweep at once: each hold, closure and quota is changed under its
    lot's row lock and every step is idempotent (an ended hold is skipped, a fee is charged once).
    """
    result = SweepResult()
    async with pool.acquire() as conn:
        result.arrivals = len(await sensor_arrivals(conn, now))
        result.no_shows = len(await release_no_shows(conn, now))
        result.priced = await charge_fees(conn, now)
        result.closures = await apply_schedules(conn, now)
        result.sharing_changed = await refresh_sharing(conn, now)
        shared = await shared_lots(conn, now)
        result.reminders = await send_reminders(conn, shared, now)
        result.overstays = await charge_overstays(conn, shared, now)
        await prune_changes(conn, now)
    return result


async def run_sweeps(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx``: sweep every SWEEP_INTERVAL_S while the application runs."""

    async def loop() -> None:
        while True:
            try:
                await sweep(app[DB_POOL], app[CLOCK]())
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("reservation_sweep.failed", error=repr(exc))
            await asyncio.sleep(SWEEP_INTERVAL_S)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
