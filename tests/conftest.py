"""Shared fixtures: one service harness per run, one migrated database and topic prefix per module."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck, settings

from parking_core.adapters.broker_check import check_broker
from parking_core.adapters.migrations import SchemaMode
from parking_core.adapters.settings import Settings
from parking_core.devtools.harness import ServiceHarness

settings.register_profile("ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
CHECK_BATCH_ROWS = 2000  # the gateway's default batch: the largest burst the tests' gateways hold


@pytest.fixture(scope="session")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceHarness]:
    """Start PostgreSQL and Mosquitto unless PARKING_DATABASE_URL / PARKING_MQTT_URL name them."""
    base = tmp_path_factory.mktemp("services")
    with ServiceHarness.from_environment(base_dir=Path(base)) as started:
        if started.broker is None:  # a broker of the user's own: check it before anything relies on it
            refuse_unfit_broker(started)
        yield started


def refuse_unfit_broker(harness: ServiceHarness) -> None:
    """Stop the run with the setting to change when the broker drops a backlog (stock Mosquitto does)."""
    assert harness.mqtt_url is not None
    report = check_broker(harness.mqtt_url, f"t{secrets.token_hex(4)}/parking/v1", CHECK_BATCH_ROWS)
    for warning in report.warnings:  # shown, not raised (filterwarnings = error)
        print(f"\nwarning: PARKING_MQTT_URL: {warning}", file=sys.__stderr__)
    if report.problems:
        pytest.exit(
            "PARKING_MQTT_URL names a broker the gateway cannot rely on: "
            + "; ".join(report.problems)
            + " (deploy/mosquitto/mosquitto.conf has the settings)",
            returncode=2,
        )


@pytest.fixture(scope="session")
def migrated_template(harness: ServiceHarness) -> tuple[str, SchemaMode]:
    """Return a migrated template database (name, mode), made once per run."""
    return harness.create_migrated_template(f"parking_tpl_{os.getpid()}")


@pytest.fixture(scope="module")
def database_url(
    harness: ServiceHarness,
    migrated_template: tuple[str, SchemaMode],
    request: pytest.FixtureRequest,
) -> Iterator[str]:
    """Return the URL of a migrated database of this test module's own."""
    module = request.module.__name__.rsplit(".", 1)[-1][:30]
    url = harness.create_database(f"t_{module}", template=migrated_template[0])
    yield url
    harness.drop_database(url.rsplit("/", 1)[-1])


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Return a connection to this module's database: the test's own view of what was written."""
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def topic_prefix() -> str:
    """Return an MQTT topic prefix of this module's own, so modules never see each other's messages."""
    return f"t{secrets.token_hex(4)}/parking/v1"


@pytest.fixture(scope="module")
def app_settings(harness: ServiceHarness, database_url: str, topic_prefix: str) -> Settings:
    """Return settings for backend processes of this module."""
    return harness.settings(
        database_url,
        topic_prefix=topic_prefix,
        admin_token="test-admin-token-of-32-characters-or-more",
        payment_secret="test-payment-secret",
    )
