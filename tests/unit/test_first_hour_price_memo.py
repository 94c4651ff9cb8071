"""The first-hour price of guidance: one computation per tariff, vehicle class and minute."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiohttp import web

from billing import Tariff, VehicleClass, price_stay
from billing.examples import load_example_tariffs
from guidance_api.context import TARIFFS
from guidance_api.pricing_view import first_hour_price
from guidance_api.tariff_cache import TariffCache

EXAMPLES = load_example_tariffs()
ON_STREET, OUTSKIRTS = EXAMPLES["zz-zone1-on-street"], EXAMPLES["zz-zone3-on-street"]
T = datetime(2026, 11, 30, 0, 59, 10, tzinfo=UTC)  # 08:59:10 in Zhengzhou: a band may start at 09:00


@dataclass
class FixedVersions(TariffCache):
    """Versions of one tariff as if just read at *read_at*; counts the reads."""

    tariff: Tariff = ON_STREET
    read_at: float = 1.0
    reads: list[str] = field(default_factory=list)

    async def fetched(self, tariff_id: str) -> tuple[float, tuple[Tariff, ...]]:
        self.reads.append(tariff_id)
        return self.read_at, (self.tariff,)


def app_with(cache: TariffCache) -> web.Application:
    app = web.Application()
    app[TARIFFS] = cache
    return app


def one_hour_from_the_minute(at: datetime, tariff: Tariff) -> int:
    minute = at.replace(second=0, microsecond=0)
    return price_stay(minute, minute + timedelta(hours=1), VehicleClass.SMALL_CAR, tariff).amount_fen


async def test_every_request_of_a_minute_gets_the_price_of_the_hour_from_its_start() -> None:
    cache = FixedVersions()
    app = app_with(cache)
    first = await first_hour_price(app, "t1", "small_car", T)
    again = await first_hour_price(app, "t1", "small_car", T + timedelta(seconds=40))
    assert first == again == one_hour_from_the_minute(T, ON_STREET)
    assert list(cache.price_memo) == [("t1", "small_car", T.replace(second=0))]


async def test_a_new_minute_or_a_new_reading_of_the_tariff_is_priced_again() -> None:
    cache = FixedVersions()
    app = app_with(cache)
    await first_hour_price(app, "t1", "small_car", T)
    later = T + timedelta(minutes=1)
    assert await first_hour_price(app, "t1", "small_car", later) == one_hour_from_the_minute(later, ON_STREET)
    assert [k[2] for k in cache.price_memo] == [later.replace(second=0)]  # the old minute is gone
    cache.tariff, cache.read_at = OUTSKIRTS, 2.0  # a new version was read
    priced = await first_hour_price(app, "t1", "small_car", later)
    assert priced == one_hour_from_the_minute(later, OUTSKIRTS) != one_hour_from_the_minute(later, ON_STREET)


async def test_no_tariff_means_no_price() -> None:
    assert await first_hour_price(app_with(FixedVersions()), None, "small_car", T) is None
