"""The one settings object of each process, read from ``PARKING_*`` environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BrokerAuth(StrEnum):
    """How the broker learns the credentials of provisioned devices."""

    NONE = "none"  # someone else manages the broker's users
    FILE = "file"  # we write a password file and an ACL, then ask the broker to reload


class TimescaleMode(StrEnum):
    """Whether migrations use TimescaleDB."""

    AUTO = "auto"  # use it when the server has the extension
    ON = "on"  # refuse to run without it
    OFF = "off"  # plain PostgreSQL even where TimescaleDB exists


class MqttEndpoint(BaseModel):
    """Host, port and credentials parsed from an ``mqtt://user:pass@host:port`` URL."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int = 1883
    username: str | None = None
    password: SecretStr | None = None

    @classmethod
    def from_url(cls, url: str) -> MqttEndpoint:
        """Parse an ``mqtt://`` URL."""
        parts = urlsplit(url)
        if parts.scheme not in {"mqtt", "tcp"}:
            raise ValueError(f"MQTT URL must start with mqtt://, got {url!r}")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=SecretStr(unquote(parts.password)) if parts.password else None,
        )


class Settings(BaseSettings):
    """Everything a process needs to know about its surroundings."""

    model_config = SettingsConfigDict(env_prefix="PARKING_", frozen=True, extra="ignore")

    database_url: str | None = None  # None: use the embedded PostgreSQL under data_dir
    mqtt_url: str | None = None  # None: use the embedded Mosquitto under data_dir
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    admin_token: SecretStr | None = None
    payment_secret: SecretStr | None = None
    public_url: str | None = None  # the API's base URL as payment providers reach it (notify_url)
    payment_provider_url: str | None = None  # where refunds are sent: {url}/{provider}/v3/refund/...
    reminder_webhook_url: str | None = None  # arrears reminders are POSTed here (else only logged)
    topic_prefix: str = "parking/v1"
    data_dir: Path = Path("var")
    timescale: TimescaleMode = TimescaleMode.AUTO
    broker_auth: BrokerAuth = BrokerAuth.NONE
    broker_password_file: Path | None = None
    broker_acl_file: Path | None = None
    broker_pid_file: Path | None = None  # the broker is sent SIGHUP to reload its files
    backend_mqtt_username: str = "parking-backend"  # the backend's own broker user (file mode)

    def api_base_url(self) -> str:
        """Return the API's base URL as outsiders reach it: `public_url`, else host and port."""
        return (self.public_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")

    def mqtt_endpoint(self) -> MqttEndpoint:
        """Return the broker endpoint; requires ``mqtt_url``."""
        if self.mqtt_url is None:
            raise ValueError("PARKING_MQTT_URL is not set")
        return MqttEndpoint.from_url(self.mqtt_url)
