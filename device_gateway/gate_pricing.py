"""Exit pricing for the gate path: the tariff in force at entry, and the plate's earlier charges."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from billing import Quote, Tariff, TimedCharge, parse_tariff, price_stay, select_tariff_version
from billing.errors import NoTariffInForceError
from billing.invoices import PricedStay as InvoicedStay
from billing.vehicles import vehicle_class_for
from device_gateway.gate_money import invoice_session
from device_gateway.store import Conn

CACHE_TTL_S = 30.0  # a new tariff version reaches the gates within half a minute
# Earlier stays count against the daily cap: a calendar day or a rolling 24 h never reaches
# further back than this from the new stay's entry.
EARLIER_LOOKBACK = timedelta(days=2)
EARLIER_CHARGES = """
SELECT c.at, c.amount_fen
FROM sessions s, jsonb_to_recordset(s.charges) AS c(at timestamptz, amount_fen bigint)
WHERE s.plate = $1 AND s.lot_id = $2 AND s.ended_at > $3 AND s.ended_at <= $4
  AND s.state IN ('priced', 'invoiced', 'paid', 'in_arrears', 'written_off') AND NOT s.no_entry
"""


@dataclass(frozen=True, slots=True)
class PricedStay:
    """A priced stay: the amount, and what the session keeps to explain it and cap later stays."""

    amount_fen: int
    charges: tuple[TimedCharge, ...] = ()
    tariff_id: str | None = None
    tariff_version: int | None = None
    vehicle_class: str | None = None
    quote: Quote | None = None  # the tariff engine's quote: an invoice's lines come from it

    def charges_json(self) -> str:
        """Return the timed charges as the ``sessions.charges`` column holds them."""
        return json.dumps([{"at": c.at.isoformat(), "amount_fen": c.amount_fen} for c in self.charges])


@dataclass(frozen=True, slots=True)
class Stay:
    """A stay to price: where, which plate, from when to when."""

    lot_id: str
    tariff_id: str | None
    plate: str
    plate_color: str | None
    entry: datetime
    exit_at: datetime


@dataclass
class StayPricer:
    """Prices stays with the lot's tariff; parsed tariff versions are kept for CACHE_TTL_S."""

    _versions: dict[str, tuple[float, tuple[Tariff, ...]]] = field(default_factory=dict)

    async def versions(self, conn: Conn, tariff_id: str) -> tuple[Tariff, ...]:
        """Return the stored versions of *tariff_id*, parsed (cached)."""
        cached = self._versions.get(tariff_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_TTL_S:
            return cached[1]
        rows = await conn.fetch(
            "SELECT document FROM tariff_versions WHERE tariff_id = $1 ORDER BY version", tariff_id
        )
        parsed = tuple(parse_tariff(json.loads(row["document"])) for row in rows)
        self._versions[tariff_id] = (now, parsed)
        return parsed

    async def price(self, conn: Conn, stay: Stay) -> PricedStay:
        """Price a stay; a lot without a tariff (or none in force at entry) charges nothing."""
        if stay.tariff_id is None:
            return PricedStay(0)
        versions = await self.versions(conn, stay.tariff_id)
        try:
            tariff = select_tariff_version(versions, stay.entry)
        except NoTariffInForceError:
            return PricedStay(0, tariff_id=stay.tariff_id)
        since = stay.entry - EARLIER_LOOKBACK
        earlier: list[TimedCharge] = []
        if stay.plate:  # a bay stay with no plate attached has no earlier stays to cap against
            rows = await conn.fetch(EARLIER_CHARGES, stay.plate, stay.lot_id, since, stay.exit_at)
            earlier = [TimedCharge(r["at"], r["amount_fen"]) for r in rows]
        vehicle = vehicle_class_for(stay.plate, stay.plate_color)
        quote = price_stay(stay.entry, max(stay.entry, stay.exit_at), vehicle, tariff, earlier)
        return PricedStay(
            quote.amount_fen, quote.charges, tariff.tariff_id, tariff.version, vehicle.value, quote
        )


# Stays that ended without an exit decision (a bay turned free, a manual exit release) wait here
# for their price; SKIP LOCKED lets several gateways share the work.
CLOSED_UNPRICED = """
SELECT s.session_id, s.lot_id, l.tariff_id, s.plate, s.plate_color, s.started_at, s.ended_at, s.paid_fen
FROM sessions s JOIN lots l ON l.lot_id = s.lot_id
WHERE s.state = 'closed' AND s.closed_by IN ('sensor', 'manual')
ORDER BY s.ended_at LIMIT $1 FOR UPDATE OF s SKIP LOCKED
"""
PRICE_CLOSED = """
UPDATE sessions SET state = 'priced', amount_fen = $2, tariff_id = $3, tariff_version = $4,
                    vehicle_class = $5, charges = $6::jsonb
WHERE session_id = $1
"""
SETTLE = "UPDATE sessions SET state = 'paid' WHERE session_id = $1"
PRICE_BATCH = 200  # stays priced per sweep and gateway: bounded work per tick


# Invoices refer to their lot (a key-share lock on its row): taken for all the batch's lots at once,
# in the gateway's lot order, before the first invoice; invoicing lot by lot in the stays' order
# could hold one lot while a sensor batch or the start-up recount, holding the next, waited for it.
SHARE_LOTS = "SELECT lot_id FROM lots WHERE lot_id = ANY($1::text[]) ORDER BY lot_id FOR KEY SHARE"


async def price_closed_sessions(conn: Conn, pricer: StayPricer) -> int:
    """Price stays closed by a sensor or a manual release; a stay with nothing due is settled."""
    async with conn.transaction():
        rows = await conn.fetch(CLOSED_UNPRICED, PRICE_BATCH)
        if rows:
            await conn.fetch(SHARE_LOTS, sorted({r["lot_id"] for r in rows}))
        for r in rows:
            stay = Stay(
                r["lot_id"],
                r["tariff_id"],
                r["plate"] or "",
                r["plate_color"],
                r["started_at"],
                r["ended_at"],
            )
            priced = await pricer.price(conn, stay)
            tariff = (priced.tariff_id, priced.tariff_version, priced.vehicle_class)
            await conn.execute(
                PRICE_CLOSED, r["session_id"], priced.amount_fen, *tariff, priced.charges_json()
            )
            if priced.amount_fen <= r["paid_fen"]:
                await conn.execute(SETTLE, r["session_id"])
            elif r["plate"] and priced.quote is not None:  # the bill follows the plate (docs/money.md)
                bill = InvoicedStay(str(r["session_id"]), r["lot_id"], r["plate"], priced.quote)
                await invoice_session(conn, bill, r["paid_fen"], r["ended_at"])
    return len(rows)
