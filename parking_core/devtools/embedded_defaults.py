"""Where each command finds its database and broker: the ``PARKING_*`` URLs, or embedded ones."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg

from parking_core.adapters.settings import Settings
from parking_core.devtools.embedded import MosquittoBroker, PostgresServer

EMBEDDED_DATABASE = "parking"


def running_port(server: PostgresServer) -> int | None:
    """Return the port of an embedded cluster that is already running, if it is."""
    pid_file = server.data_dir / "postmaster.pid"
    if not pid_file.exists():
        return None
    lines = pid_file.read_text().splitlines()
    if len(lines) < 4:
        return None
    port = int(lines[3])
    try:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2):
            return port
    except psycopg.OperationalError:
        return None


def ensure_database(admin_dsn: str, name: str) -> None:
    """Create database *name* if it does not exist."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if found is None:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))


@contextlib.contextmanager
def embedded_database(settings: Settings, override: str | None = None) -> Iterator[str]:
    """Yield the database URL; start the embedded cluster for the call if no URL is configured."""
    url = override or settings.database_url
    if url:
        yield url
        return
    server = PostgresServer(settings.data_dir / "pg")
    port = running_port(server)
    if port is not None:
        server.port = port
        yield server.url_for(EMBEDDED_DATABASE)
        return
    server.start()
    try:
        ensure_database(server.url, EMBEDDED_DATABASE)
        yield server.url_for(EMBEDDED_DATABASE)
    finally:
        server.stop()


def embedded_broker(settings: Settings) -> MosquittoBroker:
    """Return (not started) the embedded broker under the data folder."""
    return MosquittoBroker(settings.data_dir / "mqtt")
