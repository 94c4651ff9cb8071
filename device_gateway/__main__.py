"""``parking-gateway``: run the device gateway (settings from ``PARKING_*`` environment variables)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import structlog

from device_gateway.config import BrokerCheck, GatewayPaths, GatewaySettings
from parking_core.adapters.logs import configure_logging

EXIT_UNFIT_BROKER = 3  # the broker drops a backlog (stock Mosquitto): fix its configuration
EXIT_CLIENT_ID_IN_USE = 4  # another process has our slot's session: restarting would only flap


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line; everything else comes from the environment."""
    parser = argparse.ArgumentParser(
        prog="parking-gateway",
        description=(
            "Device gateway: subscribes to bay-sensor state/heartbeat, device presence and gate "
            "plate/passage/ack through a shared MQTT subscription, validates, writes batches to "
            "PostgreSQL and acknowledges after commit; answers plate reads with gate commands. "
            "Settings come from PARKING_* environment variables "
            "(PARKING_DATABASE_URL, PARKING_MQTT_URL, PARKING_TOPIC_PREFIX, PARKING_GATEWAY_*); "
            "see docs/gateway.md."
        ),
    )
    parser.add_argument(
        "--slot",
        type=int,
        help="this process's number on this host (1, 2, ...): its MQTT client id, i.e. its persistent "
        "session, is parking-gateway-<host>-<slot> (default PARKING_GATEWAY_SLOT, 1)",
    )
    parser.add_argument("--client-id", help="MQTT client id (persistent session) instead of the slot's")
    parser.add_argument(
        "--paths",
        choices=[p.value for p in GatewayPaths],
        help="messages this process subscribes to: all, sensors (state, heartbeat, presence) or gates "
        "(plate, passage, ack); one gates process beside sensors processes keeps gate decisions off "
        "the sensor traffic (default PARKING_GATEWAY_PATHS, all)",
    )
    parser.add_argument("--metrics-port", type=int, help="serve /metrics on this port (0 = off)")
    parser.add_argument("--batch-rows", type=int, help="flush after this many messages")
    parser.add_argument("--flush-ms", type=int, help="flush after the oldest message waited this long")
    parser.add_argument("--log-level", help="debug, info, warning or error")
    return parser.parse_args(argv)


def build_settings(args: argparse.Namespace) -> GatewaySettings:
    """Return settings from the environment with command-line overrides."""
    overrides = {
        "gateway_slot": args.slot,
        "gateway_client_id": args.client_id,
        "gateway_paths": args.paths,
        "gateway_metrics_port": args.metrics_port,
        "gateway_batch_rows": args.batch_rows,
        "gateway_flush_interval_ms": args.flush_ms,
        "gateway_log_level": args.log_level,
    }
    return GatewaySettings(**{k: v for k, v in overrides.items() if v is not None})


async def _serve(settings: GatewaySettings) -> int:
    from device_gateway.service import ClientIdInUseError, run_gateway

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_gateway(settings, stop)
    except ClientIdInUseError:
        return EXIT_CLIENT_ID_IN_USE
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the gateway until SIGTERM or SIGINT; then drain, commit, acknowledge and exit."""
    args = parse_args(argv)
    settings = build_settings(args)
    configure_logging(settings.gateway_log_level)
    if settings.database_url is None or settings.mqtt_url is None:
        structlog.get_logger("device_gateway").error(
            "gateway.misconfigured", detail="set PARKING_DATABASE_URL and PARKING_MQTT_URL"
        )
        return 2
    if not broker_fit(settings):
        return EXIT_UNFIT_BROKER
    return asyncio.run(_serve(settings))


def broker_fit(settings: GatewaySettings) -> bool:
    """Check the broker (unless told not to); False when it drops a backlog and we must refuse."""
    from parking_core.adapters.broker_check import BrokerCheckError, check_broker

    if settings.gateway_broker_check is BrokerCheck.OFF:
        return True
    log = structlog.get_logger("device_gateway")
    assert settings.mqtt_url is not None
    try:
        report = check_broker(
            settings.mqtt_url,
            settings.topic_prefix,
            settings.gateway_batch_rows,
            settings.gateway_client_id,
        )
    except (BrokerCheckError, OSError) as exc:  # not up yet: the gateway waits for it anyway
        log.warning("broker.check_skipped", error=str(exc))
        return True
    for warning in report.warnings:
        log.warning("broker.check", problem=warning)
    for problem in report.problems:
        log.error("broker.check", problem=problem, fix="deploy/mosquitto/mosquitto.conf")
    refuse = bool(report.problems) and settings.gateway_broker_check is BrokerCheck.REFUSE
    if refuse:
        log.error("gateway.refused", detail="PARKING_GATEWAY_BROKER_CHECK=warn starts anyway")
    return not refuse


if __name__ == "__main__":
    sys.exit(main())
