"""Throwaway or persistent PostgreSQL and Mosquitto that the project starts itself (tests, demo, bench)."""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from parking_core.adapters.broker_files import BrokerCredentials, write_password_file

PG_START_TIMEOUT_S = 30.0  # a cold initdb + start takes ~1 s here; leave room for a loaded CI box
MQTT_START_TIMEOUT_S = 10.0  # mosquitto listens within ~20 ms
BACKEND_USER = "parking-backend"
# The broker disconnects a client that sends a larger MQTT packet. A device message is ~150 bytes and
# the gateway refuses (and records) payloads over 8 KiB; this outer bound stops a client from making
# the broker hold megabytes per message. docs/security.md gives the same line for production.
BROKER_MAX_PACKET_BYTES = 1024 * 1024


class EmbeddedServiceError(RuntimeError):
    """Raised when an embedded service cannot be started or stopped."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Tell whether *port* on 127.0.0.1 can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait_for_port(port: int, timeout_s: float, what: str, proc: subprocess.Popen[bytes] | None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise EmbeddedServiceError(f"{what} exited with code {proc.returncode}: {err[-1000:]}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=0.2),
        ):
            return
        time.sleep(0.02)
    raise EmbeddedServiceError(f"{what} did not listen on port {port} within {timeout_s} s")


def _as_root() -> bool:
    return os.geteuid() == 0


def _service_user(name: str) -> pwd.struct_passwd | None:
    """Return the system user a service should run as when we are root, if it exists."""
    if not _as_root():
        return None
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    for root, dirs, files in os.walk(path):
        os.chown(root, user.pw_uid, user.pw_gid)
        for name in dirs + files:
            os.chown(Path(root) / name, user.pw_uid, user.pw_gid)


def _make_reachable(path: Path) -> None:
    """Let a service user traverse every folder above *path* (mktemp folders are 0700)."""
    for parent in path.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)


def pg_bindir() -> Path:
    """Return the folder of the PostgreSQL server binaries (not on PATH on Debian)."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
        bindir = Path(out.stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), reverse=True)
    if candidates:
        return candidates[0].parent
    raise EmbeddedServiceError("PostgreSQL server binaries not found: run scripts/setup.sh")


@dataclass
class PostgresServer:
    """A PostgreSQL cluster in *data_dir*, listening on 127.0.0.1:*port* with trust auth."""

    data_dir: Path
    port: int = 0
    fast_and_unsafe: bool = True  # fsync off: for tests and demos, never production
    _run_as: list[str] = field(default_factory=list, init=False)

    @property
    def url(self) -> str:
        """Return the DSN of the ``postgres`` database as superuser ``postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str) -> str:
        """Return the DSN of *database* on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        return [*self._run_as, *args]

    def start(self) -> Self:
        """Initialise the cluster if needed and start it."""
        bindir = pg_bindir()
        self.data_dir = self.data_dir.resolve()
        user = _service_user("postgres")
        if _as_root():
            if user is None:
                raise EmbeddedServiceError("running as root needs a 'postgres' system user")
            self._run_as = ["runuser", "-u", "postgres", "--"]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            _make_reachable(self.data_dir)
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                self._cmd(
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ),
                check=True,
                capture_output=True,
            )
        if self.port == 0:
            self.port = free_port()
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.data_dir}",
            "-c max_connections=200",
            "-c jit=off",
        ]  # JIT makes the small geo queries several times slower
        if self.fast_and_unsafe:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        result = subprocess.run(
            self._cmd(
                str(bindir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.data_dir / "server.log"),
                "-w",
                "-t",
                str(int(PG_START_TIMEOUT_S)),
                "-o",
                " ".join(options),
                "start",
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            log = (self.data_dir / "server.log").read_text(errors="replace")[-2000:]
            raise EmbeddedServiceError(f"PostgreSQL did not start: {result.stderr}\n{log}")
        _wait_for_port(self.port, PG_START_TIMEOUT_S, "PostgreSQL", None)
        return self

    def stop(self) -> None:
        """Stop the cluster (fast shutdown); its files stay."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        subprocess.run(
            self._cmd(str(pg_bindir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"),
            capture_output=True,
            check=False,
        )


@dataclass
class MosquittoBroker:
    """A Mosquitto in *base_dir* with a password file and ACL that provisioning rewrites."""

    base_dir: Path
    port: int = 0
    backend_password: str = ""  # empty: kept in base_dir/backend-password, made on first start
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def password_file(self) -> Path:
        """Return the password file the broker reads."""
        return self.base_dir / "passwd"

    @property
    def acl_file(self) -> Path:
        """Return the ACL file the broker reads."""
        return self.base_dir / "acl"

    @property
    def pid_file(self) -> Path:
        """Return where the broker's pid is kept, for reloads."""
        return self.base_dir / "mosquitto.pid"

    @property
    def url(self) -> str:
        """Return the URL the backend connects with (its own full-access user)."""
        return f"mqtt://{BACKEND_USER}:{self.backend_password}@127.0.0.1:{self.port}"

    def _config(self, user: pwd.struct_passwd | None) -> str:
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous false",
            f"password_file {self.password_file}",
            f"acl_file {self.acl_file}",
            "persistence true",
            f"persistence_location {self.base_dir}/",
            "autosave_interval 60",
            "set_tcp_nodelay true",  # a gate's plate read must not wait for Nagle (MACHINE-NOTES)
            "max_inflight_messages 0",  # ack-after-commit holds a whole batch in flight
            "max_queued_messages 0",  # the gateway's persistent session keeps all while it is down
            "max_keepalive 300",
            f"max_packet_size {BROKER_MAX_PACKET_BYTES}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"log_dest file {self.base_dir}/mosquitto.log",
        ]
        if _as_root():
            lines.append(f"user {user.pw_name if user else 'root'}")
        return "\n".join(lines) + "\n"

    def start(self) -> Self:
        """Write the config and start the broker."""
        self.base_dir = self.base_dir.resolve()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self.port == 0:
            self.port = free_port()
        user = _service_user("mosquitto")
        secret_file = self.base_dir / "backend-password"
        if not self.backend_password:
            if not secret_file.exists():
                secret_file.write_text(secrets.token_urlsafe(18))
                secret_file.chmod(0o600)
            self.backend_password = secret_file.read_text().strip()
        backend = BrokerCredentials(BACKEND_USER, self.backend_password)
        write_password_file(self.password_file, [backend])
        acl_static = self.acl_file.with_name(self.acl_file.name + ".static")
        acl_static.write_text(f"user {BACKEND_USER}\ntopic readwrite #\n")
        if not self.acl_file.exists():
            self.acl_file.write_text(acl_static.read_text())
        conf = self.base_dir / "mosquitto.conf"
        conf.write_text(self._config(user))
        if user is not None:
            _make_reachable(self.base_dir)
            _chown_tree(self.base_dir, user)
        self._proc = subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.pid_file.write_text(f"{self._proc.pid}\n")
        _wait_for_port(self.port, MQTT_START_TIMEOUT_S, "Mosquitto", self._proc)
        return self

    def reload(self) -> None:
        """Ask the broker to re-read its password file and ACL."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """Stop the broker, letting it save its persistent sessions."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stderr is not None:
            self._proc.stderr.close()
        self._proc = None
