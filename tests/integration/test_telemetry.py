"""The telemetry sink against a real server: Debian's VictoriaMetrics speaks the InfluxDB v2
write API. Points are read back through its export API and compared exactly (values, and
timestamps to the millisecond, which is what it stores)."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.ledger import Ledger
from aggregator.roles import Role
from aggregator.schema import dead_letters
from aggregator.settings import AggregatorSettings, RateLimitSettings, TelemetrySinkSettings
from aggregator.telemetry.influx import InfluxWriter, epoch_ns
from aggregator.telemetry.points import Point, from_sample, point
from aggregator.telemetry.sink import TelemetrySink
from aggregator.writer import Writer
from simulators.mosquitto import Mosquitto
from simulators.ports import free_port
from simulators.victoria_metrics import Series, VictoriaMetrics
from stockwire.ack import AckStatus
from stockwire.events import Alert, AlertKind
from stockwire.measurements import CATALOG
from stockwire.telemetry import Sample, TelemetryBatch
from stockwire.topics import EdgeChannel, SiteChannel, edge_topic, site_topic
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    EDGE,
    SITE,
    api_client,
    api_key,
    batch,
    edge_client,
    ingesting,
    running_aggregator,
    txn,
    wait_ack,
    wait_for,
)
from tests.integration.prometheus_support import parse, sample

agg_settings = support.agg_settings
db_url = support.db_url
engine = support.engine
writer = support.writer

TXNS = edge_topic(SITE, EDGE, EdgeChannel.TXN)
TELEMETRY = edge_topic(SITE, EDGE, EdgeChannel.TELEMETRY)
ACKS = edge_topic(SITE, EDGE, EdgeChannel.ACK)
ALERTS = site_topic(SITE, SiteChannel.ALERTS)
AT = datetime(2026, 1, 2, 3, 4, 5, 678912, tzinfo=UTC)  # microseconds: VM keeps ms


def ms(at: datetime) -> int:
    return epoch_ns(at) // 1_000_000


def quick(url: str, **more: Any) -> TelemetrySinkSettings:
    """Short intervals so that tests wait little (never asserted on)."""
    values = {
        "url": url,
        "flush_interval_s": 0.05,
        "retry_min_s": 0.05,
        "retry_max_s": 0.2,
        "timeout_s": 2.0,
        **more,
    }
    return TelemetrySinkSettings.model_validate(values)


def sink_for(settings: TelemetrySinkSettings) -> TelemetrySink:
    return TelemetrySink(settings, InfluxWriter(settings))


@contextlib.asynccontextmanager
async def running(sink: TelemetrySink) -> AsyncIterator[TelemetrySink]:
    task = asyncio.create_task(sink.run())
    try:
        yield sink
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sink.close()


async def exported(
    vm: VictoriaMetrics, ready: Callable[[list[Series]], bool], what: str
) -> list[Series]:
    """The server's series once `ready` holds of them (it indexes new series within ~1 s)."""
    found: list[Series] = []

    async def arrived() -> bool:
        nonlocal found
        found = await asyncio.to_thread(vm.export)
        return ready(found)

    await wait_for(arrived, what)
    return found


def named(found: list[Series], name: str, **labels: str) -> list[Series]:
    return [s for s in found if s.name == name and labels.items() <= s.labels.items()]


def has(name: str, **labels: str) -> Callable[[list[Series]], bool]:
    return lambda found: bool(named(found, name, **labels))


def samples(at: datetime) -> TelemetryBatch:
    return TelemetryBatch(
        edge=EDGE,
        samples=(
            Sample(
                measurement="lane_weight",
                device="shelf-1",
                at=at,
                fields={"grams": 1234.5, "stable": 1.0},
                tags={"lane": "2"},
            ),
            Sample(
                measurement="rfid_antenna",
                device="door-1",
                at=at + timedelta(milliseconds=250),
                fields={"reads": 42.0, "rssi_dbm_mean": -61.25},
                tags={"antenna": "1"},
            ),
        ),
    )


