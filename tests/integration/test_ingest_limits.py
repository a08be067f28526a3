"""Ingest at its limits: a 10 MB payload, a batch that cannot be posted, a database outage."""

import asyncio
import base64
import hashlib
from collections.abc import Sequence

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.ledger import GroupPosting, Ledger
from aggregator.roles import Role
from aggregator.schema import dead_letters
from aggregator.settings import AggregatorSettings
from aggregator.writer import Writer
from simulators.mosquitto import Mosquitto
from stockwire.ack import AckStatus
from stockwire.topics import EdgeChannel, SiteChannel, edge_filter, edge_topic, site_topic
from stockwire.txn import TxnBatch, TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    EDGE,
    SITE,
    api_client,
    api_key,
    batch,
    count_rows,
    edge_client,
    ingesting,
    running_aggregator,
    stock,
    txn,
    wait_ack,
    wait_for,
)

agg_settings = support.agg_settings
db_url = support.db_url
engine = support.engine
writer = support.writer

ACKS = edge_filter(EdgeChannel.ACK, SITE)
ALERTS = site_topic(SITE, SiteChannel.ALERTS)


def _topic(edge: str = EDGE) -> str:
    return edge_topic(SITE, edge, EdgeChannel.TXN)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_10_mb_payload_is_kept_as_a_capped_prefix_with_its_size_and_hash(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings
) -> None:
    raw = b"{" + b"x" * (10 * 1024 * 1024)
    async with (
        running_aggregator(agg_settings) as url,
        edge_client(mosquitto, ALERTS) as (client, inbox),
        api_client(url, api_key(agg_settings.database_url, Role.VIEWER)) as http,
    ):
        await client.publish(_topic(), raw, qos=1)
        await inbox.next(ALERTS, "the dead-letter alert")
        [letter] = (await http.get("/dead-letters")).json()["items"]
    kept = base64.b64decode(letter["payload_base64"])
    assert kept == raw[: agg_settings.dead_letter_payload_bytes_max]
    assert letter["payload_bytes"] == len(raw)
    assert letter["payload_sha256"] == hashlib.sha256(raw).hexdigest()
    assert letter["payload_truncated"] is True
    assert f"payload is {len(raw)} bytes" in letter["reason"]


class _Buggy(Ledger):
    """A ledger that cannot post one edge's batches (a bug, not the database)."""

    async def post_many(self, batches: Sequence[TxnBatch]) -> GroupPosting:
        if any(b.edge == "edge2" for b in batches):
            raise RuntimeError("cannot post this one")
        return await super().post_many(batches)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_batch_that_keeps_failing_while_the_database_answers_is_dead_lettered(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings, writer: Writer, engine: AsyncEngine
) -> None:
    bad = batch(txn(TxnKind.RECEIPT, 1, edge="edge2", to_location="A-1"), edge="edge2")
    good = batch(txn(TxnKind.RECEIPT, 3, to_location="A-1"))
    async with (
        ingesting(agg_settings, _Buggy(writer, site=SITE)) as ingest,
        edge_client(mosquitto, ACKS) as (client, inbox),
    ):
        await client.publish(_topic("edge2"), bad.model_dump_json(), qos=1)
        await client.publish(_topic(), good.model_dump_json(), qos=1)
        ack = await wait_ack(inbox, {good.txns[0].id})

        async def kept() -> bool:
            return await count_rows(engine, dead_letters) == 1

        await wait_for(kept, "the failing batch kept as a dead letter")
    assert [r.status for r in ack.results] == [AckStatus.ACCEPTED]
    assert ingest.stats.post_failures >= 3
    assert not any(t.endswith("/edge2/ack") for t, _ in inbox.messages)  # the edge replays it
    async with engine.connect() as conn:
        letter = (await conn.execute(dead_letters.select())).one()
    assert letter.topic == _topic("edge2")
    assert "posting failed 3 times: RuntimeError('cannot post this one')" in letter.reason
    assert letter.payload == bad.model_dump_json().encode()


def _allow_connections(dsn: str, database: str, allow: bool) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        flag = sql.SQL("true") if allow else sql.SQL("false")
        conn.execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
                sql.Identifier(database), flag
            )
        )
        if not allow:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            )


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_while_the_database_is_down_the_stream_waits_and_nothing_is_lost(
    mosquitto: Mosquitto,
    agg_settings: AggregatorSettings,
    writer: Writer,
    engine: AsyncEngine,
    db_url: str,
    pg_dsn: str,
) -> None:
    database = make_url(db_url).database
    assert database is not None
    batches = [batch(txn(TxnKind.RECEIPT, 1, to_location="A-1")) for _ in range(5)]
    async with (
        ingesting(agg_settings, Ledger(writer, site=SITE)) as ingest,
        edge_client(mosquitto, ACKS) as (client, inbox),
    ):
        await asyncio.to_thread(_allow_connections, pg_dsn, database, False)
        try:
            for one in batches:
                await client.publish(_topic(), one.model_dump_json(), qos=1)

            async def failing() -> bool:
                return ingest.stats.post_failures + ingest.stats.write_failures >= 2

            await wait_for(failing, "ingest to find the database down")
            assert not inbox.on(edge_topic(SITE, EDGE, EdgeChannel.ACK))  # nothing acked
        finally:
            await asyncio.to_thread(_allow_connections, pg_dsn, database, True)
        for one in batches:
            ack = await wait_ack(inbox, {one.txns[0].id})
            assert [r.status for r in ack.results] == [AckStatus.ACCEPTED]
    assert await stock(engine) == {("SKU-1", "A-1", ""): 5, ("SKU-1", "@supplier", ""): -5}
