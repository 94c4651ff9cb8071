"""A shared lot's terms as the API reads them: one query, the tariff's calendar, the windows evaluated."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from billing import Tariff, parse_tariff, tariff_in_force
from billing.tariff import day_type_of
from guidance_api import problem_types as pt
from guidance_api.problems import ProblemError
from parking_core.adapters.lot_changes import Connection
from parking_core.sharing import (
    STRETCH_HORIZON,
    DayTypeOf,
    EndTerms,
    SharingRule,
    SharingWindow,
    shared_spaces_at,
    stretches,
    windows_between,
)

SHARED_LOTS = """
SELECT s.lot_id, s.owner_name, s.owner_share_percent, s.rules, s.members, s.reminder_before_min,
       s.overstay_unit_min, s.overstay_unit_fee_fen, l.name, l.tariff_id, l.time_zone, l.shared_spaces
FROM lot_sharing s JOIN lots l USING (lot_id)
WHERE $1::text IS NULL OR s.lot_id = $1 ORDER BY s.lot_id
"""


def minute_of(clock: str) -> int:
    """Return HH:MM (24:00 allowed) as minutes of the day."""
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def rules_of(document: list[dict[str, Any]]) -> list[SharingRule]:
    """Return the sharing rules of a stored ``lot_sharing.rules`` document."""
    return [
        SharingRule(
            r["rule_id"], frozenset(r["day_types"]), minute_of(r["start"]), minute_of(r["end"]), r["spaces"]
        )
        for r in document
    ]


def week_day_type(day: date) -> str:
    """Day type of a lot without a tariff (no holiday calendar): Saturdays and Sundays are weekend."""
    return day_type_of(day).value


def day_types_of(tariff: Tariff | None) -> Callable[[date], str]:
    """Return how a lot's days are typed: by its tariff's calendar, or by the week without one."""
    if tariff is None:
        return week_day_type
    return lambda day: tariff.day_type(day).value


async def stored_tariff_at(conn: Connection, tariff_id: str | None, at: datetime) -> Tariff | None:
    """Return the stored version of *tariff_id* in force at *at* (None without one)."""
    if tariff_id is None:
        return None
    rows = await conn.fetch("SELECT document FROM tariff_versions WHERE tariff_id = $1", tariff_id)
    return tariff_in_force([parse_tariff(json.loads(r["document"])) for r in rows], at)


@dataclass(frozen=True, slots=True)
class SharedLot:
    """A lot its owner shares (``lot_sharing`` with the lot's name, time zone and calendar)."""

    lot_id: str
    name: str
    owner_name: str
    owner_share_percent: int
    rules: tuple[SharingRule, ...]
    members: frozenset[str]
    terms: EndTerms
    tz: ZoneInfo
    day_type: DayTypeOf  # the calendar of the lot's tariff in force when it was read
    shared_spaces: int | None  # the quota the sweep last set

    def windows(self, start: datetime, end: datetime) -> list[SharingWindow]:
        """Return the shared stretches of [start, end) with their quotas (sharing.windows_between)."""
        return windows_between(self.rules, start, end, self.tz, self.day_type)

    def stretches(self, start: datetime, end: datetime) -> list[SharingWindow]:
        """Return the chained shared time that covers some of [start, end), each to its real end
        (looked for up to a week past *end*; one covering *start* begins there): what a car parked
        in it may use before it must leave.
        """
        return [s for s in stretches(self.windows(start, end + STRETCH_HORIZON)) if s.start < end]

    def quota_at(self, at: datetime) -> int:
        """Return how many spaces the public may use at *at*."""
        return shared_spaces_at(self.rules, at, self.tz, self.day_type)


def _shared_lot(row: Any, tariff: Tariff | None) -> SharedLot:
    return SharedLot(
        row["lot_id"],
        row["name"],
        row["owner_name"],
        row["owner_share_percent"],
        tuple(rules_of(json.loads(row["rules"]))),
        frozenset(row["members"]),
        EndTerms(
            timedelta(minutes=row["reminder_before_min"]),
            timedelta(minutes=row["overstay_unit_min"]),
            row["overstay_unit_fee_fen"],
        ),
        ZoneInfo(row["time_zone"]),
        day_types_of(tariff),
        row["shared_spaces"],
    )


async def shared_lots(conn: Connection, at: datetime, lot_id: str | None = None) -> list[SharedLot]:
    """Return every shared lot (or the one named), its days typed by the tariff in force at *at*."""
    found = []
    tariffs: dict[str | None, Tariff | None] = {}
    for row in await conn.fetch(SHARED_LOTS, lot_id):
        if row["tariff_id"] not in tariffs:
            tariffs[row["tariff_id"]] = await stored_tariff_at(conn, row["tariff_id"], at)
        found.append(_shared_lot(row, tariffs[row["tariff_id"]]))
    return found


async def shared_lot(conn: Connection, lot_id: str, at: datetime) -> SharedLot:
    """Return one shared lot, or raise the 404 `not_shared` for a lot that publishes no windows."""
    found = await shared_lots(conn, at, lot_id)
    if not found:
        raise ProblemError(pt.NOT_SHARED, f"lot {lot_id!r} publishes no sharing windows")
    return found[0]
