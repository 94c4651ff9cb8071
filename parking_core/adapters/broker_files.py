"""Mosquitto password-file hashes, ACLs for provisioned devices, and reloading the broker."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from parking_core.topics import DeviceKind, device_acl_lines

PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes; the broker reads the count from the hash
SALT_BYTES = 12  # mosquitto_passwd's salt length


@dataclass(frozen=True, slots=True)
class BrokerCredentials:
    """A broker username and its plain password (shown to the device owner once)."""

    username: str
    password: str


@dataclass(frozen=True, slots=True)
class DeviceGrant:
    """What one device may do on the broker: its id, kind and password hash."""

    device_id: str
    kind: str
    password_hash: str
    lot_id: str | None = None


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Return *password* hashed in Mosquitto 2's ``$7$`` PBKDF2-SHA512 format."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    return f"$7${PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Tell whether *password* matches a ``$7$`` hash."""
    try:
        _, kind, iterations, salt_b64, digest_b64 = hashed.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt_b64), int(iterations))
    return secrets.compare_digest(digest, base64.b64decode(digest_b64))


def new_device_password() -> str:
    """Return a fresh random device password."""
    return secrets.token_urlsafe(24)


def device_acl(grant: DeviceGrant, prefix: str) -> str:
    """Return the ACL block that lets a device use only its own topics (layout: parking_core.topics)."""
    lines = device_acl_lines(prefix, grant.device_id, DeviceKind(grant.kind), grant.lot_id)
    return "\n".join([f"user {grant.device_id}", *lines]) + "\n"


def _static_part(path: Path) -> str:
    """Return the hand-kept part of a broker file (``<file>.static``), e.g. the backend's own user."""
    static = path.with_name(path.name + ".static")
    return static.read_text() if static.exists() else ""


def _replace_file(path: Path, text: str) -> None:
    """Write *text* to *path* atomically, keeping the old file's owner (the broker must read it)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    owner = path if path.exists() else path.parent
    stat = owner.stat()
    if os.geteuid() == 0:
        os.chown(tmp, stat.st_uid, stat.st_gid)
    tmp.replace(path)


def _read_entries(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, hashed = line.partition(":")
            if name and hashed:
                entries[name] = hashed
    return entries


def write_password_file(path: Path, users: Iterable[BrokerCredentials]) -> None:
    """Add or replace *users* in the static part ``<path>.static`` and in *path* itself."""
    static = path.with_name(path.name + ".static")
    fresh = {user.username: hash_password(user.password) for user in users}
    static_entries = _read_entries(static) | fresh
    static.write_text("".join(f"{name}:{hashed}\n" for name, hashed in static_entries.items()))
    static.chmod(0o600)
    live = _read_entries(path) | fresh
    _replace_file(path, "".join(f"{name}:{hashed}\n" for name, hashed in live.items()))


def render_broker_files(grants: Iterable[DeviceGrant], prefix: str) -> tuple[str, str]:
    """Return the device part of the password file and of the ACL for *grants*."""
    ordered = sorted(grants, key=lambda g: g.device_id)
    passwd = "".join(f"{g.device_id}:{g.password_hash}\n" for g in ordered)
    acl = "\n".join(device_acl(g, prefix) for g in ordered)
    return passwd, acl


def apply_broker_files(
    grants: Iterable[DeviceGrant],
    prefix: str,
    password_file: Path,
    acl_file: Path,
    pid_file: Path | None,
) -> bool:
    """Rewrite the broker's password file and ACL and signal it to reload; tell if it was signalled."""
    passwd, acl = render_broker_files(grants, prefix)
    _replace_file(password_file, _static_part(password_file) + passwd)
    _replace_file(acl_file, _static_part(acl_file) + "\n" + acl)
    if pid_file is None or not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return True
