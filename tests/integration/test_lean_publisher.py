"""The benchmarks' lean publisher against the real broker: every message arrives, intact and in order."""

from __future__ import annotations

import secrets

import pytest

from bench.lean_publisher import LeanPublisher, LeanPublisherError, publish_packet
from parking_core.adapters.settings import MqttEndpoint
from parking_core.devtools.harness import ServiceHarness
from tests.mqtt_helpers import connect, wait_until


def test_every_message_arrives_in_order_and_every_puback_is_counted(harness: ServiceHarness) -> None:
    assert harness.mqtt_url is not None
    prefix = f"lean{secrets.token_hex(3)}"
    endpoint = MqttEndpoint.from_url(harness.mqtt_url)
    watcher = connect(harness.mqtt_url)
    watcher.client.subscribe(f"{prefix}/#", qos=1)
    marker = LeanPublisher(endpoint, f"lean-marker-{prefix}")

    def subscribed() -> bool:
        marker.publish(f"{prefix}/ready", b"")
        marker.flush()
        return wait_until(lambda: any(t == f"{prefix}/ready" for t, _ in watcher.messages), 0.2)

    assert wait_until(subscribed)
    marker.close()
    # Remaining lengths of one, two and three bytes; more messages than there are packet ids.
    sizes = {0: 20_000, 1: 200, 2: 0}
    sent = [(f"{prefix}/s/{i % 7}", bytes([i % 251]) * sizes.get(i % 1000, i % 100)) for i in range(70_000)]
    publisher = LeanPublisher(endpoint, f"lean-{prefix}", window=500)
    for topic, payload in sent:
        publisher.publish(topic, payload)
        if publisher.unacked % 100 == 0:
            publisher.flush()
            assert publisher.unacked <= 600  # the window holds
    publisher.close()
    assert publisher.unacked == 0
    assert wait_until(lambda: len(watcher.messages) >= len(sent), 60)
    watcher.close()
    assert [m for m in watcher.messages if m[0] != f"{prefix}/ready"] == sent


def test_a_refused_connection_is_an_error_not_a_silent_publisher(harness: ServiceHarness) -> None:
    assert harness.mqtt_url is not None
    endpoint = MqttEndpoint.from_url(harness.mqtt_url)
    if endpoint.username is None:
        pytest.skip("this broker takes anonymous clients: nothing to refuse")
    wrong = endpoint.model_copy(update={"password": None})
    with pytest.raises(LeanPublisherError, match="refused"):
        LeanPublisher(wrong, "lean-refused")


def test_the_packet_is_mqtt_311_qos_1() -> None:
    packet = publish_packet("a/b", b"xyz", 513)
    assert packet == b"\x32\x0a\x00\x03a/b\x02\x01xyz"
    long = publish_packet("t", b"p" * 200, 1)
    assert long[:3] == b"\x32\xcd\x01"  # 205 bytes after the fixed header: a two-byte length
