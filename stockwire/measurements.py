"""The catalog: every time-series measurement Stockwire writes, with its tags and fields.

Edge measurements travel as telemetry `Sample`s (stockwire.telemetry). The aggregator writes
them as received: the sample's `at` is the point's time, and it adds the tags `site`, `edge`
(from the topic) and `device` (from the sample). Aggregator measurements are written by the
aggregator itself, tagged `site`. The sink writes nothing outside this catalog, the telemetry
contract refuses samples outside it, and the Grafana dashboards' test checks every query
against it. Renaming anything here breaks dashboards: add, don't rename.

Fields are numbers (floats on the wire); flags are 1.0 / 0.0. "In the interval" means since the
previous sample of the same series (the edge's telemetry interval); "total" means since the
program started (a counter: it drops to 0 on a restart).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Origin(StrEnum):
    EDGE = "edge"
    AGGREGATOR = "aggregator"


# Tags every point of a measurement carries, by where it comes from.
COMMON_TAGS: Mapping[Origin, tuple[str, ...]] = {
    Origin.EDGE: ("site", "edge", "device"),
    Origin.AGGREGATOR: ("site",),
}


@dataclass(frozen=True, slots=True)
class Measurement:
    name: str
    origin: Origin
    doc: str
    fields: Mapping[str, str]  # field -> what it is, with its unit
    tags: Mapping[str, str] = field(default_factory=dict)  # besides COMMON_TAGS[origin]

    @property
    def all_tags(self) -> tuple[str, ...]:
        return (*COMMON_TAGS[self.origin], *self.tags)


_E = Origin.EDGE
_A = Origin.AGGREGATOR

CATALOG: tuple[Measurement, ...] = (
    # ---- from the edges (telemetry samples) ----
    Measurement(
        "agent",
        _E,
        "the edge agent's own health; `device` is the edge id",
        {
            "cpu_percent": "CPU used by the agent process in the interval, % of one core",
            "rss_bytes": "resident memory of the agent process, bytes",
            "outbox_rows": "transactions stored and not acked yet",
            "outbox_oldest_age_s": "age of the oldest unacked transaction, s (0 when none)",
            "publish_latency_ms_mean": "batch published -> its ack, mean in the interval, ms",
            "publish_latency_ms_max": "batch published -> its ack, max in the interval, ms",
            "connected": "1 while connected to the broker",
            "reconnects_total": "broker connections made since start, minus the first",
            "txns_sent_total": "transactions published since start (re-sends included)",
            "telemetry_thinned_total": "telemetry samples dropped by thinning since start",
        },
    ),
    Measurement(
        "device_health",
        _E,
        "one device (reader, shelf bus, scanner) as its source sees it",
        {
            "up": "1 when the device state is up or degraded",
            "degraded": "1 when the device answers with errors (some lanes, some polls)",
            "readings": "readings handed to the journal in the interval",
            "errors_total": "read errors or failed connects since start",
            "latency_ms": "poll round trip (shelves) or report interval (readers), mean, ms",
        },
        {"kind": "device kind from its config: rfid, shelf, scanner"},
    ),
    Measurement(
        "lane_weight",
        _E,
        "a shelf lane's weight, downsampled (the last sample of each downsampling interval)",
        {
            "grams": "the lane's load, g",
            "stable": "1 when the transmitters' STABLE bit (or none is read) says stable",
        },
        {"lane": "lane id from the device config"},
    ),
    Measurement(
        "rfid_antenna",
        _E,
        "one antenna of an RFID reader over the interval",
        {
            "reads": "tag reads in the interval (seen counts folded in)",
            "reads_per_s": "reads / interval length",
            "tags": "distinct EPCs in the interval",
            "rssi_dbm_mean": "mean RSSI of the reads, dBm",
            "rssi_dbm_max": "strongest read, dBm",
        },
        {"antenna": "antenna port number"},
    ),
    Measurement(
        "scans",
        _E,
        "a barcode scanner over the interval",
        {
            "scans": "lines read in the interval",
            "unreadable": "lines kept as unreadable in the interval",
        },
    ),
    # ---- from the aggregator ----
    Measurement(
        "stock_level",
        _A,
        "an item's balance at a location after each committed movement that changed it",
        {"qty": "on hand in base units (summed over lots)"},
        {"item": "sku, or the GTIN when the item has no sku", "location": "location code"},
    ),
    Measurement(
        "movements",
        _A,
        "movements committed, per commit group, edge, kind and status",
        {"count": "movements", "units": "sum of their quantities"},
        {
            "edge": "edge that sent them (or `api` for approvals and reversals)",
            "kind": "transaction kind",
            "status": "posted, or pending (waiting in review)",
        },
    ),
    Measurement(
        "posting_delay",
        _A,
        "event time -> commit time of the transactions of one commit group and edge",
        {
            "count": "transactions",
            "p50_s": "median delay, s",
            "p95_s": "95th percentile delay, s",
            "max_s": "largest delay, s",
        },
        {"edge": "edge that sent them"},
    ),
    Measurement(
        "ingest",
        _A,
        "batches received per commit group and edge",
        {
            "batches": "TxnBatches",
            "txns": "transactions in them (duplicates included)",
            "duplicates": "transactions already posted before",
            "lag_s": "largest (received - batch sent_at), s: how far ingest runs behind",
        },
        {"edge": "edge that sent them"},
    ),
    Measurement(
        "edge_status",
        _A,
        "each status message of an edge (births, heartbeats, last wills)",
        {
            "online": "1 online, 0 offline",
            "outbox_rows": "the edge's unacked transactions (absent in a last will)",
            "outbox_full": "1 when its outbox is full",
            "devices_down": "devices reported down",
        },
        {"edge": "edge id"},
    ),
    Measurement(
        "dead_letters",
        _A,
        "one point per message kept as a dead letter",
        {"count": "always 1"},
        {"edge": "edge level of the topic", "channel": "txn, status or telemetry"},
    ),
    Measurement(
        "alerts",
        _A,
        "one point per alert published",
        {"count": "always 1"},
        {"kind": "alert kind", "severity": "info, warning or critical"},
    ),
)

BY_NAME: Mapping[str, Measurement] = {m.name: m for m in CATALOG}


def edge_measurement(name: str) -> Measurement:
    """The edge measurement called `name`; ValueError naming the known ones otherwise."""
    found = BY_NAME.get(name)
    if found is None or found.origin is not Origin.EDGE:
        known = ", ".join(m.name for m in CATALOG if m.origin is Origin.EDGE)
        raise ValueError(f"unknown telemetry measurement {name!r} (known: {known})")
    return found
