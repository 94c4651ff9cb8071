"""Prices for guidance: the first hour from now, under the tariff version in force."""

from __future__ import annotations

from datetime import datetime, timedelta

from aiohttp import web

from billing import BillingError, VehicleClass, price_stay, select_tariff_version
from guidance_api.context import TARIFFS

ONE_HOUR = timedelta(hours=1)


async def first_hour_price(
    app: web.Application, tariff_id: str | None, vehicle_class: str, now: datetime
) -> int | None:
    """Return what one hour from *now* costs, or None when the lot has no tariff in force."""
    if tariff_id is None:
        return None
    versions = await app[TARIFFS].versions(tariff_id)
    if not versions:
        return None
    try:
        tariff = select_tariff_version(versions, now)
        return price_stay(now, now + ONE_HOUR, VehicleClass(vehicle_class), tariff).amount_fen
    except BillingError:
        return None
