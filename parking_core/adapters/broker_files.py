"""Mosquitto password-file hashes, ACLs for provisioned devices, and reloading the broker."""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import secrets
import signal
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from parking_core.topics import DeviceKind, device_acl_lines

PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes; the broker reads the count from the hash
SALT_BYTES = 12  # mosquitto_passwd's salt length
# Broker usernames in this namespace belong to the backend's own services (gateway, API,
# simulators): no device id may take one, so no device can ever be given a service's identity.
SERVICE_USER_PREFIX = "parking-"
BROKER_PROCESS_NAME = "mosquitto"  # what /proc/<pid>/comm says of the broker we may signal
# A user with no topics whose password follows the files' content: once the broker lets it connect,
# the broker has loaded these very files (see `reload_check_credentials`).
RELOAD_CHECK_USER = SERVICE_USER_PREFIX + "reload-check"


class ReservedUsernameError(ValueError):
    """Raised when a device id would be the broker username of the backend or another service."""

    def __init__(self, username: str) -> None:
        super().__init__(
            f"{username!r} is a reserved broker username (the backend's own users and names starting"
            f" with {SERVICE_USER_PREFIX!r} are reserved)"
        )
        self.username = username


def is_reserved_username(username: str, reserved: Iterable[str]) -> bool:
    """Tell whether *username* belongs to the backend: listed in *reserved*, or in the service namespace."""
    folded = username.casefold()
    return folded.startswith(SERVICE_USER_PREFIX) or folded in {name.casefold() for name in reserved}


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


def static_users(password_file: Path) -> set[str]:
    """Return the usernames of the hand-kept part of the password file (the backend's users)."""
    return set(_read_entries(password_file.with_name(password_file.name + ".static")))


@contextlib.contextmanager
def broker_files_lock(password_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on the broker files, shared by every process that writes them."""
    lock = password_file.with_name(password_file.name + ".lock")
    with lock.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _replace_file(path: Path, text: str) -> None:
    """Write *text* to *path* atomically through a temp file of its own, keeping the old owner."""
    owner = path if path.exists() else path.parent
    stat = owner.stat()
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        tmp.chmod(0o600)
        if os.geteuid() == 0:
            os.chown(tmp, stat.st_uid, stat.st_gid)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    with broker_files_lock(path):
        static_entries = _read_entries(static) | fresh
        _replace_file(static, "".join(f"{name}:{hashed}\n" for name, hashed in static_entries.items()))
        live = _read_entries(path) | fresh
        _replace_file(path, "".join(f"{name}:{hashed}\n" for name, hashed in live.items()))


def render_broker_files(
    grants: Iterable[DeviceGrant], prefix: str, reserved: Iterable[str] = ()
) -> tuple[str, str]:
    """Return the device part of the password file and of the ACL for *grants*.

    A grant whose id is a reserved username is left out: the files can hold only one entry for
    each of the backend's users, the hand-kept one.
    """
    taken = set(reserved)
    ordered = sorted(
        (g for g in grants if not is_reserved_username(g.device_id, taken)), key=lambda g: g.device_id
    )
    passwd = "".join(f"{g.device_id}:{g.password_hash}\n" for g in ordered)
    acl = "\n".join(device_acl(g, prefix) for g in ordered)
    return passwd, acl


def is_broker_process(pid: int) -> bool:
    """Tell whether *pid* is a running Mosquitto (a stale PID file may name some other process)."""
    comm = Path(f"/proc/{pid}/comm")
    if not Path("/proc/self/comm").exists():
        return True  # no procfs to ask: trust the PID file, as mosquitto's own init scripts do
    try:
        return comm.read_text().strip() == BROKER_PROCESS_NAME
    except OSError:
        return False


def reload_broker(pid_file: Path | None) -> bool:
    """Send the broker named by *pid_file* SIGHUP if it is a running Mosquitto; tell if it was sent."""
    if pid_file is None or not pid_file.exists():
        return False
    try:
        pid = int(pid_file.read_text().strip())
    except (ValueError, OSError):
        return False
    if pid <= 1 or not is_broker_process(pid):
        return False
    try:
        os.kill(pid, signal.SIGHUP)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def apply_broker_files(  # noqa: PLR0913 -- the three broker files, named at each call
    grants: Iterable[DeviceGrant],
    prefix: str,
    password_file: Path,
    acl_file: Path,
    pid_file: Path | None,
    *,
    reserved: Iterable[str] = (),
) -> bool:
    """Rewrite the broker's password file and ACL and signal it to reload; tell if it was signalled.

    Holds the cross-process lock of the files, so two API processes never interleave their writes.
    """
    with broker_files_lock(password_file):
        taken = static_users(password_file) | set(reserved)
        passwd, acl = render_broker_files(grants, prefix, taken)
        passwd_text = _static_part(password_file) + passwd
        acl_text = _static_part(acl_file) + "\n" + acl
        check = _check_credentials(passwd_text, acl_text)
        _replace_file(password_file, passwd_text + f"{check.username}:{hash_password(check.password)}\n")
        _replace_file(acl_file, acl_text)
        return reload_broker(pid_file)


def reload_check_credentials(password_file: Path, acl_file: Path) -> BrokerCredentials:
    """Return the check user's credentials for the broker files as they are now.

    `apply_broker_files` gives the check user a password derived from the rest of both files, so the
    broker accepts these credentials once it has loaded this content (or a copy of it) and not before.
    """
    with broker_files_lock(password_file):
        lines = password_file.read_text().splitlines(keepends=True)
        rest = "".join(line for line in lines if not line.startswith(f"{RELOAD_CHECK_USER}:"))
        return _check_credentials(rest, acl_file.read_text())


def _check_credentials(passwd_text: str, acl_text: str) -> BrokerCredentials:
    digest = hashlib.sha256(f"{passwd_text}\0{acl_text}".encode()).hexdigest()
    return BrokerCredentials(RELOAD_CHECK_USER, digest[:32])
