"""Edge telemetry through a real mosquitto: what a subscriber receives, with transactions
flowing alongside, and a broker outage (the sample queue stays bounded and is thinned)."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from pathlib import Path

import aiomqtt
import pytest

from edge_agent.agent import Device, run_agent
from edge_agent.readings import Journaled, Reading, TagRead, WeightSample
from edge_agent.recognizers.base import Output, State
from edge_agent.settings import EdgeSettings
from edge_agent.sources.base import SourceHealth
from simulators.mosquitto import Mosquitto
from stockwire.status import DeviceState, DeviceStatus, EdgeState, EdgeStatus
from stockwire.telemetry import Sample, TelemetryBatch
from stockwire.topics import EdgeChannel, edge_filter, edge_topic
from tests.integration.edge_support import (
    EDGE,
    SITE,
    WAIT_S,
    Aggregator,
    LineRecognizer,
    MemorySource,
    edge_settings,
    now,
    running,
    wait_until,
)

LANES = 50
SUBSCRIBER = "test-telemetry"


class Scripted:
    """A shelf or reader in memory: batch `make(i)` every `period_s`; a fixed health."""

    def __init__(
        self, device: str, kind: str, make: Callable[[int], list[Journaled]], period_s: float
    ) -> None:
        self.device = device
        self.kind = kind
        self._make = make
        self._period_s = period_s
        self.polls = 0

    async def batches(self) -> AsyncIterator[Sequence[Journaled]]:
        while True:
            self.polls += 1
            yield self._make(self.polls)
            await asyncio.sleep(self._period_s)

    def status(self) -> DeviceStatus:
        return DeviceStatus(kind=self.kind, state=DeviceState.DEGRADED)

    def health(self) -> SourceHealth:
        return SourceHealth(errors_total=3, latency_ms_sum=25.0 * self.polls, latencies=self.polls)


class Ignore:
    """A recognizer that makes nothing (the telemetry is what these tests look at)."""

    def feed(self, reading: Reading) -> Sequence[Output]:
        return []

    def tick(self) -> Sequence[Output]:
        return []

    def snapshot(self) -> State:
        return {}

    def restore(self, state: State) -> None:
        pass


def shelf_batch(i: int) -> list[Journaled]:
    at = now()
    return [WeightSample("shelf1", f"L{n}", 100.0 * n + i, at, i % 7 != 0) for n in range(LANES)]


def reader_batch(i: int) -> list[Journaled]:
    at = now()
    return [TagRead("door1", f"E{i % 5}", 1 + i % 2, -50.0 - i % 10, at) for _ in range(3)]


def with_telemetry(settings: EdgeSettings, **telemetry: object) -> EdgeSettings:
    section = settings.telemetry.model_copy(update=telemetry)
    return settings.model_copy(update={"telemetry": section})


class Subscriber:
    """Collects every TelemetryBatch on the site's telemetry topic (validating each)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.broker = broker
        self.batches: list[TelemetryBatch] = []
        self.topics: set[str] = set()

    @property
    def samples(self) -> list[Sample]:
        return [s for b in self.batches for s in b.samples]

    def of(self, measurement: str) -> list[Sample]:
        return [s for s in self.samples if s.measurement == measurement]

    def client(self) -> aiomqtt.Client:
        host, port = self.broker.host, self.broker.port
        return aiomqtt.Client(host, port, identifier=SUBSCRIBER, clean_session=False)

    async def subscribe(self) -> None:
        async with self.client() as client:
            await client.subscribe(edge_filter(EdgeChannel.TELEMETRY, SITE), qos=1)

    async def run(self, subscribed: asyncio.Event) -> None:
        async with self.client() as client:
            await client.subscribe(edge_filter(EdgeChannel.TELEMETRY, SITE), qos=1)
            subscribed.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                self.topics.add(message.topic.value)
                self.batches.append(TelemetryBatch.model_validate_json(message.payload))


