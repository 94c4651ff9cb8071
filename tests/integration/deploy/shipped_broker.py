"""Start Mosquitto with deploy/mosquitto/mosquitto.conf (paths and ports moved), a throwaway CA."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from parking_core.adapters.broker_files import DeviceGrant, device_acl, hash_password
from parking_core.devtools.embedded import BACKEND_USER, free_port
from tests.mqtt_helpers import wait_until

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
SHIPPED_CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
CONTAINER_ROOT = "/mosquitto/"
START_TRIES = 3  # fresh ports after "Address already in use" (another process took one first)


def openssl(*args: str, cwd: Path) -> None:
    """Run the openssl CLI quietly, failing loudly."""
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def throwaway_ca(certs: Path) -> Path:
    """Make a CA and a server certificate for 127.0.0.1/localhost in *certs*; return the CA file."""
    certs.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=parking-test-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=certs)  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr", cwd=certs)  # fmt: skip
    (certs / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "1", "-extfile", "san.ext", "-out", "server.crt", cwd=certs)  # fmt: skip
    return certs / "ca.crt"


def host_config(conf: str, root: Path, backend_port: int, device_port: int) -> str:
    """Return the shipped config with container paths under *root* and the listeners on loopback."""
    moved = {
        "listener 1883": f"listener {backend_port} 127.0.0.1",
        "listener 8883": f"listener {device_port} 127.0.0.1",
    }
    lines = conf.replace(CONTAINER_ROOT, f"{root}/").splitlines()
    return "\n".join(moved.get(line, line) for line in lines) + "\n"


@dataclass
class ShippedBroker:
    """Mosquitto running the shipped config, with the backend user and one sensor user."""

    root: Path
    device_id: str = "SEN-TLS-1"
    device_password: str = "device-secret-1"
    backend_password: str = "backend-secret-1"
    prefix: str = "parking/v1"
    backend_port: int = field(default_factory=free_port)
    device_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        """Return the throwaway CA the server certificate was signed by."""
        return self.root / "certs" / "ca.crt"

    @property
    def backend_url(self) -> str:
        """Return the backend's URL (plain listener, as on the private network)."""
        return f"mqtt://{BACKEND_USER}:{self.backend_password}@127.0.0.1:{self.backend_port}"

    def start(self) -> ShippedBroker:
        """Write certificates, users and the config under *root*, then start the broker."""
        throwaway_ca(self.root / "certs")
        for sub in ("auth", "run", "data", "config"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        grant = DeviceGrant(self.device_id, "bay_sensor", hash_password(self.device_password), "L1")
        (self.root / "auth" / "passwd").write_text(
            f"{BACKEND_USER}:{hash_password(self.backend_password)}\n{self.device_id}:{grant.password_hash}\n"
        )
        (self.root / "auth" / "acl").write_text(
            f"user {BACKEND_USER}\ntopic readwrite #\n\n" + device_acl(grant, self.prefix)
        )
        for _ in range(START_TRIES):
            refused = self._launch()
            if refused is None:
                return self
            if "Address already in use" not in refused:
                raise RuntimeError(f"Mosquitto refused the shipped config: {refused}")
            # Another process took a port between free_port() and the bind: try fresh ones.
            self.backend_port, self.device_port = free_port(), free_port()
        raise RuntimeError(f"Mosquitto found no free ports in {START_TRIES} tries: {refused}")

    def _launch(self) -> str | None:
        """Write the config for the current ports and start the broker; None once it listens, else
        its output (the failed process is reaped and its pipe closed).
        """
        conf = self.root / "config" / "mosquitto.conf"
        conf.write_text(host_config(SHIPPED_CONF.read_text(), self.root, self.backend_port, self.device_port))
        give_to_broker_user(self.root)
        proc = subprocess.Popen(
            ["mosquitto", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        listening = wait_until(lambda: proc.poll() is not None or self._listening())
        time.sleep(0.1)  # a port someone else listens on answers too: the broker then exits at once
        if listening and proc.poll() is None:
            self.proc = proc
            return None
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        assert proc.stdout is not None
        with proc.stdout:
            out = proc.stdout.read().decode(errors="replace")
        return out[-2000:] or "Mosquitto did not listen with the shipped config"

    def _listening(self) -> bool:
        for port in (self.backend_port, self.device_port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                return False
        return True

    def stop(self) -> None:
        """Stop the broker."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self.proc = None


def give_to_broker_user(root: Path) -> None:
    """As root, Mosquitto drops to the ``mosquitto`` user: let it reach and own *root*'s files."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    for parent in root.parents:
        if parent != Path("/"):
            parent.chmod(parent.stat().st_mode | 0o011)
    for folder, dirs, files in os.walk(root):
        os.chown(folder, user.pw_uid, user.pw_gid)
        for name in dirs + files:
            os.chown(Path(folder) / name, user.pw_uid, user.pw_gid)
