"""The batch writer's SQL: history by INSERT … ON CONFLICT, current state set-based, one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

import asyncpg

from device_gateway.decode import PresenceReport, Rejection, RejectReason, SensorReading, reject
from device_gateway.lot_counts import LOCK_LOTS, Conn, apply_lot_deltas, lot_deltas
from device_gateway.results import BatchResult
from parking_core.liveness import is_life_sign
from parking_core.topics import DeviceKind, Leaf

__all__ = ["STAGE_COLUMNS", "Conn", "write_batch"]

# A batch's readings as sensor_readings' columns, passed to STORE_READINGS as one array each.
STAGE_COLUMNS = (
    "ts",
    "device_id",
    "seq",
    "spot_id",
    "received_at",
    "message",
    "occupied",
    "battery_mv",
    "rssi_dbm",
)
REJECT_COLUMNS = ("received_at", "topic", "device_id", "reason", "detail", "payload")

LOOKUP_DEVICES = """
SELECT d.device_id, d.kind, d.spot_id, s.lot_id, d.lot_id AS device_lot_id, d.status, d.last_seen_at,
       d.stale_after_s
FROM devices d LEFT JOIN spots s ON s.spot_id = d.spot_id
WHERE d.device_id = ANY($1::text[])
"""

# A sensor that was offline and speaks again (runs under the lot locks: the sweep cannot interleave).
RESTORE_DEVICES = """
WITH upd AS (
    UPDATE devices d SET status = 'online'
    WHERE d.device_id = ANY($1::text[]) AND d.status = 'offline'
    RETURNING d.device_id, d.spot_id
), ev AS (
    INSERT INTO device_presence_changes (ts, device_id, event, detail)
    SELECT $2, device_id, 'comms_restored', 'message received' FROM upd
)
SELECT device_id, spot_id FROM upd
"""

# Devices prove they are alive with any accepted message, duplicates included. No indexed column
# changes here, so with the fillfactor of 0003 these updates are HOT. A device seen less than
# min(5 s, a tenth of its window) ago is left alone (a burst, such as a backlog after an outage,
# costs one update per device), unless the batch holds a newer reading whose health values differ:
# battery, signal and firmware always come from the newest reading, by (ts, seq), as current state.
TOUCH_EVERY_S = 5.0  # a device's row is written at most this often (or a tenth of its window)
TOUCH_DEVICES = f"""
WITH b AS (
    SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::bigint[],
                         $5::int[], $6::int[], $7::text[])
        AS b(device_id, seen, ts, seq, battery_mv, rssi_dbm, fw)
), n AS (
    SELECT b.*, d.last_ts IS NULL OR (b.ts, b.seq) > (d.last_ts, d.last_seq) AS newer
    FROM b JOIN devices d USING (device_id)
)
UPDATE devices d SET
    status = 'online',
    last_seen_at = greatest(d.last_seen_at, n.seen),
    silent_after = greatest(d.last_seen_at, n.seen) + make_interval(secs => d.stale_after_s),
    last_ts = CASE WHEN n.newer THEN n.ts ELSE d.last_ts END,
    last_seq = CASE WHEN n.newer THEN n.seq ELSE d.last_seq END,
    battery_mv = CASE WHEN n.newer THEN coalesce(n.battery_mv, d.battery_mv) ELSE d.battery_mv END,
    rssi_dbm = CASE WHEN n.newer THEN coalesce(n.rssi_dbm, d.rssi_dbm) ELSE d.rssi_dbm END,
    firmware = CASE WHEN n.newer THEN coalesce(n.fw, d.firmware) ELSE d.firmware END,
    updated_at = n.seen
FROM n WHERE d.device_id = n.device_id
  AND (d.last_seen_at IS NULL OR d.status <> 'online'
       OR n.seen >= d.last_seen_at + make_interval(secs => least({TOUCH_EVERY_S}, d.stale_after_s / 10.0))
       OR (n.newer AND (coalesce(n.battery_mv, d.battery_mv) IS DISTINCT FROM d.battery_mv
                        OR coalesce(n.rssi_dbm, d.rssi_dbm) IS DISTINCT FROM d.rssi_dbm
                        OR coalesce(n.fw, d.firmware) IS DISTINCT FROM d.firmware)))
