import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiomqtt
import pytest

from edge_agent.backoff import Backoff
from edge_agent.outbox import Outbox
from edge_agent.publisher import Publisher
from simulators.mosquitto import Mosquitto
from stockwire.status import EdgeState, EdgeStatus
from stockwire.topics import EdgeChannel, edge_topic
from stockwire.txn import StockTransaction, TxnBatch
from tests.integration.edge_support import (
    EDGE,
    SITE,
    Aggregator,
    draft,
    edge_settings,
    retained_status,
    running,
    wait_until,
)


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    box = await Outbox.open(tmp_path / "outbox.sqlite", EDGE, 10_000)
    try:
        yield box
    finally:
        await box.close()


async def add(outbox: Outbox, publisher: Publisher, n: int, prefix: str) -> list[StockTransaction]:
    txns = await outbox.add([draft(f"{prefix}{i}") for i in range(n)])
    publisher.wake()
    return txns


async def stop(publisher: Publisher, task: "asyncio.Task[None]") -> None:
    publisher.request_stop()
    await asyncio.wait_for(task, 20)


class TxnTap:
    """A plain subscriber that records every TxnBatch the broker delivers."""

    def __init__(self, broker: Mosquitto) -> None:
        self.broker = broker
        self.batches: list[TxnBatch] = []
        self.ready = asyncio.Event()

    async def run(self) -> None:
        async with aiomqtt.Client(self.broker.host, self.broker.port) as client:
            await client.subscribe(edge_topic(SITE, EDGE, EdgeChannel.TXN), qos=1)
            self.ready.set()
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                self.batches.append(TxnBatch.model_validate_json(message.payload))

    def ids(self) -> list[object]:
        return [t.id for b in self.batches for t in b.txns]


async def test_rows_leave_the_outbox_only_when_acked(
    mosquitto: Mosquitto, tmp_path: Path, outbox: Outbox
) -> None:
    settings = edge_settings(mosquitto, tmp_path, batch_txns_max=7)
    aggregator = Aggregator(mosquitto)
    aggregator.answering.clear()
    tap = TxnTap(mosquitto)
    publisher = Publisher(settings, outbox)
    async with running(tap.run()), running(aggregator.run()):
        await asyncio.wait_for(tap.ready.wait(), 20)
        async with running(publisher.run()) as task:
            txns = await add(outbox, publisher, 20, "S")
            await wait_until(lambda: len(tap.ids()) >= 20, "txns on the broker")
            assert outbox.count() == 20  # published but not acked: still stored
            assert all(len(b.txns) <= 7 for b in tap.batches)

            aggregator.answering.set()
            await wait_until(lambda: outbox.count() == 0, "outbox emptied by acks")
            assert set(aggregator.accepted) == {t.id for t in txns}
            await stop(publisher, task)


@pytest.mark.parametrize("outage", ["stop", "kill"])
async def test_broker_outage_loses_nothing(
    mosquitto: Mosquitto, tmp_path: Path, outbox: Outbox, outage: str
) -> None:
    settings = edge_settings(mosquitto, tmp_path, batch_txns_max=10, ack_timeout_s=2)
    aggregator = Aggregator(mosquitto)
    publisher = Publisher(settings, outbox)
    async with running(aggregator.run()), running(publisher.run()) as task:
        produced = await add(outbox, publisher, 30, "A")
        await wait_until(lambda: len(aggregator.accepted) >= 10, "some txns acked")
        getattr(mosquitto, outage)()
        produced += await add(outbox, publisher, 40, "B")  # the outage only grows the outbox
        await wait_until(lambda: not publisher.connected, "publisher sees the outage")
        assert outbox.count() > 0
        mosquitto.start()
        produced += await add(outbox, publisher, 30, "C")
        await wait_until(lambda: outbox.count() == 0, "everything acked after the outage")
        await stop(publisher, task)

    assert set(aggregator.accepted) == {t.id for t in produced}
    assert sorted(t.seq for t in aggregator.accepted.values()) == list(range(100))
    for txn in produced:
        assert aggregator.accepted[txn.id] == txn  # exactly as produced
    assert publisher.stats.connects >= 2


