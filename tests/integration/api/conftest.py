"""Fixtures for API tests: the real application over a module database, and an admin client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from guidance_api.app import create_app
from parking_core.adapters.settings import Settings

ADMIN = {"Authorization": "Bearer test-admin-token-of-32-characters-or-more"}


@pytest.fixture
async def api(
    app_settings: Settings, aiohttp_client: Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
) -> TestClient[Any, Any]:
    """Return a client of the real application (own pool, broker in file mode)."""
    return await aiohttp_client(create_app(app_settings))
