"""One harness for tests, demo and benchmarks: PostgreSQL and Mosquitto, throwaway or from PARKING_*."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from parking_core.adapters.migrate_pg import upgrade_database
from parking_core.adapters.migrations import SchemaMode
from parking_core.adapters.settings import BrokerAuth, Settings
from parking_core.devtools.embedded import MosquittoBroker, PostgresServer


def with_database(url: str, database: str) -> str:
    """Return *url* pointing at *database* on the same server."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@dataclass
class ServiceHarness:
    """Starts what the environment does not name, and makes isolated databases on demand."""

    database_url: str | None = None  # a server named by PARKING_DATABASE_URL, or None: start one
    mqtt_url: str | None = None  # a broker named by PARKING_MQTT_URL, or None: start one
    base_dir: Path | None = None
    keep_files: bool = False
    postgres: PostgresServer | None = field(default=None, init=False)
    broker: MosquittoBroker | None = field(default=None, init=False)
    _owns_dir: bool = field(default=False, init=False)
    _databases: list[str] = field(default_factory=list, init=False)

    @classmethod
    def from_environment(cls, base_dir: Path | None = None) -> ServiceHarness:
        """Build a harness that honours ``PARKING_DATABASE_URL`` and ``PARKING_MQTT_URL``."""
        settings = Settings()
        return cls(settings.database_url, settings.mqtt_url, base_dir)

    def start(self) -> Self:
        """Start the throwaway services that are needed."""
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="parking-harness-"))
            self._owns_dir = True
        if self.database_url is None:
            self.postgres = PostgresServer(self.base_dir / "pg").start()
            self.database_url = self.postgres.url
        if self.mqtt_url is None:
            self.broker = MosquittoBroker(self.base_dir / "mqtt").start()
            self.mqtt_url = self.broker.url
        return self

    def stop(self) -> None:
        """Drop the databases made here, stop what was started, remove the files."""
        for name in reversed(self._databases):
            self.drop_database(name)
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()
        if self._owns_dir and not self.keep_files and self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def admin_url(self) -> str:
        """Return the URL of the server's maintenance database."""
        assert self.database_url is not None, "harness not started"
        return with_database(self.database_url, "postgres")

    def create_database(self, prefix: str, template: str | None = None) -> str:
        """Create a fresh database (from *template* if given) and return its URL."""
        name = f"{prefix}_{secrets.token_hex(4)}".lower()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template is not None:
                query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            conn.execute(query)
        self._databases.append(name)
        return with_database(self.admin_url, name)

    def create_migrated_template(self, prefix: str = "parking_tpl") -> tuple[str, SchemaMode]:
        """Create a database with every migration applied, to copy per test module."""
        url = self.create_database(prefix)
        mode, _ = upgrade_database(url)
        return urlsplit(url).path.lstrip("/"), mode

    def drop_database(self, name: str) -> None:
        """Drop database *name*, disconnecting its sessions."""
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if name in self._databases:
            self._databases.remove(name)

    def settings(self, database_url: str, **overrides: object) -> Settings:
        """Return settings for a process that uses *database_url* and this harness's broker."""
        values: dict[str, object] = {"database_url": database_url, "mqtt_url": self.mqtt_url}
        if self.broker is not None:
            values |= {
                "broker_auth": BrokerAuth.FILE,
                "broker_password_file": self.broker.password_file,
                "broker_acl_file": self.broker.acl_file,
                "broker_pid_file": self.broker.pid_file,
            }
        values |= overrides
        return Settings.model_validate(values)
