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
    """Return what one hour from the start of *now*'s minute costs, or None without a tariff in force.

    Every request of the same minute asks the same question, so the answer is kept across
    requests (``TariffCache.price_memo``) until the minute changes or the tariff is read again.
    """
    if tariff_id is None:
        return None
    fetched_at, versions = await app[TARIFFS].fetched(tariff_id)
    if not versions:
        return None
    minute = now.replace(second=0, microsecond=0)
    memo = app[TARIFFS].price_memo
    key = (tariff_id, vehicle_class, minute)
    hit = memo.get(key)
    if hit is not None and hit[0] == fetched_at:
        return hit[1]
    if memo and next(iter(memo))[2] != minute:
        memo.clear()  # a new minute (all keys share one): the old answers are never asked again
    try:
        tariff = select_tariff_version(versions, minute)
        price: int | None = price_stay(
            minute, minute + ONE_HOUR, VehicleClass(vehicle_class), tariff
        ).amount_fen
    except BillingError:
        price = None
    memo[key] = (fetched_at, price)
    return price