"""

# A sensor that comes to life (first message, or back from offline) gets a liveness deadline row
# (sql/0030); rows of live sensors are moved forward by the sweep, never by the writer, so the
# writer's device updates stay HOT and this runs only for the few devices that changed state.
ARM_DEADLINES = """
INSERT INTO device_deadlines (device_id, check_at)
SELECT device_id, silent_after FROM devices
WHERE device_id = ANY($1::text[]) AND kind = 'bay_sensor' AND silent_after IS NOT NULL
ON CONFLICT (device_id) DO UPDATE SET check_at = least(device_deadlines.check_at, excluded.check_at)
"""

# One statement per batch for history and current state: the batch's readings (one array per column
# of STAGE_COLUMNS) go into history (duplicates are no-ops), and those newer than their spot's
# (last_reading_ts, last_reading_seq) are replayed in order: each change of status among them is a
# history row, the newest decides the current state. One round trip: the arrays replaced a COPY into
# a temp table, which cost two more round trips and a truncation at every commit, all under the
# lots' locks (docs/gateway.md, "Batch transaction").
STORE_READINGS = f"""
WITH ins AS (
    INSERT INTO sensor_readings ({", ".join(STAGE_COLUMNS)})
    SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bigint[], $4::text[], $5::timestamptz[],
                         $6::text[], $7::boolean[], $8::int[], $9::int[])
    ON CONFLICT ON CONSTRAINT one_reading_per_device_seq_ts DO NOTHING
    RETURNING ts, device_id, seq, spot_id, occupied
), fresh AS (
    SELECT f.spot_id, s.lot_id, f.ts, f.seq, f.device_id, f.occupied, s.status AS cur,
           CASE WHEN s.status IN ('reserved', 'closed') THEN s.status
                WHEN f.occupied THEN 'occupied' ELSE 'free' END AS st
    FROM ins f JOIN spots s ON s.spot_id = f.spot_id
    WHERE s.last_reading_ts IS NULL
       OR (f.ts, f.seq) > (s.last_reading_ts, coalesce(s.last_reading_seq, -1))
), ordered AS (
    SELECT *, coalesce(lag(st) OVER w, cur) AS prev,
           row_number() OVER (PARTITION BY spot_id ORDER BY ts DESC, seq DESC) AS newest
    FROM fresh WINDOW w AS (PARTITION BY spot_id ORDER BY ts, seq)
), marked AS (
    SELECT *, max(ts) FILTER (WHERE st <> prev) OVER (PARTITION BY spot_id) AS changed_at
    FROM ordered
), changes AS (
    INSERT INTO spot_status_changes (ts, spot_id, lot_id, status, previous_status, cause, device_id)
    SELECT ts, spot_id, lot_id, st, prev, 'reading', device_id FROM marked WHERE st <> prev
    ORDER BY spot_id, ts, seq
    RETURNING lot_id, status, previous_status, spot_id, ts
), upd AS (
    UPDATE spots s SET status = m.st, occupied = m.occupied, last_reading_ts = m.ts,
                       last_reading_seq = m.seq, since = coalesce(m.changed_at, s.since)
    FROM marked m WHERE m.spot_id = s.spot_id AND m.newest = 1
)
SELECT a.accepted, c.lot_id, c.status, c.previous_status, c.spot_id, c.ts
FROM (SELECT count(*) AS accepted FROM ins) a LEFT JOIN changes c ON true
"""

# On-street sessions from a batch's reading changes (docs/gates.md): per spot in time order, the first
# change away from occupied closes the spot's open session; each change to occupied opens one,
# closed at once by the spot's next change in the same batch. A spot already holding an open session
# (it turned unknown and back) keeps it: ON CONFLICT on one_inside_session_per_spot.
# Shaped for a fresh `sessions` (no statistics): LATERAL ... LIMIT 1 probes one_inside_session_per_spot
# per change and the update finds rows by key (a plain join, or a state filter on the updated table,
# was planned as a loop over every open session per change). The batch holds its lots' row locks.
BAY_CHANGES = """
    SELECT c.*, lead(c.ts) OVER w AS next_ts, row_number() OVER w AS n
    FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS c(spot_id, ts, status)
    WINDOW w AS (PARTITION BY c.spot_id ORDER BY c.ts)
