"""Prometheus metrics of one aggregator (GET /metrics): the one module here that imports
prometheus_client.

Each aggregator has its own CollectorRegistry (several run in one test process; nothing goes
to the library's global REGISTRY). Counters and gauges are read at scrape time from the stats
ingest and the writer keep anyway; the histograms are observed where the thing is timed or
counted: the writer thread (one database transaction) and ingest (groups, batches, acks).
"""

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aggregator.telemetry.sink import SinkStats
from stockwire.metric_spec import MetricSpec

if TYPE_CHECKING:
    from aggregator.ingest import Ingest
    from aggregator.writer import Writer

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # the Prometheus text format, version 0.0.4
PREFIX = "stockwire_aggregator_"
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Spec(MetricSpec):
    prefix = PREFIX


MESSAGES = Spec(
    "messages",
    "counter",
    "MQTT messages handled, by channel (txn, status, telemetry, other) and outcome: posted, "
    "duplicate (every txn of the batch was posted before), dead_letter, refused (over the "
    "edge's rate limit), recorded (a status)",
    ("channel", "outcome"),
)
TXNS = Spec(
    "txns",
    "counter",
    "transactions in committed batches, by ack status (accepted, duplicate, rejected)",
    ("status",),
)
DEAD_LETTERS = Spec("dead_letters", "counter", "messages kept as dead letters")
RECONNECTS = Spec("reconnects", "counter", "MQTT connections lost or failed since start")
WRITE_FAILURES = Spec("write_failures", "counter", "database writes that failed (and retried)")
POST_FAILURES = Spec("post_failures", "counter", "batch postings that failed (and retried)")
READ_PAUSES = Spec(
    "read_pauses", "counter", "times ingest stopped reading the broker (incoming_messages_max)"
)
CONNECTED = Spec("mqtt_connected", "gauge", "1 while connected and subscribed to the broker")
INCOMING = Spec("incoming_messages", "gauge", "messages received and waiting for ingest")
WRITER_QUEUE = Spec(
    "writer_queue", "gauge", "database transactions queued or running on the writer thread"
)
PUBLISHING = Spec("publishes_pending", "gauge", "acks, ledger events and alerts not PUBACKed")
GROUP_MESSAGES = Spec(
    "group_messages", "histogram", "batches committed per group commit (one DB transaction)"
)
BATCH_TXNS = Spec("batch_txns", "histogram", "transactions per committed batch")
COMMIT_SECONDS = Spec(
    "commit_seconds", "histogram", "one database transaction on the writer thread, s"
)
ACK_SECONDS = Spec(
    "ack_latency_seconds", "histogram", "a txn message received -> its ack published, s"
)
TELEMETRY_BUFFERED = Spec(
    "telemetry_points_buffered", "gauge", "points waiting for the time-series server (sink off: 0)"
)
TELEMETRY_WRITTEN = Spec("telemetry_points_written", "counter", "points the server accepted")
TELEMETRY_DROPPED = Spec(
    "telemetry_points_dropped",
    "counter",
    "points dropped, by reason: thinned_edge, thinned_aggregator (the buffer was full), "
    "rejected (the server refused the batch, 4xx)",
    ("reason",),
)
TELEMETRY_FAILURES = Spec(
    "telemetry_write_failures", "counter", "writes to the time-series server that failed (retried)"
)
SPECS = (
    MESSAGES,
    TXNS,
    DEAD_LETTERS,
    RECONNECTS,
    WRITE_FAILURES,
    POST_FAILURES,
    READ_PAUSES,
    CONNECTED,
    INCOMING,
    WRITER_QUEUE,
    PUBLISHING,
    GROUP_MESSAGES,
    BATCH_TXNS,
    COMMIT_SECONDS,
    ACK_SECONDS,
    TELEMETRY_BUFFERED,
    TELEMETRY_WRITTEN,
    TELEMETRY_DROPPED,
    TELEMETRY_FAILURES,
)


def _histogram(spec: Spec, registry: CollectorRegistry, buckets: tuple[float, ...]) -> Histogram:
    return Histogram(PREFIX + spec.name, spec.doc, buckets=buckets, registry=registry)


class AggregatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.group_messages = _histogram(GROUP_MESSAGES, self.registry, SIZE_BUCKETS)
        self.batch_txns = _histogram(BATCH_TXNS, self.registry, SIZE_BUCKETS)
        self.commit_seconds = _histogram(COMMIT_SECONDS, self.registry, SECONDS_BUCKETS)
        self.ack_seconds = _histogram(ACK_SECONDS, self.registry, SECONDS_BUCKETS)

    def watch(self, ingest: "Ingest", writer: "Writer") -> None:
        """Expose what ingest and the writer count, read at each scrape."""
        self.registry.register(_Stats(ingest, writer))

    def committed(self, txns_per_batch: Iterable[int]) -> None:
        """One group commit of these batches."""
        sizes = list(txns_per_batch)
        self.group_messages.observe(len(sizes))
        for size in sizes:
            self.batch_txns.observe(size)

    def render(self) -> bytes:
        """The Prometheus text format (CONTENT_TYPE)."""
        return generate_latest(self.registry)


class _Stats(Collector):
    def __init__(self, ingest: "Ingest", writer: "Writer") -> None:
        self.ingest = ingest
        self.writer = writer

    def collect(self) -> Iterator[Metric]:
        stats = self.ingest.stats
        messages = CounterMetricFamily(PREFIX + MESSAGES.name, MESSAGES.doc, labels=MESSAGES.labels)
        for (channel, outcome), count in sorted(stats.messages.items()):
            messages.add_metric([channel, outcome], count)
        yield messages
        txns = CounterMetricFamily(PREFIX + TXNS.name, TXNS.doc, labels=TXNS.labels)
        for status, count in sorted(stats.txn_statuses.items()):
            txns.add_metric([status], count)
        yield txns
        for spec, value in (
            (DEAD_LETTERS, stats.dead_letters),
            (RECONNECTS, stats.reconnects),
            (WRITE_FAILURES, stats.write_failures),
            (POST_FAILURES, stats.post_failures),
            (READ_PAUSES, self.ingest.flow.pauses),
        ):
            yield CounterMetricFamily(PREFIX + spec.name, spec.doc, value=value)
        for spec, value in (
            (CONNECTED, int(stats.connected)),
            (INCOMING, self.ingest.flow.waiting()),
            (WRITER_QUEUE, self.writer.queued),
            (PUBLISHING, self.ingest.publishing()),
        ):
            yield GaugeMetricFamily(PREFIX + spec.name, spec.doc, value=value)
        yield from self._telemetry()

    def _telemetry(self) -> Iterator[Metric]:
        sink = self.ingest.sink
        stats = sink.stats if sink is not None else SinkStats()
        buffered = sink.buffered if sink is not None else 0
        yield GaugeMetricFamily(
            PREFIX + TELEMETRY_BUFFERED.name, TELEMETRY_BUFFERED.doc, value=buffered
        )
        for spec, value in (
            (TELEMETRY_WRITTEN, stats.written),
            (TELEMETRY_FAILURES, stats.write_failures),
        ):
            yield CounterMetricFamily(PREFIX + spec.name, spec.doc, value=value)
        dropped = CounterMetricFamily(
            PREFIX + TELEMETRY_DROPPED.name, TELEMETRY_DROPPED.doc, labels=TELEMETRY_DROPPED.labels
        )
        dropped.add_metric(["thinned_edge"], stats.thinned_edge)
        dropped.add_metric(["thinned_aggregator"], stats.thinned_aggregator)
        dropped.add_metric(["rejected"], stats.rejected)
        yield dropped