async def test_birth_is_retained_and_graceful_stop_leaves_offline(
    mosquitto: Mosquitto, tmp_path: Path, outbox: Outbox
) -> None:
    settings = edge_settings(mosquitto, tmp_path)
    await outbox.add([draft("A"), draft("B")])  # nobody acks: the birth counts them
    publisher = Publisher(settings, outbox)
    async with running(publisher.run()) as task:
        await wait_until(lambda: publisher.connected, "connected")
        birth = await retained_status(mosquitto)
        assert birth.state is EdgeState.ONLINE
        assert birth.edge == EDGE
        assert birth.outbox_rows == 2
        assert birth.outbox_rows_max == 10_000
        assert not birth.outbox_full
        await stop(publisher, task)
    offline = await retained_status(mosquitto)
    assert offline.state is EdgeState.OFFLINE
    assert offline.outbox_rows_max == 10_000


async def status_until(broker: Mosquitto, check: Callable[[EdgeStatus], bool]) -> EdgeStatus:
    """Poll the retained status (bounded) until `check` holds."""
    for _ in range(100):
        status = await retained_status(broker)
        if check(status):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"retained status never matched; last: {status}")


async def test_status_follows_the_outbox_filling_and_freeing_at_once(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    # The periodic status is an hour away: only the prompt one can show the change.
    settings = edge_settings(mosquitto, tmp_path, status_interval_s=3600)
    aggregator = Aggregator(mosquitto)
    aggregator.answering.clear()
    outbox = await Outbox.open(tmp_path / "small.sqlite", EDGE, rows_max=3)
    publisher = Publisher(settings, outbox)
    try:
        async with running(aggregator.run()), running(publisher.run()) as task:
            await add(outbox, publisher, 3, "F")
            birth = await status_until(mosquitto, lambda s: s.state is EdgeState.ONLINE)
            assert (birth.outbox_rows_max, birth.outbox_full) == (3, False)
            adding = asyncio.create_task(outbox.add([draft("G")]))
            full = await status_until(mosquitto, lambda s: s.outbox_full)
            assert full.outbox_rows == 3
            assert not adding.done()

            aggregator.answering.set()  # acks free space: the held add goes in
            await asyncio.wait_for(adding, 20)
            freed = await status_until(mosquitto, lambda s: not s.outbox_full)
            assert freed.outbox_rows_max == 3
            await stop(publisher, task)
    finally:
        await outbox.close()


async def test_malformed_acks_are_survived(
    mosquitto: Mosquitto, tmp_path: Path, outbox: Outbox
) -> None:
    settings = edge_settings(mosquitto, tmp_path)
    aggregator = Aggregator(mosquitto)
    publisher = Publisher(settings, outbox)
    ack_topic = edge_topic(SITE, EDGE, EdgeChannel.ACK)
    async with running(publisher.run()) as task:
        await wait_until(lambda: publisher.connected, "connected")
        async with aiomqtt.Client(mosquitto.host, mosquitto.port) as client:
            for payload in (b"not json", b'{"edge": "edge1"}', b"", b'{"schema_version": 9}'):
                await client.publish(ack_topic, payload, qos=1)
        await wait_until(lambda: publisher.stats.malformed_acks == 4, "malformed acks counted")
        async with running(aggregator.run()):
            txns = await add(outbox, publisher, 5, "S")
            await wait_until(lambda: outbox.count() == 0, "acked after the garbage")
        assert set(aggregator.accepted) == {t.id for t in txns}
        assert publisher.connected
        await stop(publisher, task)


async def test_rejected_ack_moves_the_txn_aside(
    mosquitto: Mosquitto, tmp_path: Path, outbox: Outbox
) -> None:
    settings = edge_settings(mosquitto, tmp_path)
    aggregator = Aggregator(mosquitto, reject={"BAD"})
    publisher = Publisher(settings, outbox)
    async with running(aggregator.run()), running(publisher.run()) as task:
        txns = await outbox.add([draft("OK"), draft("BAD")])
        publisher.wake()
        await wait_until(lambda: outbox.count() == 0, "both acked")
        await stop(publisher, task)
    with sqlite3.connect(settings.outbox.path) as conn:
        rejected = list(conn.execute("SELECT id, reason FROM rejected_txns"))
    assert rejected == [(str(txns[1].id), "no")]


async def test_unacked_batch_is_republished_after_ack_timeout(
    mosquitto: Mosquitto, tmp_path: Path, outbox: Outbox
) -> None:
    settings = edge_settings(mosquitto, tmp_path, ack_timeout_s=0.5)
    tap = TxnTap(mosquitto)
    aggregator = Aggregator(mosquitto)
    aggregator.answering.clear()
    publisher = Publisher(settings, outbox)
    async with running(tap.run()), running(aggregator.run()):
        await asyncio.wait_for(tap.ready.wait(), 20)
        async with running(publisher.run()) as task:
            (txn,) = await add(outbox, publisher, 1, "S")
            await wait_until(lambda: tap.ids().count(txn.id) >= 2, "the txn re-published")
            assert publisher.stats.ack_timeouts >= 1
            aggregator.answering.set()
            await wait_until(lambda: outbox.count() == 0, "acked at last")
            assert list(aggregator.accepted) == [txn.id]
            await stop(publisher, task)


async def test_inflight_batches_are_bounded(
    mosquitto: Mosquitto, tmp_path: Path, outbox: Outbox
) -> None:
    settings = edge_settings(
        mosquitto, tmp_path, batch_txns_max=2, inflight_batches_max=3, ack_timeout_s=600
    )
    tap = TxnTap(mosquitto)
    publisher = Publisher(settings, outbox)
    async with running(tap.run()):
        await asyncio.wait_for(tap.ready.wait(), 20)
        async with running(publisher.run()) as task:
            await add(outbox, publisher, 20, "S")
            await wait_until(lambda: len(tap.batches) >= 3, "three batches sent")
            for _ in range(20):
                await asyncio.sleep(0.02)
            assert len(tap.batches) == 3  # nobody acks: no fourth batch
            assert outbox.count() == 20
            await stop(publisher, task)


def test_reconnect_backoff_is_jittered_capped_and_resets() -> None:
    backoff = Backoff(0.2, 10.0, random.Random(7))
    delays = [backoff.next_s() for _ in range(12)]
    assert all(0.2 <= d <= 10.0 for d in delays)
    assert max(delays[6:]) > 3.2  # the cap grows ...
    assert len(set(delays)) == len(delays)  # ... and every delay is drawn, not fixed
    backoff.reset()
    assert backoff.next_s() == 0.2


async def test_a_small_batch_waits_for_the_previous_ack_but_a_full_one_does_not(
    mosquitto: Mosquitto, tmp_path: Path, outbox: Outbox
) -> None:
    # linger_ms at its maximum: only an ack (or a full batch) can release a held batch here.
    settings = edge_settings(mosquitto, tmp_path, batch_txns_max=3, linger_ms=10_000)
    tap = TxnTap(mosquitto)
    aggregator = Aggregator(mosquitto)
    aggregator.answering.clear()
    publisher = Publisher(settings, outbox)
    async with running(tap.run()), running(aggregator.run()):
        await asyncio.wait_for(tap.ready.wait(), 20)
        async with running(publisher.run()) as task:
            await wait_until(lambda: publisher.connected, "connected")
            await add(outbox, publisher, 1, "A")  # nothing awaits an ack: goes at once
            await wait_until(lambda: len(tap.batches) == 1, "the first txn alone")
            await add(outbox, publisher, 3, "B")  # a full batch goes even so
            await wait_until(lambda: len(tap.batches) == 2, "the full batch")
            await add(outbox, publisher, 1, "C")
            await add(outbox, publisher, 1, "D")
            for _ in range(20):
                await asyncio.sleep(0.02)
            assert len(tap.batches) == 2  # small, and earlier batches await their acks

            aggregator.answering.set()  # the acks come: what was held goes as one batch
            await wait_until(lambda: outbox.count() == 0, "everything acked")
            await stop(publisher, task)
    sizes = [[t.sku for t in b.txns] for b in tap.batches]
    assert sizes == [["A0"], ["B0", "B1", "B2"], ["C0", "D0"]]


async def test_just_stored_txns_are_published_without_reading_sqlite(
    mosquitto: Mosquitto, tmp_path: Path, outbox: Outbox
) -> None:
    settings = edge_settings(mosquitto, tmp_path, batch_txns_max=4)
    aggregator = Aggregator(mosquitto)
    publisher = Publisher(settings, outbox)
    async with running(aggregator.run()), running(publisher.run()) as task:
        await wait_until(lambda: publisher.connected, "connected")
        produced: list[StockTransaction] = []
        for i in range(10):
            produced += await add(outbox, publisher, 3, f"S{i}-")
        await wait_until(lambda: outbox.count() == 0, "everything acked")
        assert publisher.stats.outbox_reads == 0
        await stop(publisher, task)
    assert [aggregator.accepted[t.id] for t in produced] == produced


async def test_txns_beyond_the_memory_limit_are_read_from_sqlite_in_order(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = edge_settings(mosquitto, tmp_path, batch_txns_max=3, inflight_batches_max=1)
    tap = TxnTap(mosquitto)
    aggregator = Aggregator(mosquitto)
    aggregator.answering.clear()
    outbox = await Outbox.open(tmp_path / "small.sqlite", EDGE, 10_000, unsent_txns_max=4)
    publisher = Publisher(settings, outbox)
    try:
        async with running(tap.run()), running(aggregator.run()):
            await asyncio.wait_for(tap.ready.wait(), 20)
            async with running(publisher.run()) as task:
                await wait_until(lambda: publisher.connected, "connected")
                produced: list[StockTransaction] = []
                for i in range(6):
                    produced += await add(outbox, publisher, 5, f"S{i}-")
                assert outbox.unsent_overflows > 0
                aggregator.answering.set()
                await wait_until(lambda: outbox.count() == 0, "everything acked")
                await stop(publisher, task)
    finally:
        await outbox.close()
    assert publisher.stats.outbox_reads > 0
    assert tap.ids() == [t.id for t in produced]  # each once, in seq order
    assert all(len(b.txns) <= 3 for b in tap.batches)


async def test_many_batches_in_flight_send_each_txn_once(
    mosquitto: Mosquitto, tmp_path: Path, outbox: Outbox
) -> None:
    settings = edge_settings(mosquitto, tmp_path, batch_txns_max=5, inflight_batches_max=2)
    aggregator = Aggregator(mosquitto)
    publisher = Publisher(settings, outbox)
    async with running(aggregator.run()), running(publisher.run()) as task:
        produced = await add(outbox, publisher, 200, "S")
        await wait_until(lambda: outbox.count() == 0, "everything acked")
        await stop(publisher, task)
    assert set(aggregator.accepted) == {t.id for t in produced}
    assert publisher.stats.txns_sent == 200  # nothing sent twice
    assert publisher.stats.batches_sent == 40


async def test_cancelling_a_connected_publisher_ends_it(
    mosquitto: Mosquitto, tmp_path: Path, outbox: Outbox
) -> None:
    """Cancellation (e.g. the agent's TaskGroup failing) ends run() mid-session, not just a
    request_stop(). (When aiomqtt turns the cancellation into an MqttError, run() re-raises it
    as a cancellation; this test does not force that timing.)"""
    publisher = Publisher(edge_settings(mosquitto, tmp_path), outbox)
    for round_ in range(5):
        task = asyncio.create_task(publisher.run())
        await wait_until(lambda: publisher.connected, f"connected (round {round_})")
        await add(outbox, publisher, 1, f"R{round_}")  # a publish may be in flight
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=20)
        assert done == {task}, f"round {round_}: run() outlived its cancellation"
        assert task.cancelled()
