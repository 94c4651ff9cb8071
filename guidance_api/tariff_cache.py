"""Tariff versions read from the database and kept in memory for a short while (quotes are hot)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from billing import Tariff, parse_tariff

CACHE_TTL_S = 30.0  # a new tariff version is visible to guidance within half a minute


@dataclass
class TariffCache:
    """Parsed versions per tariff id, refreshed after CACHE_TTL_S."""

    pool: asyncpg.Pool | None = None
    _entries: dict[str, tuple[float, tuple[Tariff, ...]]] = field(default_factory=dict)
    # Prices computed from these versions, for guidance: (tariff, vehicle class, minute) → (the
    # versions' fetch time, price). Emptied when the minute changes; a refetch makes old ones miss.
    price_memo: dict[tuple[str, str, datetime], tuple[float, int | None]] = field(default_factory=dict)

    async def versions(self, tariff_id: str) -> tuple[Tariff, ...]:
        """Return every stored version of *tariff_id* (empty if none)."""
        return (await self.fetched(tariff_id))[1]

    async def fetched(self, tariff_id: str) -> tuple[float, tuple[Tariff, ...]]:
        """Return (when they were read, every stored version of *tariff_id*)."""
        cached = self._entries.get(tariff_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_TTL_S:
            return cached
        assert self.pool is not None, "tariff cache used before the pool exists"
        rows = await self.pool.fetch(
            "SELECT document FROM tariff_versions WHERE tariff_id = $1 ORDER BY version", tariff_id
        )
        parsed = tuple(parse_tariff(json.loads(row["document"])) for row in rows)
        self._entries[tariff_id] = (now, parsed)
        return now, parsed

    def forget(self, tariff_id: str) -> None:
        """Drop *tariff_id* so the next read sees a new version at once."""
        self._entries.pop(tariff_id, None)
