"""Periodic database work: silent devices turn offline, occupancy samples, lot counter recounts."""

from __future__ import annotations

from datetime import datetime, timedelta

from device_gateway.lot_counts import LOCK_LOTS, Conn, apply_lot_deltas, lot_deltas
from device_gateway.results import SweepResult
from parking_core.liveness import WATCHED_KINDS

SWEEP_LIMIT = 5000  # due deadlines per transaction; a sweep goes on until fewer are due …
SWEEP_ROUNDS = 20  # … or this many rounds (100,000 devices) have passed: the next sweep goes on
SAMPLER_LOCK_KEY = 727_274_101  # advisory lock: one gateway at a time writes periodic samples
# The kinds whose silence is watched (bay sensors and gates), as an SQL list.
WATCHED = ", ".join(f"'{kind.value}'" for kind in sorted(WATCHED_KINDS))

# The due end of device_deadlines (never a scan of devices; sql/0030). A due row whose device is
# still alive moves to its current silent_after; the others (silent, offline, no longer watched)
# are returned, with their lots, for the second step, which needs those lots locked. No lot lock
# is taken here, so this cannot deadlock with a writer that holds lots and arms a deadline.
DUE_DEADLINES = f"""
WITH due AS (
    SELECT dl.device_id FROM device_deadlines dl
    WHERE dl.check_at <= $1 ORDER BY dl.check_at LIMIT $2 FOR UPDATE SKIP LOCKED
), moved AS (
    UPDATE device_deadlines dl SET check_at = d.silent_after
    FROM due JOIN devices d USING (device_id)
    WHERE dl.device_id = due.device_id AND d.kind IN ({WATCHED}) AND d.status <> 'offline'
      AND d.silent_after >= $1
    RETURNING dl.device_id
), rest AS (
    SELECT due.device_id, d.lot_id FROM due JOIN devices d USING (device_id)
    WHERE due.device_id NOT IN (SELECT device_id FROM moved)
)
SELECT (SELECT count(*) FROM due) AS due,
       (SELECT count(*) FROM moved) AS moved,
       coalesce((SELECT array_agg(device_id) FROM rest), '{{}}') AS devices,
       coalesce((SELECT array_agg(DISTINCT lot_id) FROM rest), '{{}}') AS lots
"""

# The second step runs under the locks of the lots ($3) of the devices DUE_DEADLINES left ($2): it
# reads those rows by key (never the lots' other devices, never the whole due range) and re-checks
# each, since a writer may have heard from the device in between.
#
# Due rows of devices that are silent (turned offline by MARK_SILENT in the same transaction),
# offline or no longer watched are done with. A device comes back through the writer or the gate
# path, which arm a new row (store.ARM_DEADLINES, gate_tracking.GATE_DEVICE).
DROP_DEADLINES = f"""
DELETE FROM device_deadlines dl USING devices d
WHERE dl.device_id = ANY($2::text[]) AND d.device_id = dl.device_id AND dl.check_at <= $1
  AND d.lot_id = ANY($3::text[])
  AND (d.kind NOT IN ({WATCHED}) OR d.status = 'offline' OR d.silent_after IS NULL OR d.silent_after < $1)
"""

# Mirrors parking_core.liveness.check_silence and occupancy.mark_comms_lost, set-based (a gate has
# no spot: it only turns offline).
MARK_SILENT = f"""
WITH gone AS (
    UPDATE devices d SET status = 'offline', updated_at = $1
    FROM device_deadlines dl
    WHERE d.device_id = ANY($2::text[]) AND dl.device_id = d.device_id AND dl.check_at <= $1
      AND d.kind IN ({WATCHED}) AND d.status <> 'offline' AND d.silent_after < $1
      AND d.lot_id = ANY($3::text[])
    RETURNING d.device_id, d.spot_id, d.last_seen_at
), ev AS (
    INSERT INTO device_presence_changes (ts, device_id, event, detail)
    SELECT $1, device_id, 'comms_lost', 'silent since ' || last_seen_at FROM gone
), sp AS (
    UPDATE spots s SET status = 'unknown', since = $1
    FROM gone g, spots old
    WHERE s.spot_id = g.spot_id AND old.spot_id = s.spot_id AND s.status IN ('free', 'occupied')
    RETURNING s.spot_id, s.lot_id, old.status AS previous, g.device_id
), ch AS (
    INSERT INTO spot_status_changes (ts, spot_id, lot_id, status, previous_status, cause, device_id)
    SELECT $1, spot_id, lot_id, 'unknown', previous, 'comms_lost', device_id FROM sp
    RETURNING lot_id, status, previous_status
)
SELECT (SELECT count(*) FROM gone) AS gone,
       coalesce((SELECT array_agg(ARRAY[lot_id, status, previous_status]) FROM ch), '{{}}') AS changes
"""

# Lots whose sensors spoke within the interval get a sample, unless one was written recently.
SAMPLE_ACTIVE_LOTS = """
INSERT INTO lot_occupancy (ts, lot_id, capacity, free, occupied, reserved, unknown, closed)
SELECT $1, l.lot_id, l.capacity, l.free_count, l.occupied_count, l.reserved_count,
       l.unknown_count, l.closed_count
FROM lots l
WHERE EXISTS (SELECT 1 FROM devices d
              WHERE d.lot_id = l.lot_id AND d.last_seen_at > $1::timestamptz - $2::interval)
  AND NOT EXISTS (SELECT 1 FROM lot_occupancy o
                  WHERE o.lot_id = l.lot_id AND o.ts > $1::timestamptz - $2::interval / 2)
"""

