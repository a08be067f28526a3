"""The edge's GET /metrics, scraped from a running agent and parsed as Prometheus does."""

import asyncio
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from edge_agent import metrics
from edge_agent.agent import run_agent
from edge_agent.metrics import MetricsServerError
from edge_agent.settings import EdgeSettings, MetricsSettings
from simulators.mosquitto import Mosquitto
from simulators.ports import free_port
from tests.integration.edge_support import (
    Aggregator,
    LineRecognizer,
    MemorySource,
    edge_settings,
    running,
    wait_until,
)
from tests.integration.prometheus_support import Samples, parse, sample


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def with_metrics(settings: EdgeSettings, port: int) -> EdgeSettings:
    return settings.model_copy(update={"metrics": MetricsSettings(port=port)})


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == metrics.CONTENT_TYPE
    parsed = text_string_to_metric_families(response.text)
    families = {f.name for f in parsed if not f.name.endswith("_created")}  # the library's
    assert families == {metrics.PREFIX + spec.name for spec in metrics.SPECS}  # = the README
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return sample(samples, metrics.PREFIX + name, -1.0, **labels)


async def test_metrics_of_a_running_agent(mosquitto: Mosquitto, tmp_path: Path) -> None:
    assert edge_settings(mosquitto, tmp_path).metrics.port is None  # off by default
    port = free_port()
    settings = with_metrics(edge_settings(mosquitto, tmp_path), port)
    scan, clock, aggregator = MemorySource("scan1"), Clock(), Aggregator(mosquitto)
    aggregator.answering.clear()  # the first batch waits for its ack
    stop = asyncio.Event()
    agent = run_agent(settings, stop=stop, clock=clock, sources=[(scan, LineRecognizer())])
    async with (
        running(aggregator.run()),
        running(agent),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):

        async def up() -> bool:
            try:
                return value(await scrape(http), "mqtt_connected") == 1
            except httpx.TransportError:
                return False

        await wait_until(up, "the agent's /metrics, connected")
        scan.put("SKU-1 2")
        scan.put("SKU-2 1")

        async def stored() -> bool:
            return value(await scrape(http), "outbox_rows") == 2

        await wait_until(stored, "2 txns in the outbox")
        clock.now += timedelta(seconds=42)
        seen: list[Samples] = []

        async def aged() -> bool:  # the age is read from SQLite: once the rows are committed
            seen.insert(0, await scrape(http))
            return value(seen[0], "outbox_oldest_age_seconds") == 42

        await wait_until(aged, "the oldest txn 42 s old")
        waiting = seen[0]
        aggregator.answering.set()

        async def acked() -> bool:
            # The rows go when the ack is applied; the ack is counted just after that.
            samples = await scrape(http)
            return value(samples, "outbox_rows") == 0 and value(samples, "acks_total") >= 1

        await wait_until(acked, "the outbox emptied by acks")
        done = await scrape(http)
        other = await http.get("/")
        stop.set()

    assert value(waiting, "outbox_oldest_age_seconds") == 42
    assert value(waiting, "readings_total", device="scan1") == 2
    assert value(waiting, "device_state", device="scan1", kind="memory", state="up") == 1
    assert value(waiting, "device_state", device="scan1", kind="memory", state="down") == 0
    assert value(done, "outbox_oldest_age_seconds") == 0
    assert value(done, "txns_sent_total") >= 2
    assert value(done, "acks_total") >= 1
    assert value(done, "publish_latency_seconds_count") >= 1
    assert value(done, "journal_readings", device="scan1") == 0
    assert value(done, "reconnects_total") == 0
    assert other.status_code == 404


async def test_a_port_in_use_is_a_clear_error(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = with_metrics(edge_settings(mosquitto, tmp_path), port)
        with pytest.raises(MetricsServerError, match=f"127.0.0.1:{port}"):
            await asyncio.wait_for(run_agent(settings, sources=[]), 20)