"""
CLOSE_BAY_SESSIONS = f"""
WITH c AS ({BAY_CHANGES}), closing AS (
    SELECT o.session_id, c.ts FROM c
    CROSS JOIN LATERAL (
        SELECT s.session_id FROM sessions s
        WHERE s.spot_id = c.spot_id AND s.state = 'open' AND s.spot_id IS NOT NULL
        LIMIT 1
    ) o
    WHERE c.n = 1 AND c.status <> 'occupied'
)
UPDATE sessions s SET state = 'closed', ended_at = greatest(closing.ts, s.started_at), closed_by = 'sensor'
FROM closing WHERE s.session_id = closing.session_id
"""
OPEN_BAY_SESSIONS = f"""
WITH c AS ({BAY_CHANGES})
INSERT INTO sessions (session_id, lot_id, kind, state, spot_id, started_at, ended_at, closed_by)
SELECT gen_random_uuid(), sp.lot_id, 'bay', CASE WHEN c.next_ts IS NULL THEN 'open' ELSE 'closed' END,
       c.spot_id, c.ts, c.next_ts, CASE WHEN c.next_ts IS NULL THEN NULL ELSE 'sensor' END
FROM c JOIN spots sp ON sp.spot_id = c.spot_id
WHERE c.status = 'occupied'
ON CONFLICT (spot_id) WHERE state IN ('pending', 'open') AND spot_id IS NOT NULL DO NOTHING
"""

# A sensor that was offline speaks again: its spot goes back to its last reading.
RESTORE_SPOTS = """
WITH r AS (
    UPDATE spots s SET status = CASE WHEN s.occupied THEN 'occupied' ELSE 'free' END, since = $2
    WHERE s.spot_id = ANY($1::text[]) AND s.status = 'unknown' AND s.occupied IS NOT NULL
    RETURNING s.spot_id, s.lot_id, s.status
)
INSERT INTO spot_status_changes (ts, spot_id, lot_id, status, previous_status, cause, device_id)
SELECT $2, r.spot_id, r.lot_id, r.status, 'unknown', 'reading', d.device_id
FROM r LEFT JOIN devices d ON d.spot_id = r.spot_id
RETURNING lot_id, status, previous_status
"""

PRESENCE = """
WITH b AS (
    SELECT * FROM unnest($1::text[], $2::boolean[], $3::timestamptz[]) AS b(device_id, online, ts)
), upd AS (
    UPDATE devices d SET presence = CASE WHEN b.online THEN 'online' ELSE 'offline' END
    FROM b WHERE d.device_id = b.device_id
      AND d.presence IS DISTINCT FROM (CASE WHEN b.online THEN 'online' ELSE 'offline' END)
    RETURNING d.device_id, d.presence, b.ts
)
INSERT INTO device_presence_changes (ts, device_id, event, detail)
SELECT ts, device_id, presence, 'presence message' FROM upd
"""


# A gate's own presence announcement proves it alive (parking_core.liveness.LIFE_SIGNS), as its
# messages on the gate path do (gate_tracking.GATE_DEVICE, the same columns): a separate statement,
# since PRESENCE above may update the same rows (two updates of one row in one statement lose one).
GATES_ALIVE = """
WITH b AS (
    SELECT device_id, max(seen) AS seen FROM unnest($1::text[], $2::timestamptz[]) AS b(device_id, seen)
    GROUP BY device_id
), seen AS (
    UPDATE devices d SET status = 'online', last_seen_at = greatest(d.last_seen_at, b.seen),
                         silent_after = greatest(d.last_seen_at, b.seen)
                                        + make_interval(secs => d.stale_after_s)
    FROM b, devices was
    WHERE d.device_id = b.device_id AND d.kind = 'gate' AND was.device_id = d.device_id
    RETURNING d.device_id, d.silent_after, was.status AS was, b.seen
), restored AS (
    INSERT INTO device_presence_changes (ts, device_id, event, detail)
    SELECT seen, device_id, 'comms_restored', 'presence message' FROM seen WHERE was = 'offline'
)
INSERT INTO device_deadlines (device_id, check_at)
SELECT device_id, silent_after FROM seen WHERE was <> 'online'
ON CONFLICT (device_id) DO UPDATE SET check_at = least(device_deadlines.check_at, excluded.check_at)
"""


async def apply_bay_sessions(conn: Conn, changes: Sequence[asyncpg.Record]) -> None:
    """Open and close bay sessions for the batch's status changes (set-based, same transaction)."""
    if changes:
        columns = (
            [c["spot_id"] for c in changes],
            [c["ts"] for c in changes],
            [c["status"] for c in changes],
        )
        await conn.execute(CLOSE_BAY_SESSIONS, *columns)
        await conn.execute(OPEN_BAY_SESSIONS, *columns)


