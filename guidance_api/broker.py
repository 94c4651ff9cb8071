"""Keeps the broker's password file and ACL in step with the provisioned devices."""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from parking_core.adapters.broker_files import apply_broker_files
from parking_core.adapters.provisioning import device_grants
from parking_core.adapters.settings import BrokerAuth, Settings

log = structlog.get_logger("guidance_api.broker")


class BrokerSync:
    """Rewrites the broker's files from the devices table and asks the broker to reload."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = asyncio.Lock()

    @property
    def mode(self) -> BrokerAuth:
        """Return how the broker learns credentials."""
        return self._settings.broker_auth

    async def sync(self, pool: asyncpg.Pool) -> bool:
        """Bring the broker up to date; return whether it was told to reload."""
        settings = self._settings
        if settings.broker_auth is BrokerAuth.NONE:
            return False
        if settings.broker_password_file is None or settings.broker_acl_file is None:
            log.warning("broker.not_configured", detail="file mode needs password and ACL file paths")
            return False
        async with self._lock:
            grants = await device_grants(pool)
            reloaded = await asyncio.to_thread(
                apply_broker_files,
                grants,
                settings.topic_prefix,
                settings.broker_password_file,
                settings.broker_acl_file,
                settings.broker_pid_file,
            )
        log.info("broker.synced", devices=len(grants), reloaded=reloaded)
        return reloaded
