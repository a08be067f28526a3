"""Prometheus metrics of one edge agent on a small HTTP endpoint (off unless [metrics] port is
set): the one module of the edge that imports prometheus_client.

The endpoint is a plain asyncio server on the agent's own event loop, started and stopped with
the agent: scrapes read the publisher's, outbox's and journal's counters on the loop that
changes them (no thread, nothing to leak). Each agent has its own CollectorRegistry. Only
`GET /metrics` is answered; one request per connection, bounded in size, time and number.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edge_agent.journal import Journal
from edge_agent.outbox import Outbox
from edge_agent.publisher import Publisher
from edge_agent.recognizers.base import Clock
from stockwire.errors import ConfigError
from stockwire.metric_spec import MetricSpec
from stockwire.status import DeviceState, DeviceStatus

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
PREFIX = "stockwire_edge_"
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
REQUEST_BYTES_MAX = 8 * 1024  # request line and headers
REQUEST_TIMEOUT_S = 10.0
CONNECTIONS_MAX = 8  # at once; more are closed unanswered


class MetricsServerError(ConfigError):
    """The metrics endpoint cannot listen where [metrics] says."""


class Spec(MetricSpec):
    prefix = PREFIX


OUTBOX_ROWS = Spec("outbox_rows", "gauge", "transactions stored and not acked yet")
OUTBOX_ROWS_MAX = Spec("outbox_rows_max", "gauge", "the outbox's bound ([outbox] rows_max)")
OUTBOX_AGE = Spec(
    "outbox_oldest_age_seconds", "gauge", "age of the oldest unacked transaction, s (0: none)"
)
OUTBOX_FULL = Spec("outbox_full", "gauge", "1 while new transactions wait for outbox space")
CONNECTED = Spec("mqtt_connected", "gauge", "1 while connected to the broker")
RECONNECTS = Spec("reconnects", "counter", "broker connections made since start, minus the first")
CONNECT_FAILURES = Spec("connect_failures", "counter", "broker connection attempts that failed")
BATCHES_SENT = Spec("batches_sent", "counter", "txn batches published (PUBACKed)")
TXNS_SENT = Spec("txns_sent", "counter", "transactions published, re-sends included")
ACKS = Spec("acks", "counter", "acks received from the aggregator")
MALFORMED_ACKS = Spec("malformed_acks", "counter", "acks dropped as malformed or for another edge")
ACK_TIMEOUTS = Spec("ack_timeouts", "counter", "batches not acked within ack_timeout_s (re-sent)")
READINGS = Spec("readings", "counter", "readings journaled since start", ("device",))
JOURNAL = Spec(
    "journal_readings",
    "gauge",
    "readings journaled and not consumed by the recognizer yet",
    ("device",),
)
DEVICE_STATE = Spec(
    "device_state",
    "gauge",
    "1 for the device's current state (up, degraded, down, unknown)",
    ("device", "kind", "state"),
)
PUBLISH_SECONDS = Spec(
    "publish_latency_seconds", "histogram", "a txn batch published -> its last txn acked, s"
)
SPECS = (
    OUTBOX_ROWS,
    OUTBOX_ROWS_MAX,
    OUTBOX_AGE,
    OUTBOX_FULL,
    CONNECTED,
    RECONNECTS,
    CONNECT_FAILURES,
    BATCHES_SENT,
    TXNS_SENT,
    ACKS,
    MALFORMED_ACKS,
    ACK_TIMEOUTS,
    READINGS,
    JOURNAL,
    DEVICE_STATE,
    PUBLISH_SECONDS,
)


@dataclass(frozen=True, slots=True)
class Watched:
    """What the agent's collector reads at each scrape."""

    outbox: Outbox
    journal: Journal
    publisher: Publisher
    devices: Callable[[], Mapping[str, DeviceStatus]]
    clock: Clock


class EdgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.publish_seconds = Histogram(
            PREFIX + PUBLISH_SECONDS.name,
            PUBLISH_SECONDS.doc,
            buckets=SECONDS_BUCKETS,
            registry=self.registry,
        )
        self._stats: _Stats | None = None

    def watch(self, watched: Watched) -> None:
        assert self._stats is None, "one agent per EdgeMetrics"
        self._stats = _Stats(watched)
        self.registry.register(self._stats)

    async def render(self) -> bytes:
        """The Prometheus text format (CONTENT_TYPE), with the outbox's oldest row read now."""
        if self._stats is not None:
            self._stats.oldest = await self._stats.watched.outbox.oldest_created_at()
        return generate_latest(self.registry)


