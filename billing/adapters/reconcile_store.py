"""Reconciliation in PostgreSQL: the ledger's movements and daily totals per lot, recorded runs."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from billing.adapters.ledger_store import Conn
from billing.ledger import EntryKind
from billing.reconcile import (
    DayTotals,
    Mismatch,
    Movement,
    MovementKind,
    day_totals,
    parse_statement,
    reconcile,
)

CAPTURES_OF_DAY = """
SELECT e.reference, e.amount_fen, e.at FROM ledger_entries e
JOIN payment_captures c ON c.transaction_id = e.reference AND c.invoice_id = e.invoice_id
WHERE e.kind = 'captured' AND c.provider = $1 AND e.at >= $2 AND e.at < $3
"""
REFUNDS_OF_DAY = """
SELECT e.reference, e.amount_fen, e.at FROM ledger_entries e
JOIN refunds r ON r.refund_id = e.reference
WHERE e.kind = 'refunded' AND r.provider = $1 AND e.at >= $2 AND e.at < $3
"""
SUMS = """
SELECT lot_id, kind, (at >= $1) AS on_day, sum(amount_fen)::bigint AS total FROM ledger_entries
WHERE at < $2 AND (cardinality($3::text[]) = 0 OR lot_id = ANY($3::text[]))
GROUP BY lot_id, kind, (at >= $1)
"""
RECORD_RUN = """
INSERT INTO reconciliation_runs (provider, day, ran_at, statement_sha256, statement_count, mismatches)
VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING run_id
"""


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Return the instants a local calendar *day* starts and ends in *tz*."""
    start = datetime.combine(day, time(0), tz)
    return start, datetime.combine(day + timedelta(days=1), time(0), tz)


@dataclass(frozen=True, slots=True)
class StatementDay:
    """Which statement: one provider's, for one local calendar day in a time zone."""

    provider: str
    day: date
    tz: ZoneInfo


async def ledger_movements(conn: Conn, of: StatementDay) -> list[Movement]:
    """Return the ledger's captures and refunds through the provider on the local day."""
    provider = of.provider
    start, end = day_bounds(of.day, of.tz)
    found = [
        Movement(MovementKind.PAYMENT, r[0], r[1], r[2])
        for r in await conn.fetch(CAPTURES_OF_DAY, provider, start, end)
    ]
    found += [
        Movement(MovementKind.REFUND, r[0], r[1], r[2])
        for r in await conn.fetch(REFUNDS_OF_DAY, provider, start, end)
    ]
    return found


async def reconcile_statement(
    conn: Conn, of: StatementDay, statement_text: str, now: datetime
) -> list[Mismatch]:
    """Reconcile a provider's statement of a day against the ledger; record the run; return mismatches."""
    statement = parse_statement(statement_text)
    mismatches = reconcile(statement, await ledger_movements(conn, of))
    await conn.fetchval(
        RECORD_RUN,
        of.provider,
        of.day,
        now,
        hashlib.sha256(statement_text.encode()).hexdigest(),
        len(statement),
        json.dumps([asdict(m) for m in mismatches]),
    )
    return mismatches


async def daily_totals(
    conn: Conn, day: date, tz: ZoneInfo, lot_ids: frozenset[str] = frozenset()
) -> dict[str, DayTotals]:
    """Return each lot's totals on local *day* (all lots, or those in *lot_ids*)."""
    start, end = day_bounds(day, tz)
    on_day: dict[str, dict[EntryKind, int]] = defaultdict(dict)
    before: dict[str, dict[EntryKind, int]] = defaultdict(dict)
    for row in await conn.fetch(SUMS, start, end, sorted(lot_ids)):
        (on_day if row["on_day"] else before)[row["lot_id"]][EntryKind(row["kind"])] = row["total"]
    return {lot: day_totals(on_day[lot], before[lot]) for lot in sorted(on_day.keys() | before.keys())}