async def test_points_written_through_the_sink_read_back_with_their_values_and_times(
    victoria_metrics: VictoriaMetrics,
) -> None:
    old = datetime(2019, 6, 1, 0, 0, 0, 999999, tzinfo=UTC)  # an event time from long ago
    points: list[Point] = [
        *(from_sample(SITE, EDGE, s) for s in samples(AT).samples),
        point(
            "stock_level", {"site": SITE, "item": "SKU 1,x", "location": "A-1"}, {"qty": -3}, old
        ),
        point("ingest", {"site": SITE, "edge": EDGE}, {"batches": 2, "lag_s": 0.0}, AT),
    ]
    sink = sink_for(quick(victoria_metrics.url))
    sink.offer(points)
    assert await sink.flush()
    await sink.close()
    found = await exported(victoria_metrics, lambda f: len(f) == 7, "7 series")
    got = {(s.name, tuple(sorted(s.labels.items()))): (s.values, s.timestamps_ms) for s in found}
    edge_tags = (("device", "shelf-1"), ("edge", EDGE), ("lane", "2"), ("site", SITE))
    antenna = (("antenna", "1"), ("device", "door-1"), ("edge", EDGE), ("site", SITE))
    assert got == {
        ("lane_weight_grams", edge_tags): ([1234.5], [ms(AT)]),
        ("lane_weight_stable", edge_tags): ([1.0], [ms(AT)]),
        ("rfid_antenna_reads", antenna): ([42.0], [ms(AT) + 250]),
        ("rfid_antenna_rssi_dbm_mean", antenna): ([-61.25], [ms(AT) + 250]),
        (
            "stock_level_qty",
            (("item", "SKU 1,x"), ("location", "A-1"), ("site", SITE)),
        ): ([-3.0], [ms(old)]),
        ("ingest_batches", (("edge", EDGE), ("site", SITE))): ([2.0], [ms(AT)]),
        ("ingest_lag_s", (("edge", EDGE), ("site", SITE))): ([0.0], [ms(AT)]),
    }
    assert ms(AT) == 1767323045678  # truncated, as the server stores it
    assert sink.stats.written == 4


