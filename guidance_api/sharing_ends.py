"""The end of a sharing window, for the API's sweep: remind drivers still parked, invoice overstays."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from billing.adapters.ledger_store import raise_invoice
from billing.invoices import PricedStay
from billing.overstay import Overstay, overstay_quote
from guidance_api.sharing_terms import SharedLot
from parking_core.adapters.lot_changes import Connection
from parking_core.sharing import reminder_due, reminder_text

# Shared time that began longer ago than this is not looked at any more: a stay longer than ten days
# in a shared lot, or a sweep stopped that long, is a case for people.
LOOKBACK = timedelta(days=10)
OVERSTAY_BATCH = 200  # stays judged per lot and sweep: bounded work per tick
REMINDER = "sharing_window_ending"
# The public's stays inside the lot now that began in the stretch [$2, $3): one reminder each
# (the unique index one_window_reminder_per_stay makes a second sweep, or a second API, a no-op).
REMIND = """
INSERT INTO driver_notifications (plate, lot_id, session_id, kind, window_end, message, created_at)
SELECT s.plate, s.lot_id, s.session_id, $4, $3, $5, $6 FROM sessions s
WHERE s.lot_id = $1 AND s.state IN ('pending', 'open') AND s.plate IS NOT NULL
  AND s.started_at >= $2 AND s.started_at < $3 AND NOT s.plate = ANY($7::text[])
ON CONFLICT DO NOTHING
RETURNING session_id
"""
# The public's priced stays that began in one of the ended stretches and left after its end, not yet
# judged. Members, stays without a plate and stays closed because the plate came in again (its real
# exit is unknown) are left out.
OVERSTAYED = """
SELECT s.session_id, s.plate, s.started_at, s.ended_at, s.tariff_id, s.tariff_version, w.b AS window_end
FROM sessions s JOIN unnest($2::timestamptz[], $3::timestamptz[]) w(a, b)
  ON s.started_at >= w.a AND s.started_at < w.b
WHERE s.lot_id = $1 AND s.plate IS NOT NULL AND s.ended_at > w.b
  AND s.state IN ('priced', 'invoiced', 'paid', 'in_arrears', 'written_off')
  AND s.closed_by IS DISTINCT FROM 'superseded' AND NOT s.plate = ANY($4::text[])
  AND NOT EXISTS (SELECT 1 FROM overstay_charges c WHERE c.session_id = s.session_id)
ORDER BY s.ended_at LIMIT $5
"""
INSERT_OVERSTAY = """
INSERT INTO overstay_charges (session_id, lot_id, plate, started_at, window_end, left_at, unit_min,
                              unit_fee_fen, units, amount_fen, charged_at, invoice_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING
"""
# The invoice of a surcharge names the stay's tariff version; a stay priced without one (a free lot)
# names the sharing terms instead (the surcharge is priced by them, never by the tariff).
SHARING_TERMS_TARIFF = ("sharing-terms", 0)


def overstay_invoice_key(session_id: str) -> str:
    """Return what a surcharge's invoice is raised for (its id follows): never a session's own id."""
    return f"overstay-{session_id}"


async def send_reminders(conn: Connection, lots: Sequence[SharedLot], now: datetime) -> int:
    """Remind the public still parked in a stretch of shared time that ends within the lot's
    `remind_before` (once per stay and window end); return how many were reminded.
    """
    sent = 0
    for lot in lots:
        before = lot.terms.remind_before
        if before <= timedelta(0):
            continue  # the owner sends no reminders
        for stretch in lot.stretches(now - LOOKBACK, now + timedelta(microseconds=1)):
            if not reminder_due(stretch.end, now, before):
                continue
            text = reminder_text(stretch.end, lot.tz, lot.terms)
            rows = await conn.fetch(
                REMIND, lot.lot_id, stretch.start, stretch.end, REMINDER, text, now, sorted(lot.members)
            )
            sent += len(rows)
    return sent


async def charge_overstays(conn: Connection, lots: Sequence[SharedLot], now: datetime) -> int:
    """Price the surcharge of every public stay that left after its window ended, once, and invoice
    it (0 fen is recorded, not invoiced); return how many stays were judged.
    """
    judged = 0
    for lot in lots:
        ended = [s for s in lot.stretches(now - LOOKBACK, now) if s.end <= now]
        if not ended:
            continue
        starts, ends = [s.start for s in ended], [s.end for s in ended]
        rows = await conn.fetch(OVERSTAYED, lot.lot_id, starts, ends, sorted(lot.members), OVERSTAY_BATCH)
        for row in rows:
            await _charge(conn, lot, row, now)
            judged += 1
    return judged


async def _charge(conn: Connection, lot: SharedLot, stay: asyncpg.Record, now: datetime) -> None:
    """Record one stay's surcharge and raise its invoice in one transaction (idempotent both ways:
    the invoice by its derived id, the charge by its session).
    """
    overstay = Overstay(stay["started_at"], stay["window_end"], stay["ended_at"], lot.terms)
    session_id = str(stay["session_id"])
    tariff = (stay["tariff_id"], stay["tariff_version"])
    if tariff[0] is None or tariff[1] is None:
        tariff = SHARING_TERMS_TARIFF
    async with conn.transaction():
        invoice_id = None
        if overstay.amount_fen > 0:
            quote = overstay_quote(overstay, *tariff)
            bill = PricedStay(overstay_invoice_key(session_id), lot.lot_id, stay["plate"], quote)
            invoice_id = await raise_invoice(conn, bill, now)
        await conn.execute(
            INSERT_OVERSTAY,
            stay["session_id"],
            lot.lot_id,
            stay["plate"],
            overstay.started_at,
            overstay.window_end,
            overstay.left_at,
            int(lot.terms.overstay_unit.total_seconds() // 60),
            lot.terms.overstay_unit_fee_fen,
            overstay.units,
            overstay.amount_fen,
            now,
            invoice_id,
        )
