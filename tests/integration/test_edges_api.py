"""GET /edges: what each edge last reported, and what ingest refused from it."""

from aggregator.roles import Role
from aggregator.settings import AggregatorSettings, RateLimitSettings
from simulators.mosquitto import Mosquitto
from stockwire.topics import EdgeChannel, SiteChannel, edge_filter, edge_topic, site_topic
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
    txn,
    wait_ack,
    wait_for,
)

agg_settings = support.agg_settings
db_url = support.db_url


async def test_edges_lists_each_edge_with_the_messages_refused_from_it(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings
) -> None:
    limits = RateLimitSettings(messages_per_s=0.001, burst_messages=1, alert_interval_s=3600)
    settings = agg_settings.model_copy(update={"rate_limit": limits})
    first = batch(txn(TxnKind.RECEIPT, 1, to_location="A-1"))
    extra = [batch(txn(TxnKind.RECEIPT, 1, to_location="A-1")) for _ in range(3)]
    async with (
        running_aggregator(settings) as url,
        edge_client(
            mosquitto, edge_filter(EdgeChannel.ACK, SITE), site_topic(SITE, SiteChannel.ALERTS)
        ) as (client, inbox),
        api_client(url, api_key(settings.database_url, Role.VIEWER)) as http,
    ):
        topic = edge_topic(SITE, EDGE, EdgeChannel.TXN)
        await client.publish(topic, first.model_dump_json(), qos=1)
        await wait_ack(inbox, {first.txns[0].id})
        for one in extra:
            await client.publish(topic, one.model_dump_json(), qos=1)
        await client.publish(edge_topic(SITE, "stranger", EdgeChannel.TXN), b"{}", qos=1)

        async def listed() -> bool:
            edges = {e["edge"]: e for e in (await http.get("/edges")).json()}
            return bool(edges.get(EDGE, {}).get("refused") == 3)

        await wait_for(listed, "edge1's 3 refused batches in /edges")
        edges = {e["edge"]: e for e in (await http.get("/edges")).json()}
    assert edges[EDGE]["last_seq"] == first.txns[0].seq
    assert "stranger" not in edges  # its own bucket had a token: dead-lettered, not refused
    assert sum(t.endswith("/ack") for t, _ in inbox.messages) == 1  # the refused got none
