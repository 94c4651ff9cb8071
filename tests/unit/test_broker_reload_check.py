"""The broker files' check user: its password follows their content, so it proves what was loaded."""

from __future__ import annotations

from pathlib import Path

from parking_core.adapters.broker_files import (
    RELOAD_CHECK_USER,
    DeviceGrant,
    apply_broker_files,
    hash_password,
    reload_check_credentials,
    verify_password,
)

PREFIX = "parking/v1"


def written_check_hash(passwd: Path) -> str:
    (line,) = [line for line in passwd.read_text().splitlines() if line.startswith(f"{RELOAD_CHECK_USER}:")]
    return line.split(":", 1)[1]


def test_the_check_password_is_the_one_written_and_changes_with_the_content(tmp_path: Path) -> None:
    """What the checker derives opens the entry just written; other content gives another password."""
    passwd, acl = tmp_path / "passwd", tmp_path / "acl"
    apply_broker_files([DeviceGrant("SEN-1", "bay_sensor", hash_password("pw"))], PREFIX, passwd, acl, None)
    first = reload_check_credentials(passwd, acl)
    assert first.username == RELOAD_CHECK_USER
    assert verify_password(first.password, written_check_hash(passwd))
    apply_broker_files([DeviceGrant("SEN-1", "bay_sensor", hash_password("pw"))], PREFIX, passwd, acl, None)
    assert reload_check_credentials(passwd, acl) != first  # a new hash of the same device: other content
    assert not verify_password(first.password, written_check_hash(passwd))
