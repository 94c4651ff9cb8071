"""A seeded, virtual-clock city of bay sensors: arrivals by time of day, heartbeats, faults, truth."""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from device_gateway.messages import encode_heartbeat, encode_state
from parking_core.liveness import DEFAULT_HEARTBEAT_INTERVAL
from parking_core.topics import presence_topic, sensor_topic
from simulators.city import CityLayout

# Arrivals per free spot per hour by hour of day: quiet at night, peaks at 9:00 and 18:00.
HOURLY_PROFILE = (
    0.05,
    0.03,
    0.02,
    0.02,
    0.03,
    0.08,
    0.25,
    0.6,
    0.9,
    1.0,
    0.8,
    0.7,
    0.75,
    0.7,
    0.6,
    0.6,
    0.7,
    0.9,
    1.0,
    0.8,
    0.5,
    0.3,
    0.15,
    0.08,
)
MEAN_DWELL_S = 5400.0  # 90 minutes: typical of on-street parking in a Chinese city centre
MIN_DWELL_S = 60.0
SKEW = timedelta(minutes=10)  # a skewed clock is this far ahead: beyond the 5-minute tolerance


@dataclass(frozen=True, slots=True)
class Faults:
    """Which faults to inject, as rates per message (or counts for silence)."""

    duplicate: float = 0.0  # the same message published again later
    reorder: float = 0.0  # a message held back and published after newer ones
    garbage: float = 0.0  # an extra message that is not JSON or breaks the schema
    skew: float = 0.0  # an extra message with ts 10 minutes in the future
    silent_devices: int = 0  # sensors that stop sending half-way through


