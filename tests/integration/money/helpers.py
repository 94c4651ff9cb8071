"""Helpers for money tests: a lot to invoice at, priced stays, signed provider deliveries."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import asyncpg

from billing import load_example_tariffs, price_stay
from billing.adapters.ledger_store import Conn, raise_invoice
from billing.invoices import PricedStay
from billing.tariff import VehicleClass

TARIFF = load_example_tariffs()["zz-zone1-above-ground"]
ENTRY = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Zhengzhou


async def make_lot(conn: Conn, district_id: str = "d-money", lot_id: str | None = None) -> str:
    """Create a district and an off-street lot; return the lot id."""
    lot_id = lot_id or f"lot-{secrets.token_hex(4)}"
    await conn.execute(
        "INSERT INTO districts (district_id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", district_id
    )
    await conn.execute(
        "INSERT INTO lots (lot_id, district_id, name, kind, lat, lon, capacity, tariff_id)"
        " VALUES ($1, $2, $1, 'off_street', 34.75, 113.62, 100, $3)",
        lot_id,
        district_id,
        TARIFF.tariff_id,
    )
    return lot_id


def stay(lot_id: str, plate: str, hours: float = 3.1, entry: datetime = ENTRY) -> PricedStay:
    """Return a priced stay of *hours* at *lot_id* (a fresh session id)."""
    quote = price_stay(entry, entry + timedelta(hours=hours), VehicleClass.SMALL_CAR, TARIFF)
    return PricedStay(f"ses-{secrets.token_hex(6)}", lot_id, plate, quote)


async def invoice(conn: Conn, lot_id: str, plate: str, hours: float = 3.1) -> tuple[str, int]:
    """Raise an invoice for a fresh stay; return its id and amount."""
    priced = stay(lot_id, plate, hours)
    invoice_id = await raise_invoice(conn, priced, priced.quote.exit)
    assert invoice_id is not None
    return invoice_id, priced.quote.amount_fen


async def connect(url: str) -> asyncpg.Connection:
    """Return a connection to *url*."""
    return await asyncpg.connect(url)
