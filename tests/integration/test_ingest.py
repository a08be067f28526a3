"""Ingest end to end: a plain aiomqtt 'edge' publishes TxnBatch JSON to a real mosquitto."""

import logging
import tomllib
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from aggregator.database import create_engine
from aggregator.schema import dead_letters, edges
from aggregator.settings import AggregatorSettings
from simulators.mosquitto import Mosquitto
from stockwire.ack import Ack, AckStatus
from stockwire.events import Alert, AlertKind, LedgerEvents
from stockwire.status import EdgeState, EdgeStatus
from stockwire.topics import EdgeChannel, SiteChannel, edge_filter, edge_topic, site_topic
from stockwire.txn import TxnKind
from tests.conftest import CASES
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    EDGE,
    SITE,
    batch,
    edge_client,
    running_aggregator,
    stock,
    txn,
    wait_ack,
    wait_for,
)

# fixtures shared by the aggregator's tests
agg_settings = support.agg_settings
db_url = support.db_url

K = TxnKind
TXN_TOPIC = edge_topic(SITE, EDGE, EdgeChannel.TXN)
ACKS = edge_filter(EdgeChannel.ACK, SITE)
LEDGER = site_topic(SITE, SiteChannel.LEDGER)
ALERTS = site_topic(SITE, SiteChannel.ALERTS)
DEAD_LETTER_CASES = sorted(p for p in (CASES / "ingest").iterdir() if p.is_dir())


async def test_batch_is_posted_then_acked_then_republished(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings
) -> None:
    first = batch(
        txn(K.RECEIPT, 10, to_location="A-1", lot="L1"),
        txn(K.PICK, 3, from_location="A-1", lot="L1"),
    )
    async with (
        running_aggregator(agg_settings),
        edge_client(mosquitto, ACKS, LEDGER) as (client, inbox),
    ):
        await client.publish(TXN_TOPIC, first.model_dump_json(), qos=1)
        ack = await wait_ack(inbox, {t.id for t in first.txns})
        assert [r.status for r in ack.results] == [AckStatus.ACCEPTED] * 2
        engine = create_engine(agg_settings.database_url)
        try:
            have = await stock(engine)
        finally:
            await engine.dispose()
        assert have[("SKU-1", "A-1", "L1")] == 7
        assert have[("SKU-1", "@customer", "L1")] == 3

        _, payload = await inbox.next(LEDGER, "ledger events")
        events = LedgerEvents.model_validate_json(payload)
        assert events.site == SITE
        assert [(m.txn_id, m.qty) for m in events.movements] == [(t.id, t.qty) for t in first.txns]

        ack_topic = edge_topic(SITE, EDGE, EdgeChannel.ACK)
        seen, _ = await inbox.next(ack_topic, "the first ack")
        await client.publish(TXN_TOPIC, first.model_dump_json(), qos=1)
        _, payload = await inbox.next(ack_topic, "the second ack", start=seen + 1)
        again = Ack.model_validate_json(payload)
        assert [r.status for r in again.results] == [AckStatus.DUPLICATE] * 2
        assert len(inbox.on(LEDGER)) == 1  # a duplicate moves nothing, so nothing to republish


@pytest.mark.parametrize("case", DEAD_LETTER_CASES, ids=[p.name for p in DEAD_LETTER_CASES])
async def test_bad_message_is_dead_lettered_and_the_next_batch_still_posts(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings, case: Path
) -> None:
    spec = tomllib.loads((case / "case.toml").read_text())
    raw = (case / "payload.bin").read_bytes()
    bad_topic = edge_topic(SITE, spec["topic_edge"], EdgeChannel.TXN)
    good = batch(txn(K.RECEIPT, 2, to_location="A-1"))
    async with (
        running_aggregator(agg_settings),
        edge_client(mosquitto, ACKS, ALERTS) as (client, inbox),
    ):
        await client.publish(bad_topic, raw, qos=1)
        await client.publish(TXN_TOPIC, good.model_dump_json(), qos=1)
        ack = await wait_ack(inbox, {good.txns[0].id})
        assert [r.status for r in ack.results] == [AckStatus.ACCEPTED]
        _, alert_payload = await inbox.next(ALERTS, "a dead-letter alert")
    alert = Alert.model_validate_json(alert_payload)
    assert alert.kind is AlertKind.DEAD_LETTER
    assert spec["reason_contains"] in alert.message
    engine = create_engine(agg_settings.database_url)
    try:
        async with engine.connect() as conn:
            [letter] = (await conn.execute(sa.select(dead_letters))).all()
        assert (letter.topic, letter.payload) == (bad_topic, raw)
        assert spec["reason_contains"] in letter.reason
        assert await stock(engine) == {("SKU-1", "@supplier", ""): -2, ("SKU-1", "A-1", ""): 2}
    finally:
        await engine.dispose()
    assert sum(1 for topic, _ in inbox.messages if topic.endswith("/ack")) == 1  # the good one


