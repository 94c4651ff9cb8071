"""Keeps the broker's password file and ACL in step with the provisioned devices."""

from __future__ import annotations

import asyncio
from functools import partial

import asyncpg
import structlog

from parking_core.adapters.broker_files import apply_broker_files, is_reserved_username, static_users
from parking_core.adapters.provisioning import device_grants
from parking_core.adapters.settings import BrokerAuth, Settings

log = structlog.get_logger("guidance_api.broker")


class BrokerSync:
    """Rewrites the broker's files from the devices table and asks the broker to reload."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = asyncio.Lock()  # one rewrite at a time in this process; a file lock across them

    @property
    def mode(self) -> BrokerAuth:
        """Return how the broker learns credentials."""
        return self._settings.broker_auth

    def reserved(self) -> set[str]:
        """Return the broker usernames no device may take: the backend's and the hand-kept users."""
        names = {self._settings.backend_mqtt_username}
        password_file = self._settings.broker_password_file
        if self._settings.broker_auth is BrokerAuth.FILE and password_file is not None:
            names |= static_users(password_file)
        return names

    def is_reserved(self, username: str) -> bool:
        """Tell whether *username* (a device id) would be one of the backend's broker identities."""
        return is_reserved_username(username, self.reserved())

    async def sync(self, pool: asyncpg.Pool) -> bool:
        """Bring the broker up to date; return whether it was told to reload.

        A failure to write the files is logged and reported as "not updated", never raised: the
        devices table stays the truth and the next sync (any provisioning, or the API's start)
        writes the files again.
        """
        settings = self._settings
        if settings.broker_auth is BrokerAuth.NONE:
            return False
        if settings.broker_password_file is None or settings.broker_acl_file is None:
            log.warning("broker.not_configured", detail="file mode needs password and ACL file paths")
            return False
        async with self._lock:
            grants = await device_grants(pool)
            files = (settings.broker_password_file, settings.broker_acl_file, settings.broker_pid_file)
            try:
                reloaded = await asyncio.to_thread(
                    partial(apply_broker_files, reserved={settings.backend_mqtt_username}),
                    grants,
                    settings.topic_prefix,
                    *files,
                )
            except OSError as exc:
                log.error("broker.sync_failed", error=repr(exc))  # noqa: TRY400 -- the cause is in error
                return False
        log.info("broker.synced", devices=len(grants), reloaded=reloaded)
        return reloaded
