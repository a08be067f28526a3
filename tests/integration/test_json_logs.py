"""JSON log lines of running programs: the line about a dead-lettered or rejected transaction
names it (txn_id) and its edge."""

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregator.settings import AggregatorSettings
from edge_agent.agent import run_agent
from simulators.mosquitto import Mosquitto
from stockwire import logs
from stockwire.ack import AckStatus
from stockwire.topics import EdgeChannel, edge_filter, edge_topic
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration import edge_support
from tests.integration.aggregator_support import (
    EDGE,
    SITE,
    batch,
    edge_client,
    running_aggregator,
    txn,
    wait_ack,
    wait_for,
)

agg_settings = support.agg_settings
db_url = support.db_url

Line = dict[str, Any]


class JsonLog:
    def __init__(self) -> None:
        self.out = io.StringIO()

    def lines(self) -> list[Line]:
        return [json.loads(line) for line in self.out.getvalue().splitlines()]

    def about(self, txn_id: object) -> list[Line]:
        return [line for line in self.lines() if line.get("txn_id") == str(txn_id)]


@pytest.fixture
def json_log() -> Iterator[JsonLog]:
    log = JsonLog()
    handler = logs.handler("json", log.out)
    handler.setLevel(logging.WARNING)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield log
    finally:
        root.removeHandler(handler)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_aggregator_lines_about_a_dead_letter_and_a_rejected_txn(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings, json_log: JsonLog
) -> None:
    bad = txn(TxnKind.RECEIPT, 1, to_location="A-1")
    payload = json.loads(batch(bad).model_dump_json())
    payload["txns"][0]["qty"] = 0  # outside the schema: a dead letter
    refused = batch(txn(TxnKind.RECEIPT, 1, to_location="@nowhere"))
    topic = edge_topic(SITE, EDGE, EdgeChannel.TXN)
    async with (
        running_aggregator(agg_settings),
        edge_client(mosquitto, edge_filter(EdgeChannel.ACK, SITE)) as (client, inbox),
    ):
        await client.publish(topic, json.dumps(payload), qos=1)
        await client.publish(topic, refused.model_dump_json(), qos=1)
        ack = await wait_ack(inbox, {refused.txns[0].id})

        async def logged() -> bool:
            return bool(json_log.about(bad.id))

        await wait_for(logged, "the dead letter's log line")
    assert [r.status for r in ack.results] == [AckStatus.REJECTED]
    [letter] = json_log.about(bad.id)
    assert (letter["level"], letter["edge"]) == ("WARNING", EDGE)
    assert letter["logger"] == "aggregator.ingest"
    assert letter["message"].startswith("dead letter ")
    [rejected] = json_log.about(refused.txns[0].id)
    assert rejected["edge"] == EDGE
    assert rejected["message"].startswith(f"txn {refused.txns[0].id} from {EDGE} rejected: ")
    assert "@nowhere" in rejected["message"]


async def test_edge_line_about_a_txn_the_aggregator_rejected(
    mosquitto: Mosquitto, tmp_path: Path, json_log: JsonLog
) -> None:
    settings = edge_support.edge_settings(mosquitto, tmp_path)
    scan = edge_support.MemorySource("scan1")
    aggregator = edge_support.Aggregator(mosquitto, reject={"SKU-X"})
    stop = asyncio.Event()
    agent = run_agent(settings, stop=stop, sources=[(scan, edge_support.LineRecognizer())])
    async with edge_support.running(aggregator.run()), edge_support.running(agent):
        scan.put("SKU-X 1")
        await edge_support.wait_until(lambda: bool(aggregator.received), "the aggregator's txn")

        def logged() -> bool:
            return any("rejected" in line["message"] for line in json_log.lines())

        await edge_support.wait_until(logged, "the rejection's log line")
        stop.set()
    [txn_sent] = aggregator.received
    [line] = json_log.about(txn_sent.id)
    assert line["edge"] == edge_support.EDGE
    assert line["logger"] == "edge_agent.outbox"
    assert line["message"] == f"txn {txn_sent.id} rejected by the aggregator: no"
