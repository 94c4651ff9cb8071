"""The lock on a lot's room: gate entry decisions and new holds of one lot take it one at a time."""

from __future__ import annotations

from parking_core.adapters.lot_changes import Connection

# A transaction-scoped advisory lock, not the lot's row lock: sensor batches and the liveness sweep
# hold lots rows for a whole batch, and an entry at the barrier must not wait for them (docs/gates.md).
ROOM_LOCK_NAMESPACE = 1_617_200_010
LOCK_ROOM = "SELECT pg_advisory_xact_lock($1::integer, hashtext($2))"


async def lock_room(conn: Connection, lot_id: str) -> None:
    """Take *lot_id*'s room lock until the end of the caller's transaction."""
    await conn.execute(LOCK_ROOM, ROOM_LOCK_NAMESPACE, lot_id)
