"""Keeps the broker's password file and ACL in step with the provisioned devices."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from functools import partial
from pathlib import Path

import aiomqtt
import asyncpg
import structlog

from parking_core.adapters.broker_files import (
    BrokerCredentials,
    apply_broker_files,
    is_reserved_username,
    reload_broker,
    reload_check_credentials,
    static_users,
)
from parking_core.adapters.provisioning import device_grants
from parking_core.adapters.settings import BrokerAuth, MqttEndpoint, Settings

log = structlog.get_logger("guidance_api.broker")
# How long to wait for the broker to load the files: the first look comes almost at once, the
# waits then double up to half a second, about 10 s in all (a reload of a very large file on a busy
# machine); CONNACK codes that mean "these credentials are not (yet) known".
FIRST_LOOK_S, LONGEST_WAIT_S, LOOKS = 0.01, 0.5, 25
REFUSED_CODES = {4, 5, 134, 135}  # MQTT 3.1.1 bad credentials / not authorised; MQTT 5 the same


class BrokerSync:
    """Rewrites the broker's files from the devices table and asks the broker to reload."""

    def __init__(self, settings: Settings, signal: Callable[[Path | None], bool] = reload_broker) -> None:
        self._settings = settings
        self._signal = signal  # sends the broker SIGHUP; tell if it was sent
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
            files = (settings.broker_password_file, settings.broker_acl_file, None)  # signalled below
            try:
                await asyncio.to_thread(
                    partial(apply_broker_files, reserved={settings.backend_mqtt_username}),
                    grants,
                    settings.topic_prefix,
                    *files,
                )
            except OSError as exc:
                log.error("broker.sync_failed", error=repr(exc))  # noqa: TRY400 -- the cause is in error
                return False
            reloaded = await asyncio.to_thread(self._signal, settings.broker_pid_file)
            if reloaded:
                reloaded = await self._until_loaded()
        log.info("broker.synced", devices=len(grants), reloaded=reloaded)
        return reloaded

    async def _until_loaded(self) -> bool:
        """Wait until the broker has loaded the files just written; signal it again if it lost the signal.

        Mosquitto clears its reload flag when a reload ends, so a SIGHUP that lands during a reload
        is lost: a device provisioned just after another could not connect until some later reload.
        The files carry a check user whose password follows their content; once the broker lets it
        connect, it has loaded them. Return False if it never did (the response then says so).
        """
        settings = self._settings
        if (
            settings.mqtt_url is None
            or settings.broker_password_file is None
            or settings.broker_acl_file is None
        ):
            return True  # no broker address to ask: the signal is all we can give
        endpoint = settings.mqtt_endpoint()
        check = await asyncio.to_thread(
            reload_check_credentials, settings.broker_password_file, settings.broker_acl_file
        )
        wait = FIRST_LOOK_S
        for _ in range(LOOKS):
            await asyncio.sleep(wait)
            accepted = await accepts(endpoint, check)
            if accepted is None:
                return True  # the broker cannot be reached to ask: it was signalled
            if accepted:
                return True
            await asyncio.to_thread(self._signal, settings.broker_pid_file)
            wait = min(2 * wait, LONGEST_WAIT_S)
        log.warning("broker.reload_unconfirmed", detail="the broker never accepted the check user")
        return False


async def accepts(endpoint: MqttEndpoint, user: BrokerCredentials) -> bool | None:
    """Tell whether the broker at *endpoint* lets *user* connect; None if it could not be asked."""
    client = aiomqtt.Client(
        endpoint.host,
        endpoint.port,
        username=user.username,
        password=user.password,
        identifier=f"{user.username}-{secrets.token_hex(6)}",
        timeout=5,
    )
    try:
        async with client:
            return True
    except aiomqtt.MqttCodeError as exc:
        code = exc.rc if isinstance(exc.rc, int) or exc.rc is None else exc.rc.value
        if code in REFUSED_CODES:
            return False
        log.warning("broker.check_failed", error=str(exc))
        return None
    except aiomqtt.MqttError as exc:
        log.warning("broker.check_failed", error=str(exc))
        return None