async def test_a_server_down_at_start_gets_the_points_once_it_is_up(tmp_path: Path) -> None:
    server = VictoriaMetrics(tmp_path / "vm")  # not started: its port refuses connections
    try:
        async with running(sink_for(quick(server.url))) as sink:
            sink.offer(
                [point("alerts", {"site": SITE, "kind": "k", "severity": "info"}, {"count": 1}, AT)]
            )

            async def retrying() -> bool:
                return sink.stats.write_failures >= 2

            await wait_for(retrying, "the sink to fail and retry")
            assert sink.stats.written == 0
            await asyncio.to_thread(server.start)
            found = await exported(server, has("alerts_count", kind="k"), "the alert point")
        assert named(found, "alerts_count")[0].timestamps_ms == [ms(AT)]
        assert sink.stats.written == 1
    finally:
        server.kill()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_long_outage_thins_telemetry_and_ingest_goes_on(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings, writer: Writer, engine: AsyncEngine
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    sink = sink_for(quick(nowhere, batch_points_max=10, buffer_points_max=40))
    many = TelemetryBatch(
        edge=EDGE,
        samples=tuple(
            Sample(
                measurement="scans",
                device="sc-1",
                at=AT + timedelta(seconds=i),
                fields={"scans": 1.0},
            )
            for i in range(60)
        ),
    )
    batches = [batch(txn(TxnKind.RECEIPT, 1, to_location="A-1")) for _ in range(5)]
    ledger = Ledger(writer, site=SITE, stock_levels=True)
    async with (
        running(sink),
        ingesting(agg_settings.model_copy(update={"payload_bytes_max": 64_000}), ledger, sink),
        edge_client(mosquitto, ACKS) as (client, inbox),
    ):
        await client.publish(TELEMETRY, many.model_dump_json(), qos=0)
        for one in batches:
            await client.publish(TXNS, one.model_dump_json(), qos=1)
        for one in batches:  # every txn acked while the server is away
            ack = await wait_ack(inbox, {one.txns[0].id})
            assert [r.status for r in ack.results] == [AckStatus.ACCEPTED]

        async def thinned() -> bool:
            return sink.stats.offered > 60

        await wait_for(thinned, "the samples and the postings' points offered")
        stats = sink.stats
        assert stats.written == 0
        assert sink.buffered <= 40
        assert stats.thinned_edge >= 20  # 60 samples into 40 places, before any aggregator point
        # nothing vanished uncounted: what was offered is buffered, being retried or dropped
        writing = stats.offered - sink.buffered - stats.thinned_edge - stats.thinned_aggregator
        assert writing in range(11)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_bad_telemetry_batch_is_a_dead_letter(
    mosquitto: Mosquitto,
    agg_settings: AggregatorSettings,
    writer: Writer,
    engine: AsyncEngine,
    victoria_metrics: VictoriaMetrics,
) -> None:
    bad = samples(AT).model_dump(mode="json")
    bad["samples"][0]["fields"]["kilograms"] = 1.0  # not a field of lane_weight
    raw = json.dumps(bad).encode()
    good = batch(txn(TxnKind.RECEIPT, 2, to_location="A-1"))
    ledger = Ledger(writer, site=SITE, stock_levels=True)
    async with (
        running(sink_for(quick(victoria_metrics.url))) as sink,
        ingesting(agg_settings, ledger, sink),
        edge_client(mosquitto, ACKS, ALERTS) as (client, inbox),
    ):
        await client.publish(TELEMETRY, raw, qos=0)
        await client.publish(TXNS, good.model_dump_json(), qos=1)
        await wait_ack(inbox, {good.txns[0].id})
        _, payload = await inbox.next(ALERTS, "a dead-letter alert")
        found = await exported(
            victoria_metrics, has("dead_letters_count", channel="telemetry"), "a dead-letter point"
        )
    alert = Alert.model_validate_json(payload)
    assert alert.kind is AlertKind.DEAD_LETTER
    assert "kilograms" in alert.message
    async with engine.connect() as conn:
        [letter] = (await conn.execute(sa.select(dead_letters))).all()
    assert (letter.topic, letter.payload) == (TELEMETRY, raw)
    assert named(found, "dead_letters_count")[0].labels == {
        "site": SITE,
        "edge": EDGE,
        "channel": "telemetry",
    }
    assert named(found, "alerts_count", kind="dead_letter")
    assert not named(found, "lane_weight_grams")  # nothing of the bad batch was written


async def test_a_running_aggregator_writes_stock_levels_movements_and_edge_samples(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings, victoria_metrics: VictoriaMetrics
) -> None:
    settings = agg_settings.model_copy(update={"telemetry": quick(victoria_metrics.url)})
    first = batch(
        txn(TxnKind.RECEIPT, 10, to_location="A-1", lot="L1"),
        txn(TxnKind.RECEIPT, 5, sku="SKU-2", to_location="A-1"),
    )
    second = batch(
        txn(TxnKind.RECEIPT, 5, to_location="A-1", lot="L2"),
        txn(TxnKind.PICK, 3, from_location="A-1", lot="L1"),
        txn(TxnKind.COUNT, 5, sku="SKU-2", to_location="A-1"),  # as booked: moves nothing
    )
    now = datetime.now(UTC)
    async with running_aggregator(settings), edge_client(mosquitto, ACKS) as (client, inbox):
        await client.publish(TXNS, first.model_dump_json(), qos=1)
        await wait_ack(inbox, {t.id for t in first.txns})
        await client.publish(TXNS, second.model_dump_json(), qos=1)
        await wait_ack(inbox, {t.id for t in second.txns})
        await client.publish(TELEMETRY, samples(now).model_dump_json(), qos=0)

        def complete(found: list[Series]) -> bool:
            levels = named(found, "stock_level_qty", item="SKU-1", location="A-1")
            return (
                bool(named(found, "lane_weight_grams")) and sum(len(s.values) for s in levels) == 2
            )

        found = await exported(victoria_metrics, complete, "stock levels and the edge's samples")
    [level] = named(found, "stock_level_qty", item="SKU-1", location="A-1")
    assert level.labels == {"site": SITE, "item": "SKU-1", "location": "A-1"}
    assert level.values == [10.0, 12.0]  # over lots, after each commit group
    counts = {
        (s.labels["kind"], s.labels["status"]): sum(s.values)
        for s in named(found, "movements_count", edge=EDGE)
    }
    assert counts == {("receipt", "posted"): 3.0, ("pick", "posted"): 1.0}
    units = sum(sum(s.values) for s in named(found, "movements_units", kind="receipt"))
    assert units == 20.0
    assert sum(named(found, "posting_delay_count", edge=EDGE)[0].values) == 4.0
    assert sum(named(found, "ingest_txns", edge=EDGE)[0].values) == 5.0
    [grams] = named(found, "lane_weight_grams")
    assert grams.labels == {"site": SITE, "edge": EDGE, "device": "shelf-1", "lane": "2"}
    assert (grams.values, grams.timestamps_ms) == ([1234.5], [ms(now)])  # the edge's time
    assert not named(found, "stock_level_qty", location="@supplier")  # physical places only
    [counted] = named(found, "stock_level_qty", item="SKU-2")
    assert counted.values == [5.0]  # the count moved nothing: no second point


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_with_the_sink_off_telemetry_is_not_even_read(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings, writer: Writer, engine: AsyncEngine
) -> None:
    # One message allowed per edge: were telemetry read, the txn batch after it would be refused.
    one = RateLimitSettings(messages_per_s=0.001, burst_messages=1, alert_interval_s=3600)
    good = batch(txn(TxnKind.RECEIPT, 1, to_location="A-1"))
    async with (
        ingesting(agg_settings.model_copy(update={"rate_limit": one}), Ledger(writer, site=SITE)),
        edge_client(mosquitto, ACKS) as (client, inbox),
    ):
        await client.publish(TELEMETRY, b"not even json", qos=0)
        await client.publish(TXNS, good.model_dump_json(), qos=1)
        await wait_ack(inbox, {good.txns[0].id})
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(dead_letters))).all() == []  # never received