def batch_lots(
    registry: Mapping[str, asyncpg.Record],
    readings: Sequence[SensorReading],
    presences: Sequence[PresenceReport],
) -> list[str]:
    """Return the lots a batch writes under, sorted: its readings' spots' lots and the lots of every
    device it updates (a presence message's device may belong to a lot no reading of the batch names;
    updating it without that lot's lock let two gateways, or a gateway and a sweep, wait on each
    other's device rows: the deadlock seen at demo start).
    """
    lots = {registry[r.device_id]["lot_id"] for r in readings}
    lots |= {registry[r.device_id]["device_lot_id"] for r in readings}
    lots |= {registry[p.device_id]["device_lot_id"] for p in presences}
    return sorted(lots)


def due_for_touch(
    rows: list[Sequence[object]], registry: Mapping[str, asyncpg.Record], woken: set[str]
) -> list[Sequence[object]]:
    """Keep the device columns of devices that TOUCH_DEVICES would update (the rest cost a join).

    The registry was read before the lots were locked, so a device's last_seen_at can only have
    grown since: a device skipped here would be skipped by TOUCH_DEVICES's own condition too. Its
    status may have turned offline meanwhile (a sweep): those come back through RESTORE_DEVICES,
    under the lots' locks, and are passed in *woken*.
    """
    keep = []
    for index, device_id in enumerate(rows[0]):
        dev = registry[str(device_id)]
        seen = rows[1][index]
        assert isinstance(seen, datetime)
        last = dev["last_seen_at"]
        every = timedelta(seconds=min(TOUCH_EVERY_S, dev["stale_after_s"] / 10))
        reports_health = any(rows[column][index] is not None for column in (4, 5, 6))
        if (
            device_id in woken
            or dev["status"] != "online"
            or last is None
            or seen >= last + every
            or reports_health  # TOUCH_DEVICES keeps the newest battery, signal and firmware
        ):
            keep.append(index)
    return [[column[i] for i in keep] for column in rows]


def _device_rows(readings: Sequence[SensorReading]) -> list[Sequence[object]]:
    """Return TOUCH_DEVICES' columns: per device the newest (ts, seq), and of each health value the
    newest one reported in the batch (a state message without `fw` does not hide a heartbeat's).
    """
    newest: dict[str, SensorReading] = {}
    seen: dict[str, datetime] = {}
    health: dict[str, list[int | str | None]] = {}
    for r in sorted(readings, key=lambda r: (r.ts, r.seq)):
        newest[r.device_id] = r
        values = health.setdefault(r.device_id, [None, None, None])
        for index, value in enumerate((r.battery_mv, r.rssi_dbm, r.firmware)):
            if value is not None:
                values[index] = value
        last = seen.get(r.device_id)
        if last is None or r.received_at > last:
            seen[r.device_id] = r.received_at
    ids = sorted(newest)
    return [
        ids,
        [seen[d] for d in ids],
        [newest[d].ts for d in ids],
        [newest[d].seq for d in ids],
        *([health[d][index] for d in ids] for index in range(3)),
    ]


async def write_presence(
    conn: Conn, presences: Sequence[PresenceReport], registry: Mapping[str, asyncpg.Record]
) -> None:
    """Record presence messages of known devices; those that prove a gate alive keep it online."""
    await conn.execute(
        PRESENCE,
        [p.device_id for p in presences],
        [p.online for p in presences],
        [p.received_at for p in presences],
    )
    alive = [
        p
        for p in presences
        if is_life_sign(DeviceKind(registry[p.device_id]["kind"]), Leaf.PRESENCE, online=p.online)
    ]
    if alive:
        await conn.execute(GATES_ALIVE, [p.device_id for p in alive], [p.received_at for p in alive])


