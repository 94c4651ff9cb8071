"""The simulator is deterministic and its truth matches its messages; availability is rate-limited."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from device_gateway.availability import AvailabilityPublisher, availability_payload
from device_gateway.decode import Limits, Rejection, SensorReading, decode
from device_gateway.results import LotRow
from simulators.city import generate_city, load_city
from simulators.sensors import CitySimulator, Faults

P = "parking/v1"
START = datetime(2026, 11, 23, 6, tzinfo=UTC)
RECEIVED = START + timedelta(hours=3)  # when the "gateway" decodes the stream


def simulate(seed: int, faults: Faults) -> CitySimulator:
    return CitySimulator(
        generate_city(1, 2, 5),
        P,
        START,
        seed=seed,
        faults=faults,
        heartbeat_interval_s=300,
        wall_clock=lambda: RECEIVED,
    )


def test_the_same_seed_gives_the_same_stream() -> None:
    """Seeded runs are reproducible."""
    a, b = simulate(3, Faults(duplicate=0.2)), simulate(3, Faults(duplicate=0.2))
    assert a.advance(3600) == b.advance(3600)


def test_the_truth_is_what_decoding_the_stream_gives() -> None:
    """Every message decodes to a truth reading or to one of the expected refusals."""
    sim = simulate(5, Faults(duplicate=0.1, reorder=0.2, garbage=0.05, skew=0.05))
    stream = [p for _ in range(12) for p in sim.advance(600)] + sim.drain()
    readings, reasons = set(), []
    for pub in stream:
        got = decode(pub.topic, pub.payload, P, RECEIVED, Limits())
        if isinstance(got, SensorReading):
            readings.add((got.device_id, got.seq, got.ts))
        elif isinstance(got, Rejection):
            reasons.append(got.reason.value)
    assert readings == sim.truth.readings
    assert sorted(reasons) == sorted(sim.truth.rejected.elements())
    assert sim.truth.published == len(stream)


def test_silent_sensors_stop_sending() -> None:
    """A silent sensor sends its first state, then nothing."""
    sim = simulate(1, Faults(silent_devices=2))
    stream = sim.advance(7200)
    for device in sim.silent_device_ids:
        assert sum(device in p.topic for p in stream) == 1
    assert sim.truth.silent == sim.silent_device_ids


def test_layouts_load_from_json(tmp_path: Path) -> None:
    """A JSON layout accepts counts or explicit spot ids."""
    path = tmp_path / "city.json"
    path.write_text(
        json.dumps(
            {
                "districts": [
                    {
                        "district_id": "zz",
                        "lots": [
                            {"lot_id": "zz-1", "spots": 3},
                            {"lot_id": "zz-2", "spots": ["a", "b"], "kind": "off_street"},
                        ],
                    }
                ]
            }
        )
    )
    city = load_city(path)
    assert [lot.capacity for lot in city.lots] == [3, 2]
    assert city.lots[1].spots[0].device_id == "sen-a"


def test_availability_is_rate_limited_per_lot() -> None:
    """A lot publishes at most once per interval, always its newest counts."""
    sent: list[tuple[str, bytes]] = []
    pub = AvailabilityPublisher(P, 1.0, lambda t, p: sent.append((t, p)))
    row = LotRow("l1", 10, 5, 5, 0, 0, 0, False, START)
    pub.update([row])
    assert pub.flush_due(100.0) == 1
    pub.update([LotRow("l1", 10, 0, 10, 0, 0, 0, False, START + timedelta(seconds=1))])
    assert pub.flush_due(100.5) == 0
    assert pub.flush_due(101.0) == 1
    assert json.loads(sent[-1][1]) == {
        "ts": "2026-11-23T06:00:01Z",
        "free": 0,
        "capacity": 10,
        "status": "full",
    }
    assert sent[0][0] == f"{P}/lots/l1/availability"
    assert json.loads(availability_payload(row))["status"] == "open"
