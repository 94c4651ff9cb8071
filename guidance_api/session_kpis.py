"""Session KPIs per period: how many stays began (turnover) and how long the finished ones lasted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

# Stays that began in each local period of the window; pending entries and cancelled ones are not
# stays. $1 lot ids, $2 window start, $3 window end, $4 period width, $5 time zone (as the series).
STARTS = """
SELECT date_bin($4::interval, started_at AT TIME ZONE $5::text, TIMESTAMP '2000-01-01') AS local_start,
       count(*) AS started
FROM sessions
WHERE lot_id = ANY($1::text[]) AND started_at >= $2 AND started_at < $3
  AND state NOT IN ('pending', 'cancelled') AND NOT no_entry
GROUP BY 1
"""
# Stays that ended in each period, with their dwell; an exit without an entry record has no dwell,
# and a session superseded by a later read of the same car is not a stay of its own.
ENDS = """
SELECT date_bin($4::interval, ended_at AT TIME ZONE $5::text, TIMESTAMP '2000-01-01') AS local_start,
       count(*) AS ended,
       sum(extract(epoch FROM ended_at - started_at))::float8 AS dwell_s,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ended_at - started_at))::float8
           AS median_s
FROM sessions
WHERE lot_id = ANY($1::text[]) AND ended_at >= $2 AND ended_at < $3
  AND state NOT IN ('pending', 'cancelled') AND NOT no_entry AND closed_by IS DISTINCT FROM 'superseded'
GROUP BY 1
"""


@dataclass
class SessionStats:
    """Stays of one period over a set of lots."""

    started: int = 0
    ended: int = 0
    dwell_s: float = 0.0
    median_s: float | None = None
    parts: int = 0  # how many groups of lots (time zones) added ended stays: a median does not add

    def add(self, other: SessionStats) -> None:
        """Add *other*'s stays (lots in another time zone, the same local period)."""
        self.started += other.started
        self.ended += other.ended
        self.dwell_s += other.dwell_s
        self.parts += other.parts
        self.median_s = other.median_s if self.parts <= 1 else None

    def view(self, capacity: int) -> dict[str, Any]:
        """Return the JSON fields of these stays for lots of *capacity* spaces in all."""
        return {
            "sessions": self.started,
            "turnover": round(self.started / capacity, 3) if capacity else None,
            "sessions_ended": self.ended,
            "dwell_mean_min": round(self.dwell_s / self.ended / 60, 1) if self.ended else None,
            "dwell_median_min": None if self.median_s is None else round(self.median_s / 60, 1),
        }


async def session_stats(
    pool: asyncpg.Pool, lot_ids: list[str], window: tuple[datetime, datetime], width: Any, zone: str
) -> dict[datetime, SessionStats]:
    """Return the stays of *lot_ids* per local period start (a naive local time) in *zone*."""
    out: dict[datetime, SessionStats] = {}
    for row in await pool.fetch(STARTS, lot_ids, *window, width, zone):
        out.setdefault(row["local_start"], SessionStats()).started = int(row["started"])
    for row in await pool.fetch(ENDS, lot_ids, *window, width, zone):
        stats = out.setdefault(row["local_start"], SessionStats())
        stats.ended, stats.dwell_s, stats.median_s, stats.parts = (
            int(row["ended"]),
            float(row["dwell_s"]),
            float(row["median_s"]),
            1,
        )
    return out