async def test_telemetry_is_published_while_transactions_flow(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = with_telemetry(
        edge_settings(mosquitto, tmp_path),
        interval_s=0.1,
        lane_weight_interval_s=0.1,
        batch_samples_max=50,
    )
    scan = MemorySource("scan1")
    shelf = Scripted("shelf1", "shelf", shelf_batch, 0.02)
    reader = Scripted("door1", "rfid", reader_batch, 0.02)
    devices: list[Device] = [(scan, LineRecognizer()), (shelf, Ignore()), (reader, Ignore())]
    subscriber, subscribed = Subscriber(mosquitto), asyncio.Event()
    aggregator = Aggregator(mosquitto)
    stop = asyncio.Event()
    async with running(subscriber.run(subscribed)), running(aggregator.run()):
        await subscribed.wait()
        agent = asyncio.create_task(run_agent(settings, stop=stop, sources=devices))
        for i in range(300):  # over ~1.5 s, with ~500 telemetry samples/s alongside
            scan.put(f"S{i}")
            if i % 10 == 0:
                await asyncio.sleep(0.05)
        await wait_until(lambda: len(aggregator.accepted) == 300, "every transaction acked")
        await wait_until(
            lambda: (
                any(s.fields.get("txns_sent_total") == 300 for s in subscriber.of("agent"))
                and any(s.fields["scans"] > 0 for s in subscriber.of("scans"))
            ),
            "telemetry after the transactions",
        )
        stop.set()
        await asyncio.wait_for(agent, 30)

    assert subscriber.topics == {edge_topic(SITE, EDGE, EdgeChannel.TELEMETRY)}
    assert {b.edge for b in subscriber.batches} == {EDGE}
    assert max(len(b.samples) for b in subscriber.batches) <= 50
    assert sum(s.fields["scans"] for s in subscriber.of("scans")) == 300
    assert {s.device for s in subscriber.of("scans")} == {"scan1"}

    agent_samples = subscriber.of("agent")
    assert {s.device for s in agent_samples} == {EDGE}
    assert agent_samples[-1].fields["connected"] == 1.0
    assert agent_samples[-1].fields["rss_bytes"] > 1_000_000
    assert any("publish_latency_ms_max" in s.fields for s in agent_samples)
    assert [s.at for s in agent_samples] == sorted(s.at for s in agent_samples)

    health = {s.device: s for s in subscriber.of("device_health")}
    assert health["shelf1"].tags == {"kind": "shelf"}
    assert health["shelf1"].fields["errors_total"] == 3.0
    assert health["shelf1"].fields["latency_ms"] == 25.0
    assert (health["shelf1"].fields["up"], health["shelf1"].fields["degraded"]) == (1.0, 1.0)
    assert health["door1"].tags == {"kind": "rfid"}
    assert "errors_total" not in health["scan1"].fields  # MemorySource knows no health
    assert (
        sum(s.fields["readings"] for s in subscriber.of("device_health") if s.device == "scan1")
        == 300
    )

    lanes = subscriber.of("lane_weight")
    assert {s.tags["lane"] for s in lanes} == {f"L{n}" for n in range(LANES)}
    per_lane: dict[str, list[datetime]] = {}
    for s in lanes:
        per_lane.setdefault(s.tags["lane"], []).append(s.at)
    polls = shelf.polls
    assert all(len(times) < polls for times in per_lane.values())  # downsampled
    antennas = subscriber.of("rfid_antenna")
    assert {s.tags["antenna"] for s in antennas} == {"1", "2"}
    assert sum(s.fields["reads"] for s in antennas) > 0
    assert all(-60.0 < s.fields["rssi_dbm_max"] <= -50.0 for s in antennas if s.fields["reads"])


async def test_while_the_broker_is_down_telemetry_is_bounded_and_thinned(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    queue_max = 40
    settings = with_telemetry(
        edge_settings(mosquitto, tmp_path),
        interval_s=0.1,
        lane_weight_interval_s=0.1,
        queue_samples_max=queue_max,
    )
    # A persistent session of the test's subscriber gets the QoS 0 samples sent while it
    # reconnects after the restart (so none is lost to the test itself).
    mosquitto.stop()
    mosquitto.conf.write_text(mosquitto.conf.read_text() + "queue_qos0_messages true\n")
    mosquitto.start()
    subscriber = Subscriber(mosquitto)
    await subscriber.subscribe()
    mosquitto.stop()

    scan = MemorySource("scan1")
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="edge_agent.telemetry_queue"):
        agent = asyncio.create_task(
            run_agent(settings, stop=stop, sources=[(scan, LineRecognizer())])
        )
        await wait_until(
            lambda: any("telemetry queue full" in r.getMessage() for r in caplog.records),
            "the telemetry queue to fill while the broker is down",
        )
        scan.put("S1 1")  # a transaction made during the outage
        back_at = now()
        mosquitto.start()
        subscribed = asyncio.Event()
        async with running(subscriber.run(subscribed)), running(Aggregator(mosquitto).run()):
            await wait_until(
                lambda: any(
                    s.at > back_at and s.fields.get("txns_sent_total", 0) >= 1
                    for s in subscriber.of("agent")
                ),
                "telemetry after the reconnect",
            )
            stop.set()
            await asyncio.wait_for(agent, 30)

    backlog = [s for s in subscriber.samples if s.at < back_at]
    assert 0 < len(backlog) <= queue_max
    after = [s for s in subscriber.of("agent") if s.at > back_at]
    assert after[-1].fields["telemetry_thinned_total"] > 0
    assert after[-1].fields["reconnects_total"] == 0  # the first connection came after the outage
    offline = [s for s in backlog if s.measurement == "agent"]
    assert {s.fields["connected"] for s in offline} == {0.0}
    assert [s.at for s in offline] == sorted(s.at for s in offline)  # thinning keeps order
    # Both series (agent, device_health of scan1) survive thinning, at reduced resolution.
    assert {s.measurement for s in backlog} == {"agent", "device_health"}


async def test_disabled_telemetry_sends_nothing(mosquitto: Mosquitto, tmp_path: Path) -> None:
    settings = with_telemetry(
        edge_settings(mosquitto, tmp_path, status_interval_s=0.1),
        enabled=False,
        interval_s=0.1,
        lane_weight_interval_s=0.1,
    )
    shelf = Scripted("shelf1", "shelf", shelf_batch, 0.02)
    statuses: list[EdgeStatus] = []
    telemetry: list[bytes] = []
    stop = asyncio.Event()
    async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
        await client.subscribe(edge_topic(SITE, EDGE, EdgeChannel.TELEMETRY), qos=1)
        await client.subscribe(edge_topic(SITE, EDGE, EdgeChannel.STATUS), qos=1)
        agent = asyncio.create_task(run_agent(settings, stop=stop, sources=[(shelf, Ignore())]))
        async with asyncio.timeout(WAIT_S):
            async for message in client.messages:  # heartbeats every 0.1 s, as telemetry would
                assert isinstance(message.payload, bytes)
                if message.topic.matches(edge_topic(SITE, EDGE, EdgeChannel.TELEMETRY)):
                    telemetry.append(message.payload)
                    continue
                statuses.append(EdgeStatus.model_validate_json(message.payload))
                if len(statuses) == 5:
                    stop.set()
                if statuses[-1].state is EdgeState.OFFLINE:
                    break
        await asyncio.wait_for(agent, 30)
    assert shelf.polls > 5  # readings flowed all along
    assert telemetry == []
