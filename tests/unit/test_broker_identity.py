"""Broker files: no device can take a reserved identity; writes are atomic and serialised; reloads check."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from parking_core.adapters.broker_files import (
    RELOAD_CHECK_USER,
    BrokerCredentials,
    DeviceGrant,
    apply_broker_files,
    hash_password,
    is_reserved_username,
    reload_broker,
    render_broker_files,
    write_password_file,
)

PREFIX = "parking/v1"


def grant(device_id: str) -> DeviceGrant:
    return DeviceGrant(device_id, "bay_sensor", hash_password("pw"))


def broker_dir(tmp_path: Path) -> tuple[Path, Path]:
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    write_password_file(passwd, [BrokerCredentials("parking-backend", "backend-secret")])
    acl.with_name("acl.static").write_text("user parking-backend\ntopic readwrite #\n")
    return passwd, acl


def users(passwd: Path) -> list[str]:
    return [line.split(":", 1)[0] for line in passwd.read_text().splitlines() if line]


def test_reserved_names_are_the_backends_and_its_namespace() -> None:
    """The backend's users, any case, and every name in the service namespace are reserved."""
    reserved = {"gw-admin"}
    assert is_reserved_username("parking-backend", reserved)
    assert is_reserved_username("Parking-Backend", reserved)
    assert is_reserved_username("parking-gateway-2", reserved)
    assert is_reserved_username("GW-ADMIN", reserved)
    assert not is_reserved_username("SEN-1", reserved)
    assert not is_reserved_username("parking", reserved)


def test_the_files_cannot_hold_a_second_entry_for_a_reserved_user(tmp_path: Path) -> None:
    """A device row named like the backend (provisioned before the check) is left out of both files."""
    passwd, acl = broker_dir(tmp_path)
    apply_broker_files(
        [grant("parking-backend"), grant("SEN-1"), grant("ops")],
        PREFIX,
        passwd,
        acl,
        None,
        reserved={"ops"},
    )
    assert users(passwd) == ["parking-backend", "SEN-1", RELOAD_CHECK_USER]
    acl_users = [line for line in acl.read_text().splitlines() if line.startswith("user ")]
    assert acl_users == ["user parking-backend", "user SEN-1"]
    device_part, _ = render_broker_files([grant("parking-x"), grant("a")], PREFIX)
    assert device_part.startswith("a:")
    assert "parking-x" not in device_part


def test_concurrent_writers_leave_well_formed_files(tmp_path: Path) -> None:
    """Writers in parallel (each with its own lock handle, as two processes have) never interleave."""
    passwd, acl = broker_dir(tmp_path)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for round_ in range(15):
                grants = [grant(f"S{n}-{i}") for i in range(round_ % 5 + 1)]
                apply_broker_files(grants, PREFIX, passwd, acl, None)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    names = users(passwd)
    assert names[0] == "parking-backend"
    assert len(names) == len(set(names))
    assert all(
        line.count(":") == 1 and line.split(":")[1].startswith("$7$")
        for line in passwd.read_text().splitlines()
    )
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_stale_pid_file_is_not_signalled(tmp_path: Path) -> None:
    """A PID file naming a process that is not Mosquitto (here: this test) sends no signal."""
    pid_file = tmp_path / "mosquitto.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    assert reload_broker(pid_file) is False  # had it signalled, SIGHUP would have ended this run
    pid_file.write_text("not a pid\n")
    assert reload_broker(pid_file) is False
    pid_file.write_text("1\n")
    assert reload_broker(pid_file) is False
    assert reload_broker(tmp_path / "missing.pid") is False
