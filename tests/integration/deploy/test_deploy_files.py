"""deploy/: the compose file, nginx and systemd units agree with each other and with the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from device_gateway.config import GatewaySettings
from tests.integration.deploy.shipped_broker import DEPLOY

ROOT = DEPLOY.parent
SETTINGS_FIELDS = {f"PARKING_{name.upper()}" for name in GatewaySettings.model_fields}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """Return the parsed compose file (YAML merge keys resolved)."""
    parsed = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(parsed, dict)
    return parsed


def services(compose: dict[str, Any], prefix: str) -> dict[str, dict[str, Any]]:
    """Return the services whose name starts with *prefix*."""
    return {name: s for name, s in compose["services"].items() if name.startswith(prefix)}


def test_the_database_is_timescaledb_and_every_process_waits_for_migrations(compose: dict[str, Any]) -> None:
    """TimescaleDB's image; gateways and API processes start after `parking-db upgrade` succeeded."""
    assert compose["services"]["db"]["image"] == "timescale/timescaledb:latest-pg15"
    assert compose["services"]["migrate"]["command"] == ["parking-db", "upgrade"]
    for name, service in (services(compose, "gateway-") | services(compose, "api-")).items():
        condition = service["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_gateways_have_distinct_slots_and_one_stable_hostname(compose: dict[str, Any]) -> None:
    """Each gateway container resumes its own persistent session, however often it is re-created."""
    gateways = services(compose, "gateway-")
    assert len(gateways) >= 2
    slots = [g["environment"]["PARKING_GATEWAY_SLOT"] for g in gateways.values()]
    assert len(set(slots)) == len(slots)
    assert {g["hostname"] for g in gateways.values()} == {"gateway"}
    assert all(g["command"] == ["parking-gateway"] for g in gateways.values())
    assert all("PARKING_GATEWAY_CLIENT_ID" not in g["environment"] for g in gateways.values())


def test_every_parking_variable_is_a_real_setting(compose: dict[str, Any]) -> None:
    """A misspelt PARKING_* variable would be ignored silently by the settings."""
    for name, service in compose["services"].items():
        for key in service.get("environment", {}):
            if key.startswith("PARKING_"):
                assert key in SETTINGS_FIELDS, (name, key)
    env_file = (DEPLOY / "systemd" / "parking.env").read_text()
    for key in re.findall(r"^(PARKING_[A-Z_]+)=", env_file, re.MULTILINE):
        assert key in SETTINGS_FIELDS, key


def test_secrets_come_from_the_env_file_and_the_example_names_them(compose: dict[str, Any]) -> None:
    """Every ${VAR:?…} of the compose file is in env.example, and .env is never committed."""
    text = (DEPLOY / "compose.yaml").read_text()
    needed = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = set(re.findall(r"^([A-Z_]+)=", (DEPLOY / "env.example").read_text(), re.MULTILINE))
    assert needed
    assert needed <= example
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()
    assert compose["services"]["broker"]["image"].startswith("eclipse-mosquitto:2")


def test_only_tls_ports_face_the_public(compose: dict[str, Any]) -> None:
    """The broker publishes 8883 (TLS) only; the proxy 443 (and 80, which only redirects)."""
    published = {
        name: [p.split(":")[0] for p in s.get("ports", [])] for name, s in compose["services"].items()
    }
    assert published["broker"] == ["8883"]
    assert sorted(published["proxy"]) == ["443", "80"]
    assert {n for n, p in published.items() if p} == {"broker", "proxy"}
    conf = (DEPLOY / "nginx" / "parking.conf").read_text()
    assert re.search(r"listen 443 ssl;", conf)
    assert re.search(r"listen 80;\s+server_name _;\s+return 301 https://", conf)


def test_the_proxy_balances_exactly_the_api_processes(compose: dict[str, Any]) -> None:
    """nginx's upstream lists every api-N service on its port, and nothing else."""
    apis = services(compose, "api-")
    assert len(apis) >= 2
    conf = (DEPLOY / "nginx" / "parking.conf").read_text()
    upstream = re.search(r"upstream parking_api \{(.*?)\}", conf, re.DOTALL)
    assert upstream is not None
    servers = set(re.findall(r"server ([\w.-]+):(\d+)", upstream.group(1)))
    assert servers == {(name, api["command"][-1]) for name, api in apis.items()}
    proxy_mounts = compose["services"]["proxy"]["volumes"]
    assert "./nginx/parking.conf:/etc/nginx/conf.d/default.conf:ro" in proxy_mounts


def test_mounted_files_and_image_sources_exist(compose: dict[str, Any]) -> None:
    """Bind mounts (except certificates, which each city brings) and the Dockerfile's COPY sources."""
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and source != "./certs":
                assert (DEPLOY / source).exists(), source
    for source in re.findall(r"^COPY (\S+)", (DEPLOY / "Dockerfile").read_text(), re.MULTILINE):
        assert (ROOT / source).exists(), source
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for service in compose["services"].values():
        command = service.get("command")
        if isinstance(command, list) and command[0].startswith("parking-"):
            assert command[0] in scripts


def installed_units(tmp_path: Path) -> Path:
    """Copy the units with /opt/parking pointing at this checkout, as an install would."""
    units = tmp_path / "units"
    units.mkdir()
    for unit in (DEPLOY / "systemd").iterdir():
        if unit.suffix in {".service", ".target"}:
            (units / unit.name).write_text(unit.read_text().replace("/opt/parking", str(ROOT)))
    return units


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_units_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts each unit and a gateway and API instance."""
    units = installed_units(tmp_path)
    names = ["parking-gateway@1.service", "parking-api@8081.service", "parking-migrate.service"]
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(units / n) for n in names)],
        capture_output=True,
        text=True,
        check=False,
    )
    problems = [line for line in result.stderr.splitlines() if "parking" in line]
    assert result.returncode == 0, result.stderr
    assert not problems, problems


def unit_values(text: str, key: str) -> list[str]:
    """Return every value of *key* in a unit file."""
    return re.findall(rf"^{key}=(.*)$", text, re.MULTILINE)


def test_the_gateway_unit_passes_its_slot_and_does_not_restart_into_a_taken_session() -> None:
    """`--slot %i` gives each instance its session; exit 4 (id in use) is not restarted."""
    text = (DEPLOY / "systemd" / "parking-gateway@.service").read_text()
    assert unit_values(text, "ExecStart") == ["/opt/parking/.venv/bin/parking-gateway --slot %i"]
    assert unit_values(text, "RestartPreventExitStatus") == ["4"]
    assert unit_values(text, "KillSignal") == ["SIGTERM"]
    api = (DEPLOY / "systemd" / "parking-api@.service").read_text()
    assert "--port %i" in unit_values(api, "ExecStart")[0]
