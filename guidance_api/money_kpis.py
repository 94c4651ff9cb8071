"""Money KPIs per period from the append-only ledger: invoiced, collected, written off; arrears now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

# The ledger's movements per local period (cash basis: money collected when captured, less refunds
# when refunded). $1 lot ids, $2 window start, $3 window end, $4 period width, $5 time zone.
LEDGER = """
SELECT date_bin($4::interval, at AT TIME ZONE $5::text, TIMESTAMP '2000-01-01') AS local_start,
       coalesce(sum(amount_fen) FILTER (WHERE kind = 'invoiced'), 0)::bigint AS invoiced_fen,
       coalesce(sum(amount_fen) FILTER (WHERE kind = 'captured'), 0)::bigint AS captured_fen,
       coalesce(sum(amount_fen) FILTER (WHERE kind = 'refunded'), 0)::bigint AS refunded_fen,
       coalesce(sum(amount_fen) FILTER (WHERE kind = 'written_off'), 0)::bigint AS written_off_fen
FROM ledger_entries
WHERE lot_id = ANY($1::text[]) AND at >= $2 AND at < $3
GROUP BY 1
"""
# Arrears now: what is still owed on invoices past their due time.
ARREARS = """
SELECT coalesce(sum(due_fen), 0)::bigint AS arrears_fen, count(DISTINCT plate) AS plates
FROM invoice_balances
WHERE lot_id = ANY($1::text[]) AND due_fen > 0 AND due_at < $2
"""


@dataclass
class MoneyStats:
    """Ledger movements of one period over a set of lots, in fen."""

    invoiced_fen: int = 0
    collected_fen: int = 0
    written_off_fen: int = 0

    def add(self, other: MoneyStats) -> None:
        """Add *other*'s movements (lots in another time zone, the same local period)."""
        self.invoiced_fen += other.invoiced_fen
        self.collected_fen += other.collected_fen
        self.written_off_fen += other.written_off_fen

    def view(self) -> dict[str, Any]:
        """Return the JSON fields of these movements."""
        return {
            "invoiced_fen": self.invoiced_fen,
            "collected_fen": self.collected_fen,
            "written_off_fen": self.written_off_fen,
        }


async def money_stats(
    pool: asyncpg.Pool, lot_ids: list[str], window: tuple[datetime, datetime], width: timedelta, zone: str
) -> dict[datetime, MoneyStats]:
    """Return the ledger movements of *lot_ids* per local period start (a naive local time)."""
    return {
        row["local_start"]: MoneyStats(
            int(row["invoiced_fen"]),
            int(row["captured_fen"]) - int(row["refunded_fen"]),
            int(row["written_off_fen"]),
        )
        for row in await pool.fetch(LEDGER, lot_ids, *window, width, zone)
    }


async def arrears(pool: asyncpg.Pool, lot_ids: list[str], now: datetime) -> dict[str, int]:
    """Return what is owed past due on *lot_ids*' invoices now, and by how many plates."""
    row = await pool.fetchrow(ARREARS, lot_ids, now)
    assert row is not None
    return {"arrears_fen": int(row["arrears_fen"]), "plates_in_arrears": int(row["plates"])}