def points_in(found: list[Series]) -> set[tuple[str, str, int]]:
    """(measurement, labels, time) of every point some series of `found` holds a field of."""
    fields = {f"{m.name}_{f}": m.name for m in CATALOG for f in m.fields}
    return {
        (fields[s.name], json.dumps(s.labels, sort_keys=True), at)
        for s in found
        for at in s.timestamps_ms
    }


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_approvals_and_reversals_through_the_api_are_written_with_edge_api(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings, victoria_metrics: VictoriaMetrics
) -> None:
    settings = agg_settings.model_copy(update={"telemetry": quick(victoria_metrics.url)})
    unsure = txn(TxnKind.RECEIPT, 4, to_location="A-1", confidence=0.1)  # waits in review
    key = api_key(settings.database_url, Role.APPROVER)
    async with (
        running_aggregator(settings) as url,
        api_client(url, key) as http,
        edge_client(mosquitto, ACKS) as (client, inbox),
    ):
        await client.publish(TXNS, batch(unsure).model_dump_json(), qos=1)
        await wait_ack(inbox, {unsure.id})
        approved = await http.post(f"/transactions/{unsure.id}/approve")
        assert approved.status_code == 200
        movement_id = approved.json()["movements"][0]["id"]
        assert (await http.post(f"/movements/{movement_id}/reverse")).status_code == 201

        def both(found: list[Series]) -> bool:
            levels = named(found, "stock_level_qty", location="A-1")
            return sum(len(s.values) for s in levels) == 2

        found = await exported(victoria_metrics, both, "stock levels after approval, reversal")
        scraped = parse((await http.get("/metrics")).text)
    written = sample(scraped, "stockwire_aggregator_telemetry_points_written_total", -1.0)
    assert written >= len(points_in(found))  # at least what was read back
    dropped = sample(
        scraped, "stockwire_aggregator_telemetry_points_dropped_total", -1.0, reason="thinned_edge"
    )
    assert dropped == 0.0
    [level] = named(found, "stock_level_qty", location="A-1")
    assert level.values == [4.0, 0.0]
    moved = {
        (s.labels["edge"], s.labels["status"]): sum(s.values)
        for s in named(found, "movements_count", kind="receipt")
    }
    assert moved == {(EDGE, "pending"): 1.0, ("api", "posted"): 2.0}
