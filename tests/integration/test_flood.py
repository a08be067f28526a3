"""A flood of bad payloads from one edge: every one is handled or still at the broker, never
discarded, and another edge's batches caught in it are acked on their first publication."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from uuid import uuid4

import aiomqtt
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.ledger import Ledger
from aggregator.schema import dead_letters
from aggregator.settings import AggregatorSettings, RateLimitSettings
from aggregator.writer import Writer
from simulators.mosquitto import Mosquitto
from stockwire.ack import AckStatus
from stockwire.events import Alert, AlertKind
from stockwire.topics import EdgeChannel, SiteChannel, edge_topic, site_topic
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    SITE,
    batch,
    count_rows,
    edge_client,
    ingesting,
    txn,
    wait_ack,
    wait_for,
)

agg_settings = support.agg_settings
db_url = support.db_url
engine = support.engine
writer = support.writer

FLOOD = 20_000
GOOD = 40
PUBLISHES_AT_ONCE = 500
INCOMING_MAX = 100
FLOODER, GOOD_EDGE = "edge1", "edge2"


@contextlib.asynccontextmanager
async def _client(broker: Mosquitto) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(broker.host, broker.port, identifier=f"t-{uuid4().hex}") as c:
        yield c


async def _flood(broker: Mosquitto) -> None:
    topic = edge_topic(SITE, FLOODER, EdgeChannel.TXN)
    async with _client(broker) as client:
        for start in range(0, FLOOD, PUBLISHES_AT_ONCE):
            end = min(FLOOD, start + PUBLISHES_AT_ONCE)
            await asyncio.gather(
                *(client.publish(topic, b"not json %d" % i, qos=1) for i in range(start, end))
            )


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the path, not the backend
async def test_a_flood_is_handled_or_kept_at_the_broker_and_other_edges_still_post(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings, writer: Writer, engine: AsyncEngine
) -> None:
    limits = RateLimitSettings(messages_per_s=100, burst_messages=500, alert_interval_s=3600)
    mqtt = agg_settings.mqtt.model_copy(update={"incoming_messages_max": INCOMING_MAX})
    settings = agg_settings.model_copy(update={"rate_limit": limits, "mqtt": mqtt})
    good = [
        batch(txn(TxnKind.RECEIPT, 1, edge=GOOD_EDGE, to_location="A-1"), edge=GOOD_EDGE)
        for _ in range(GOOD)
    ]
    good_topic = edge_topic(SITE, GOOD_EDGE, EdgeChannel.TXN)
    acks = edge_topic(SITE, GOOD_EDGE, EdgeChannel.ACK)
    alerts = site_topic(SITE, SiteChannel.ALERTS)
    async with (
        ingesting(settings, Ledger(writer, site=SITE)) as ingest,
        edge_client(mosquitto, acks, alerts) as (client, inbox),
    ):
        flooding = asyncio.create_task(_flood(mosquitto))
        for one in good:  # each published once: no edge outbox replays them here
            await client.publish(good_topic, one.model_dump_json(), qos=1)
            await asyncio.sleep(0.01)
        await flooding
        for one in good:
            ack = await wait_ack(inbox, {one.txns[0].id}, edge=GOOD_EDGE)
            assert [r.status for r in ack.results] == [AckStatus.ACCEPTED]

        async def all_handled() -> bool:
            refused = ingest.refused().get(FLOODER, 0)
            return await count_rows(engine, dead_letters) + refused == FLOOD

        await wait_for(all_handled, f"all {FLOOD} flood messages handled", timeout_s=120)
        flagged = [Alert.model_validate_json(p) for p in inbox.on(alerts)]
    async with engine.connect() as conn:
        topics = set((await conn.execute(sa.select(dead_letters.c.topic))).scalars())
    assert await count_rows(engine, dead_letters) >= limits.burst_messages  # the burst ...
    assert ingest.refused()[FLOODER] > FLOOD // 2  # ... the rest refused, counted by edge
    assert topics == {edge_topic(SITE, FLOODER, EdgeChannel.TXN)}
    assert ingest.flow.pauses > 0  # it stopped reading rather than queue or drop
    limited = [a for a in flagged if a.kind is AlertKind.RATE_LIMITED]
    assert len(limited) == 1  # once per alert_interval_s, naming the edge
    assert FLOODER in limited[0].message
    assert sum(a.kind is AlertKind.DEAD_LETTER for a in flagged) == 1  # throttled too
