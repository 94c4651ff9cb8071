"""Exit pricing for the gate path: the tariff in force at entry, and the plate's earlier charges."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from billing import Quote, Tariff, TimedCharge, parse_tariff, price_stay, select_tariff_version
from billing.errors import NoTariffInForceError
from billing.vehicles import vehicle_class_for
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
        rows = await conn.fetch(EARLIER_CHARGES, stay.plate, stay.lot_id, since, stay.exit_at)
        earlier = [TimedCharge(r["at"], r["amount_fen"]) for r in rows]
        vehicle = vehicle_class_for(stay.plate, stay.plate_color)
        quote = price_stay(stay.entry, max(stay.entry, stay.exit_at), vehicle, tariff, earlier)
        return PricedStay(
            quote.amount_fen, quote.charges, tariff.tariff_id, tariff.version, vehicle.value, quote
        )