# A lot's counters from its spots, or for a lot counted at its gates from the sessions inside
# (docs/gates.md); {lots} narrows both halves to some lots.
_COUNTS = """
    SELECT l.lot_id,
           count(s.spot_id) FILTER (WHERE s.status = 'free') AS free,
           count(s.spot_id) FILTER (WHERE s.status = 'occupied') AS occupied,
           count(s.spot_id) FILTER (WHERE s.status = 'reserved') AS reserved,
           count(s.spot_id) FILTER (WHERE s.status = 'unknown') AS unknown,
           count(s.spot_id) FILTER (WHERE s.status = 'closed') AS closed
    FROM lots l LEFT JOIN spots s ON s.lot_id = l.lot_id
    WHERE l.counted_by = 'sensors'{lots} GROUP BY l.lot_id
    UNION ALL
    SELECT l.lot_id, l.capacity - least(count(x.session_id), l.capacity),
           least(count(x.session_id), l.capacity), 0, 0, 0
    FROM lots l LEFT JOIN sessions x ON x.lot_id = l.lot_id AND x.state IN ('pending', 'open')
    WHERE l.counted_by = 'gates'{lots} GROUP BY l.lot_id
"""
_MISCOUNTED = """(l.free_count, l.occupied_count, l.reserved_count, l.unknown_count, l.closed_count)
      IS DISTINCT FROM (c.free, c.occupied, c.reserved, c.unknown, c.closed)"""
# Start-up repair, step 1: the lots whose counters disagree with their spots (or sessions), read
# without a lock. Every writer moves a lot's spots and counters in one transaction under the lot's
# lock, so a snapshot shows each lot either right or off by what provisioning left; only those go
# on to step 2.
MISCOUNTED_LOTS = f"""
WITH c AS ({_COUNTS.format(lots="")})
SELECT l.lot_id FROM lots l JOIN c USING (lot_id) WHERE {_MISCOUNTED} ORDER BY l.lot_id
"""
# Step 2: under the locks of a few of those lots at a time, count again and set the counters. No
# transaction holds more than RECOUNT_CHUNK lots, so writers and liveness sweeps go on meanwhile.
RECOUNT = f"""
WITH c AS ({_COUNTS.format(lots=" AND l.lot_id = ANY($2::text[])")})
UPDATE lots l SET free_count = c.free, occupied_count = c.occupied, reserved_count = c.reserved,
                  unknown_count = c.unknown, closed_count = c.closed, counts_updated_at = $1
FROM c
WHERE c.lot_id = l.lot_id AND {_MISCOUNTED}
RETURNING l.lot_id
"""
RECOUNT_CHUNK = 500  # lots locked per recount transaction


async def sweep_silent(conn: Conn, now: datetime) -> SweepResult:
    """Turn sensors silent past their window offline and their spots unknown; see DUE_DEADLINES."""
    result = SweepResult()
    for _ in range(SWEEP_ROUNDS):
        async with conn.transaction():
            due = await conn.fetchrow(DUE_DEADLINES, now, SWEEP_LIMIT)
        assert due is not None
        if due["lots"]:
            async with conn.transaction():
                await conn.fetch(LOCK_LOTS, sorted(due["lots"]))
                row = await conn.fetchrow(MARK_SILENT, now, due["devices"], due["lots"])
                assert row is not None
                await conn.execute(DROP_DEADLINES, now, due["devices"], due["lots"])
                changes = [(c[0], c[1], c[2]) for c in row["changes"]]
                result.devices_offline += int(row["gone"])
                result.spots_unknown += len(changes)
                result.lots += await apply_lot_deltas(conn, lot_deltas(changes), now)
        if due["due"] < SWEEP_LIMIT:
            break
    return result


async def sample_active_lots(conn: Conn, now: datetime, every: timedelta) -> int:
    """Write a lot_occupancy sample for lots with recent activity; return how many."""
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SAMPLER_LOCK_KEY):
            return 0
        status = await conn.execute(SAMPLE_ACTIVE_LOTS, now, every)
    return int(status.rsplit(" ", 1)[-1])


async def recount_lots(conn: Conn, now: datetime) -> list[str]:
    """Repair counters that disagree with their spots or sessions (start-up); return the lots repaired.

    A read-only look for such lots (MISCOUNTED_LOTS), then a recount of each under its lock, a
    chunk of lots per transaction: never a lock of every lot.
    """
    wrong = [r["lot_id"] for r in await conn.fetch(MISCOUNTED_LOTS)]
    repaired: list[str] = []
    for first in range(0, len(wrong), RECOUNT_CHUNK):
        chunk = wrong[first : first + RECOUNT_CHUNK]
        async with conn.transaction():
            await conn.fetch(LOCK_LOTS, chunk)
            repaired += [r["lot_id"] for r in await conn.fetch(RECOUNT, now, chunk)]
    return repaired


PRUNE_CHUNK = 10_000  # refusals deleted per statement: short transactions, however large a flood was
PRUNE_REFUSALS = """
DELETE FROM rejected_messages WHERE rejected_id = ANY(ARRAY(
    SELECT rejected_id FROM rejected_messages WHERE received_at < $1 ORDER BY received_at LIMIT $2))
"""


async def refusals_need_pruning(conn: Conn) -> bool:
    """Tell whether refusals are pruned by us: plain mode (TimescaleDB mode has a retention policy)."""
    mode: str | None = await conn.fetchval("SELECT mode FROM schema_info")
    return mode != "timescale"


async def prune_refusals(conn: Conn, older_than: datetime) -> int:
    """Delete refusals received before *older_than*, chunk by chunk; return how many."""
    deleted = 0
    while True:
        status = await conn.execute(PRUNE_REFUSALS, older_than, PRUNE_CHUNK)
        count = int(status.rsplit(" ", 1)[-1])
        deleted += count
        if count < PRUNE_CHUNK:
            return deleted
