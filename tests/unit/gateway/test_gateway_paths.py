"""`--paths`: which messages a gateway process subscribes to, from the command line or the environment."""

from __future__ import annotations

import pytest

from device_gateway.__main__ import build_settings, parse_args
from device_gateway.config import GatewayPaths


@pytest.mark.parametrize("paths", list(GatewayPaths))
def test_paths_comes_from_the_command_line_or_the_environment(
    paths: GatewayPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PARKING_GATEWAY_PATHS", raising=False)
    assert build_settings(parse_args([])).gateway_paths is GatewayPaths.ALL
    assert build_settings(parse_args(["--paths", paths.value])).gateway_paths is paths
    monkeypatch.setenv("PARKING_GATEWAY_PATHS", paths.value)
    assert build_settings(parse_args([])).gateway_paths is paths


def test_an_unknown_path_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--paths", "everything"])
    assert "--paths" in capsys.readouterr().err