async def test_txns_published_while_the_aggregator_is_down_are_posted_on_restart(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings
) -> None:
    early = batch(txn(K.RECEIPT, 4, to_location="A-1"))
    async with edge_client(mosquitto, ACKS) as (client, inbox):
        async with running_aggregator(agg_settings):
            pass  # the first start creates the persistent session and its subscription
        await client.publish(TXN_TOPIC, early.model_dump_json(), qos=1)
        async with running_aggregator(agg_settings):
            ack = await wait_ack(inbox, {early.txns[0].id})
    assert [r.status for r in ack.results] == [AckStatus.ACCEPTED]


async def test_negative_stock_and_offline_edge_raise_alerts(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings
) -> None:
    short = batch(txn(K.PICK, 3, from_location="B-7"))
    offline = EdgeStatus(edge=EDGE, state=EdgeState.OFFLINE, at=short.sent_at, version="t")
    status_topic = edge_topic(SITE, EDGE, EdgeChannel.STATUS)
    async with (
        running_aggregator(agg_settings),
        edge_client(mosquitto, ACKS, ALERTS) as (client, inbox),
    ):
        await client.publish(TXN_TOPIC, short.model_dump_json(), qos=1)
        await wait_ack(inbox, {short.txns[0].id})
        at, payload = await inbox.next(ALERTS, "a negative-stock alert")
        negative = Alert.model_validate_json(payload)
        await client.publish(status_topic, offline.model_dump_json(), qos=1, retain=True)
        _, payload = await inbox.next(ALERTS, "a device-offline alert", start=at + 1)
        gone = Alert.model_validate_json(payload)
    assert negative.kind is AlertKind.NEGATIVE_STOCK
    assert negative.subject == {"location": "B-7", "qty": "-3", "sku": "SKU-1"}
    assert (gone.kind, gone.edge) == (AlertKind.DEVICE_OFFLINE, EDGE)
    engine = create_engine(agg_settings.database_url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(sa.select(edges))).one()
    finally:
        await engine.dispose()
    assert (row.edge, row.state, row.last_seq) == (EDGE, "offline", short.txns[0].seq)


async def test_ingest_reconnects_after_a_broker_restart_and_logs_it(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings, caplog: pytest.LogCaptureFixture
) -> None:
    later = batch(txn(K.RECEIPT, 6, to_location="A-1"))
    codes: dict[bool, int] = {}
    caplog.set_level(logging.INFO, logger="aggregator")
    async with running_aggregator(agg_settings) as url, httpx.AsyncClient(base_url=url) as http:

        async def mqtt_is(up: bool) -> bool:
            health = await http.get("/health")
            codes[up] = health.status_code
            return bool(health.json()["mqtt"]) is up

        mosquitto.kill()
        await wait_for(lambda: mqtt_is(False), "the aggregator to notice the broker is gone")
        mosquitto.start()
        await wait_for(lambda: mqtt_is(True), "the aggregator to reconnect")
        async with edge_client(mosquitto, ACKS) as (client, inbox):
            await client.publish(TXN_TOPIC, later.model_dump_json(), qos=1)
            ack = await wait_ack(inbox, {later.txns[0].id})
    assert [r.status for r in ack.results] == [AckStatus.ACCEPTED]
    assert codes == {False: 503, True: 200}  # degraded while the broker is away
    broker = f"mqtt://{mosquitto.host}:{mosquitto.port}"
    said = [r.getMessage() for r in caplog.records if r.name.startswith("aggregator")]
    story = [
        f"mqtt: connected to {broker}",
        f"mqtt: lost the connection to {broker}",
        f"mqtt: reconnecting to {broker}",
        f"mqtt: connected to {broker}",
        f"aggregator for site {SITE}: stopping (asked to stop)",
        "mqtt: the aggregator is stopping",
        f"aggregator for site {SITE}: stopped",
    ]
    told = iter(said)
    for line in story:  # in this order, other lines between
        assert any(m.startswith(line) for m in told), (line, said)
