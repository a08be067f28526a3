"""GET /metrics of a running aggregator, scraped and parsed as Prometheus does."""

from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator import metrics
from aggregator.api.app import create_app
from aggregator.api.deps import ApiState
from aggregator.ledger import Ledger
from aggregator.roles import Role
from aggregator.settings import AggregatorSettings, ApiSettings
from simulators.mosquitto import Mosquitto
from stockwire.ack import AckStatus
from stockwire.status import EdgeState, EdgeStatus
from stockwire.topics import EdgeChannel, edge_filter, edge_topic
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    EDGE,
    SITE,
    api_client,
    api_key,
    batch,
    edge_client,
    running_aggregator,
    serving,
    txn,
    wait_ack,
    wait_for,
)
from tests.integration.prometheus_support import Samples, parse, sample

agg_settings = support.agg_settings
db_url = support.db_url
engine = support.engine
writer = support.writer
ledger = support.ledger

K = TxnKind
TXN_TOPIC = edge_topic(SITE, EDGE, EdgeChannel.TXN)


def value(samples: Samples, name: str, **labels: str) -> float:
    return sample(samples, metrics.PREFIX + name, 0.0, **labels)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_metrics_count_what_ingest_did(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings
) -> None:
    viewer = api_key(agg_settings.database_url, Role.VIEWER)
    posted = batch(txn(K.RECEIPT, 5, to_location="A-1"), txn(K.PICK, 2, from_location="A-1"))
    refused = batch(txn(K.RECEIPT, 1, to_location="@nowhere"))
    status = EdgeStatus(edge=EDGE, state=EdgeState.ONLINE, at=datetime.now(UTC), version="t")
    async with (
        running_aggregator(agg_settings) as url,
        edge_client(mosquitto, edge_filter(EdgeChannel.ACK, SITE)) as (client, inbox),
        api_client(url, viewer) as http,
    ):
        before = parse((await http.get("/metrics")).text)
        for one in (posted, posted, refused):
            await client.publish(TXN_TOPIC, one.model_dump_json(), qos=1)
        await client.publish(TXN_TOPIC, b"not json", qos=1)
        await client.publish(edge_topic(SITE, EDGE, EdgeChannel.STATUS), status.model_dump_json())
        ack = await wait_ack(inbox, {refused.txns[0].id})
        assert [r.status for r in ack.results] == [AckStatus.REJECTED]

        after: Samples = {}

        async def all_counted() -> bool:
            after.clear()
            after.update(parse((await http.get("/metrics")).text))
            handled = value(after, "messages_total", channel="txn", outcome="dead_letter")
            return (
                handled == 1
                and value(after, "messages_total", channel="status", outcome="recorded") == 1
            )

        await wait_for(all_counted, "the dead letter and the status in /metrics")
        response = await http.get("/metrics")
        unknown = await http.get("/metrics", params={"name": "x"})
        async with httpx.AsyncClient(base_url=url) as anonymous:
            nobody = await anonymous.get("/metrics")

    assert response.headers["content-type"] == metrics.CONTENT_TYPE
    parsed = text_string_to_metric_families(response.text)
    families = {f.name for f in parsed if not f.name.endswith("_created")}  # the library's
    assert families == {metrics.PREFIX + spec.name for spec in metrics.SPECS}  # = the README
    assert (unknown.status_code, nobody.status_code) == (422, 401)
    assert before.keys() <= after.keys()
    assert value(after, "messages_total", channel="txn", outcome="posted") == 2  # 1st + refused
    assert value(after, "messages_total", channel="txn", outcome="duplicate") == 1
    assert value(after, "txns_total", status="accepted") == 2
    assert value(after, "txns_total", status="duplicate") == 2
    assert value(after, "txns_total", status="rejected") == 1
    assert value(after, "dead_letters_total") == 1
    assert value(after, "mqtt_connected") == 1
    assert value(after, "group_messages_count") >= 1
    assert value(after, "group_messages_sum") == 3  # three batches committed
    assert value(after, "batch_txns_sum") == 5
    assert value(after, "ack_latency_seconds_count") == 3  # one per ack
    assert value(after, "commit_seconds_count") > value(before, "commit_seconds_count")
    assert value(after, "incoming_messages") == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_metrics_need_no_key_with_open_reads(engine: AsyncEngine, ledger: Ledger) -> None:
    own = metrics.AggregatorMetrics()
    own.commit_seconds.observe(0.5)
    settings = ApiSettings(open_reads=True)
    app = create_app(ApiState(engine, ledger, settings=settings, metrics=own.render))
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as anonymous:
        response = await anonymous.get("/metrics")
    assert response.status_code == 200, response.text
    assert value(parse(response.text), "commit_seconds_sum") == 0.5