class _Stats(Collector):
    def __init__(self, watched: Watched) -> None:
        self.watched = watched
        self.oldest: datetime | None = None  # read by EdgeMetrics.render before collect

    def collect(self) -> Iterator[Metric]:
        w, stats = self.watched, self.watched.publisher.stats
        age_s = 0.0 if self.oldest is None else (w.clock() - self.oldest).total_seconds()
        for spec, value in (
            (OUTBOX_ROWS, w.outbox.count()),
            (OUTBOX_ROWS_MAX, w.outbox.rows_max),
            (OUTBOX_AGE, max(0.0, age_s)),
            (OUTBOX_FULL, int(w.outbox.full)),
            (CONNECTED, int(w.publisher.connected)),
        ):
            yield GaugeMetricFamily(PREFIX + spec.name, spec.doc, value=value)
        for spec, value in (
            (RECONNECTS, max(0, stats.connects - 1)),
            (CONNECT_FAILURES, stats.connect_failures),
            (BATCHES_SENT, stats.batches_sent),
            (TXNS_SENT, stats.txns_sent),
            (ACKS, stats.acks),
            (MALFORMED_ACKS, stats.malformed_acks),
            (ACK_TIMEOUTS, stats.ack_timeouts),
        ):
            yield CounterMetricFamily(PREFIX + spec.name, spec.doc, value=value)
        yield from self._devices()

    def _devices(self) -> Iterator[Metric]:
        journal, devices = self.watched.journal, self.watched.devices()
        readings = CounterMetricFamily(PREFIX + READINGS.name, READINGS.doc, labels=READINGS.labels)
        waiting = GaugeMetricFamily(PREFIX + JOURNAL.name, JOURNAL.doc, labels=JOURNAL.labels)
        states = GaugeMetricFamily(
            PREFIX + DEVICE_STATE.name, DEVICE_STATE.doc, labels=DEVICE_STATE.labels
        )
        for device, status in sorted(devices.items()):
            readings.add_metric([device], journal.readings(device))
            waiting.add_metric([device], journal.waiting(device))
            for state in DeviceState:
                states.add_metric([device, status.kind, state.value], int(state is status.state))
        yield from (readings, waiting, states)


@contextlib.asynccontextmanager
async def serving(metrics: EdgeMetrics, host: str, port: int | None) -> AsyncIterator[str | None]:
    """Serve GET /metrics on host:port for the block (nothing when port is None); yields the
    base URL. A port already in use is a MetricsServerError naming host:port."""
    if port is None:
        yield None
        return
    endpoint = _Endpoint(metrics)
    try:
        server = await asyncio.start_server(endpoint.handle, host, port, limit=REQUEST_BYTES_MAX)
    except OSError as e:
        raise MetricsServerError(f"metrics: cannot listen on {host}:{port}: {e}") from None
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    url = f"http://{bound_host}:{bound_port}"
    log.info("metrics at %s/metrics", url)
    try:
        yield url
    finally:
        server.close()
        await server.wait_closed()


class _Endpoint:
    def __init__(self, metrics: EdgeMetrics) -> None:
        self.metrics = metrics
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            if self.connections <= CONNECTIONS_MAX:
                async with asyncio.timeout(REQUEST_TIMEOUT_S):
                    await self._answer(reader, writer)
        except (TimeoutError, ValueError, ConnectionError, asyncio.LimitOverrunError):
            pass  # a client that sends nothing usable gets nothing
        finally:
            self.connections -= 1
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")  # LimitOverrunError is a ValueError
        method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if target.split("?", 1)[0] != "/metrics":
            status, body, kind = "404 Not Found", b"only /metrics is here\n", "text/plain"
        elif method not in ("GET", "HEAD"):
            status, body, kind = "405 Method Not Allowed", b"GET /metrics\n", "text/plain"
        else:
            status, body, kind = "200 OK", await self.metrics.render(), CONTENT_TYPE
        head_out = (
            f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        writer.write(head_out.encode("latin-1") + (b"" if method == "HEAD" else body))
        await writer.drain()