def registered_readings(
    readings: Sequence[SensorReading], registry: Mapping[str, asyncpg.Record], refused: list[Rejection]
) -> tuple[list[SensorReading], list[tuple[object, ...]]]:
    """Return the readings of known bay sensors bound to a spot and their rows of STAGE_COLUMNS; the
    others' refusals (unknown_device, wrong_kind) are appended to *refused*.
    """
    stage: list[tuple[object, ...]] = []
    good: list[SensorReading] = []
    for r in readings:
        dev = registry.get(r.device_id)
        if dev is None:
            refused.append(
                reject(
                    r.topic, r.device_id, RejectReason.UNKNOWN_DEVICE, "no such device", r.raw, r.received_at
                )
            )
        elif dev["kind"] != "bay_sensor" or dev["lot_id"] is None:
            detail = f"device kind {dev['kind']}, spot {dev['spot_id']}"
            refused.append(
                reject(r.topic, r.device_id, RejectReason.WRONG_KIND, detail, r.raw, r.received_at)
            )
        else:
            good.append(r)
            stage.append(
                (
                    r.ts,
                    r.device_id,
                    r.seq,
                    dev["spot_id"],
                    r.received_at,
                    r.message,
                    r.occupied,
                    r.battery_mv,
                    r.rssi_dbm,
                )
            )
    return good, stage


async def write_batch(
    conn: Conn,
    readings: Sequence[SensorReading],
    presences: Sequence[PresenceReport],
    rejections: Sequence[Rejection],
    now: datetime,
) -> BatchResult:
    """Apply one batch in one transaction; the caller acknowledges its messages after this returns."""
    result = BatchResult()
    refused = list(rejections)
    async with conn.transaction():
        ids = {r.device_id for r in readings} | {p.device_id for p in presences}
        registry = {row["device_id"]: row for row in await conn.fetch(LOOKUP_DEVICES, list(ids))}
        good, stage = registered_readings(readings, registry, refused)
        known_presence = [p for p in presences if p.device_id in registry]
        refused += [
            reject(p.topic, p.device_id, RejectReason.UNKNOWN_DEVICE, "no such device", p.raw, p.received_at)
            for p in presences
            if p.device_id not in registry
        ]
        locked = batch_lots(registry, good, known_presence)
        if locked:  # before any write: presence updates devices too, maybe of lots no reading names
            await conn.fetch(LOCK_LOTS, locked)
        if good:
            columns = [list(column) for column in zip(*stage, strict=True)]
            stored = await conn.fetch(STORE_READINGS, *columns)  # one row per change, at least one row
            result.accepted = int(stored[0]["accepted"])
            result.duplicates = len(good) - result.accepted
            device_rows = _device_rows(good)
            back = await conn.fetch(RESTORE_DEVICES, device_rows[0], now)
            restored = [r["spot_id"] for r in back if r["spot_id"] is not None]
            touch = due_for_touch(device_rows, registry, {r["device_id"] for r in back})
            if touch[0]:
                await conn.execute(TOUCH_DEVICES, *touch)
            waking = {r["device_id"] for r in back}
            waking.update(d for d in device_rows[0] if registry[d]["status"] != "online")
            if waking:
                await conn.execute(ARM_DEADLINES, sorted(waking))
            fresh = [r for r in stored if r["lot_id"] is not None]
            changes: list[tuple[str, ...]] = [(r["lot_id"], r["status"], r["previous_status"]) for r in fresh]
            await apply_bay_sessions(conn, fresh)
            if restored:
                changes += [tuple(r) for r in await conn.fetch(RESTORE_SPOTS, restored, now)]
            result.status_changes = len(changes)
            result.lots = await apply_lot_deltas(conn, lot_deltas(changes), now)
        if known_presence:
            await write_presence(conn, known_presence, registry)
            result.presence = len(known_presence)
        if refused:
            await conn.copy_records_to_table(
                "rejected_messages",
                columns=REJECT_COLUMNS,
                records=[
                    (x.received_at, x.topic, x.device_id, x.reason.value, x.detail, x.payload)
                    for x in refused
                ],
            )
            result.rejected.update(x.reason.value for x in refused)
    return result