@dataclass(frozen=True, slots=True)
class Publication:
    """One MQTT publication the simulator wants made."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


@dataclass
class GroundTruth:
    """What the simulator really produced, to compare with what the backend says."""

    newest: dict[str, tuple[datetime, int, bool]] = field(default_factory=dict)  # spot → ts, seq
    readings: set[tuple[str, int, datetime]] = field(default_factory=set)  # accepted identities
    published: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # by expected reason
    silent: set[str] = field(default_factory=set)  # devices that went quiet

    def occupied(self) -> dict[str, bool]:
        """Return spot → occupied by the newest accepted reading."""
        return {spot: value[2] for spot, value in self.newest.items()}

    def record(self, spot_id: str, device_id: str, seq: int, ts: datetime, occupied: bool) -> None:
        """Remember one accepted reading."""
        self.readings.add((device_id, seq, ts))
        best = self.newest.get(spot_id)
        if best is None or (ts, seq) > best[:2]:
            self.newest[spot_id] = (ts, seq, occupied)


@dataclass
class _Sensor:
    spot_id: str
    device_id: str
    occupied: bool = False
    seq: int = 0
    since: datetime | None = None
    silent: bool = False


class CitySimulator:
    """Drives every sensor of a city on a virtual clock; call :meth:`advance` to get messages."""

    def __init__(  # noqa: PLR0913 -- keyword-only knobs with defaults
        self,
        city: CityLayout,
        prefix: str,
        start: datetime,
        *,
        seed: int = 0,
        faults: Faults | None = None,
        heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL.total_seconds(),
        rate_scale: float = 1.0,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.city = city
        self.prefix = prefix
        self.now = start
        self.rng = random.Random(seed)
        self.faults = faults or Faults()
        self.heartbeat = timedelta(seconds=heartbeat_interval_s)
        self.rate_scale = rate_scale  # multiplies arrival rates: busier cities in less time
        self.wall_clock = wall_clock  # skewed clocks must be ahead of the gateway's real clock
        self.truth = GroundTruth()
        self.sensors = [_Sensor(s.spot_id, s.device_id) for s in city.spots]
        self._held: list[Publication] = []
        self._queue: list[tuple[datetime, int, str]] = []  # (when, sensor index, what)
        for index, sensor in enumerate(self.sensors):
            sensor.occupied = self.rng.random() < 0.5
            heapq.heappush(self._queue, (start, index, "state"))
            offset = timedelta(seconds=self.rng.uniform(0, heartbeat_interval_s))
            heapq.heappush(self._queue, (start + offset, index, "heartbeat"))
        silent = self.rng.sample(range(len(self.sensors)), min(self.faults.silent_devices, len(self.sensors)))
        self._silence_at = {i: start + timedelta(seconds=self.rng.uniform(0, 1)) for i in silent}
        self._index = {sensor.spot_id: i for i, sensor in enumerate(self.sensors)}
        self._planned: dict[int, datetime] = {}  # sensor → when its one pending change is due

    @property
    def silent_device_ids(self) -> set[str]:
        """Return the sensors that will go quiet (known up front, to give them short windows)."""
        return {self.sensors[i].device_id for i in self._silence_at}

    def _next_change(self, sensor: _Sensor) -> timedelta:
        if sensor.occupied:
            return timedelta(seconds=max(MIN_DWELL_S, self.rng.expovariate(1 / MEAN_DWELL_S)))
        rate_per_s = HOURLY_PROFILE[self.now.hour] * self.rate_scale / 3600
        return timedelta(seconds=self.rng.expovariate(max(rate_per_s, 1e-9)))

    def _emit(self, index: int, kind: str, out: list[Publication]) -> None:
        sensor = self.sensors[index]
        sensor.seq += 1
        extra: dict[str, int | str | None] = {
            "battery_mv": 3600 - sensor.seq % 400,
            "rssi_dbm": -70 - index % 30,
        }
        ts = self.now
        if kind == "state":
            payload = encode_state(sensor.seq, ts, sensor.occupied, **extra)
        else:
            payload = encode_heartbeat(sensor.seq, ts, sensor.occupied, fw="sim-1.0", **extra)
        topic = sensor_topic(self.prefix, sensor.device_id, "state" if kind == "state" else "heartbeat")
        self.truth.record(sensor.spot_id, sensor.device_id, sensor.seq, ts, sensor.occupied)
        self._add(Publication(topic, payload), out)
        self._inject_faults(sensor, out)

    def _add(self, pub: Publication, out: list[Publication]) -> None:
        rng, faults = self.rng, self.faults
        if rng.random() < faults.reorder:
            self._held.append(pub)
        else:
            out.append(pub)
        if rng.random() < faults.duplicate:
            self._held.append(pub)  # a redelivery, later

    def _inject_faults(self, sensor: _Sensor, out: list[Publication]) -> None:
        rng, faults = self.rng, self.faults
        topic = sensor_topic(self.prefix, sensor.device_id, "state")
        if rng.random() < faults.garbage:
            if rng.random() < 0.5:
                out.append(Publication(topic, bytes(rng.getrandbits(8) | 0x80 for _ in range(12))))
                self.truth.rejected["not_json"] += 1
            else:
                out.append(Publication(topic, b'{"seq": "x", "occupied": true}'))
                self.truth.rejected["schema"] += 1
        if rng.random() < faults.skew:
            sensor.seq += 1
            ahead = max(self.now, self.wall_clock()) + SKEW
            out.append(Publication(topic, encode_state(sensor.seq, ahead, not sensor.occupied)))
            self.truth.rejected["clock_skew"] += 1

    def advance(self, seconds: float) -> list[Publication]:
        """Move the virtual clock forward and return the messages sensors sent meanwhile."""
        until = self.now + timedelta(seconds=seconds)
        out: list[Publication] = []
        while self._queue and self._queue[0][0] <= until:
            when, index, kind = heapq.heappop(self._queue)
            self.now = max(self.now, when)
            sensor = self.sensors[index]
            silence = self._silence_at.get(index)
            if silence is not None and when >= silence:
                sensor.silent = True
                self.truth.silent.add(sensor.device_id)
                continue
            if kind == "change":
                if self._planned.get(index) != when:
                    continue  # replaced when a car was placed here by hand (arrive)
                sensor.occupied = not sensor.occupied
                kind = "state"
            self._emit(index, kind, out)
            if kind == "state":
                self._planned[index] = when + self._next_change(sensor)
                heapq.heappush(self._queue, (self._planned[index], index, "change"))
            else:
                heapq.heappush(self._queue, (when + self.heartbeat, index, "heartbeat"))
        self.now = until
        if (self._held and self.rng.random() < 0.5) or len(self._held) > 100:
            out += self._held
            self._held = []
        self.truth.published += len(out)
        return out

    def arrive(self, spot_id: str, at: datetime, dwell: timedelta) -> list[Publication]:
        """A car (a driver who reserved the bay) parks on *spot_id* at *at* and stays *dwell*: its
        sensor reports occupied now, the change it had planned is void, and it leaves after *dwell*.
        """
        index = self._index[spot_id]
        sensor = self.sensors[index]
        if sensor.silent:
            return []
        when = max(self.now, at)
        saved, self.now = self.now, when
        sensor.occupied = True
        out: list[Publication] = []
        self._emit(index, "state", out)
        self.now = saved
        self._planned[index] = when + dwell  # the change it had planned is void
        heapq.heappush(self._queue, (when + dwell, index, "change"))
        self.truth.published += len(out)
        return out

    def drain(self) -> list[Publication]:
        """Return the held-back (reordered, duplicated) messages still to be published."""
        out, self._held = self._held, []
        self.truth.published += len(out)
        return out

    def presence(self, online: bool = True) -> list[Publication]:
        """Return a retained presence message for every sensor."""
        body = b'{"online":true}' if online else b'{"online":false}'
        return [
            Publication(presence_topic(self.prefix, s.device_id), body, retain=True) for s in self.sensors
        ]
