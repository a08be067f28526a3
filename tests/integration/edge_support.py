"""Test helpers for the edge pipeline: an in-memory source, a tiny recognizer and a stand-in
aggregator (a plain aiomqtt client that answers each TxnBatch with an Ack)."""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import aiomqtt

from edge_agent.readings import Reading, Scan
from edge_agent.recognizers.base import Output, Rejected, State, TxnDraft
from edge_agent.settings import EdgeSettings
from simulators.mosquitto import Mosquitto
from stockwire.ack import Ack, AckResult, AckStatus
from stockwire.status import DeviceState, DeviceStatus, EdgeStatus
from stockwire.tasks import cancelling
from stockwire.topics import EdgeChannel, edge_filter, edge_topic
from stockwire.txn import StockTransaction, TxnBatch, TxnKind

SITE = "site1"
EDGE = "edge1"
WAIT_S = 20.0


def now() -> datetime:
    return datetime.now(UTC)


def edge_settings(broker: Mosquitto, tmp_path: Path, **publisher: object) -> EdgeSettings:
    return EdgeSettings(
        site=SITE,
        edge=EDGE,
        mqtt={"host": broker.host, "port": broker.port, "keepalive_s": 5},
        outbox={"path": tmp_path / "outbox.sqlite", "rows_max": 10_000},
        publisher={"reconnect_min_s": 0.05, "reconnect_max_s": 0.5, **publisher},
        tick_ms=50,
    )


def draft(sku: str = "SKU-1", qty: int = 1, device: str = "scan1") -> TxnDraft:
    return TxnDraft(
        device=device,
        kind=TxnKind.RECEIPT,
        qty=qty,
        occurred_at=now(),
        sku=sku,
        to_location="A-01-01",
    )


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, timeout_s: float = WAIT_S
) -> None:
    """Bounded poll: no timing assertions, only 'eventually, within a generous limit'."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


class MemorySource:
    """A Source fed by the test through `put`; a batch is whatever has been put meanwhile."""

    def __init__(self, device: str) -> None:
        self.device = device
        self._queue: asyncio.Queue[Reading] = asyncio.Queue()

    def put(self, raw: str) -> None:
        self._queue.put_nowait(Scan(self.device, raw, now()))

    async def batches(self) -> AsyncIterator[list[Reading]]:
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            yield batch

    def status(self) -> DeviceStatus:
        return DeviceStatus(kind="memory", state=DeviceState.UP)


class LineRecognizer:
    """'SKU qty' lines -> receipts into A-01-01; 'BAD ...' -> Rejected; 'BOOM' raises.

    'HOLD sku' is held until the next tick (exercises tick)."""

    def __init__(self) -> None:
        self._held: list[TxnDraft] = []

    def feed(self, reading: Reading) -> Sequence[Output]:
        assert isinstance(reading, Scan)
        word, _, rest = reading.raw.partition(" ")
        if word == "BOOM":
            raise RuntimeError("recognizer bug")
        if word == "BAD":
            return [Rejected(reading.device, reading.raw, "bad line", reading.at)]
        if word == "HOLD":
            self._held.append(_receipt(reading, rest, 1))
            return []
        return [_receipt(reading, word, int(rest or 1))]

    def tick(self) -> Sequence[Output]:
        held, self._held = self._held, []
        return held

    def snapshot(self) -> State:
        return {"held": [[d.device, d.sku, d.occurred_at.isoformat()] for d in self._held]}

    def restore(self, state: State) -> None:
        self._held = [
            _receipt(Scan(device, "", datetime.fromisoformat(at)), sku, 1)
            for device, sku, at in state["held"]
        ]


def _receipt(reading: Reading, sku: str, qty: int) -> TxnDraft:
    return TxnDraft(
        device=reading.device,
        kind=TxnKind.RECEIPT,
        qty=qty,
        occurred_at=reading.at,
        sku=sku,
        to_location="A-01-01",
    )


@dataclass
class Aggregator:
    """Answers every TxnBatch with an Ack (accepted, or duplicate for an id seen before)."""

    broker: Mosquitto
    reject: set[str] = field(default_factory=set)  # skus to reject
    answering: asyncio.Event = field(default_factory=asyncio.Event)
    received: list[StockTransaction] = field(default_factory=list)
    accepted: dict[UUID, StockTransaction] = field(default_factory=dict)
    raw_before_ack: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.answering.set()

    async def run(self) -> None:
        while True:
            try:
                await self._session()
            except aiomqtt.MqttError as e:
                if cancelling():  # else this loop would outlive its cancellation
                    raise asyncio.CancelledError from e
            await asyncio.sleep(0.1)

    async def _session(self) -> None:
        client = aiomqtt.Client(
            self.broker.host, self.broker.port, identifier="test-aggregator", clean_session=False
        )
        try:
            await self._serve(client)
        finally:
            _retrieve_disconnect(client)

    async def _serve(self, client: aiomqtt.Client) -> None:
        async with client:
            await client.subscribe(edge_filter(EdgeChannel.TXN, SITE), qos=1)
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                await self.answering.wait()
                batch = TxnBatch.model_validate_json(message.payload)
                ack = Ack(edge=batch.edge, acked_at=now(), results=self._results(batch))
                await client.publish(
                    edge_topic(SITE, batch.edge, EdgeChannel.ACK), ack.model_dump_json(), qos=1
                )
                if cancelling():  # Python 3.11's wait_for (in publish) can swallow a cancel
                    raise asyncio.CancelledError

    def _results(self, batch: TxnBatch) -> tuple[AckResult, ...]:
        results = []
        for txn in batch.txns:
            self.received.append(txn)
            if txn.sku in self.reject:
                results.append(AckResult(id=txn.id, status=AckStatus.REJECTED, reason="no"))
            elif txn.id in self.accepted:
                results.append(AckResult(id=txn.id, status=AckStatus.DUPLICATE))
            else:
                self.accepted[txn.id] = txn
                results.append(AckResult(id=txn.id, status=AckStatus.ACCEPTED))
        return tuple(results)


def _retrieve_disconnect(client: aiomqtt.Client) -> None:
    """aiomqtt leaves the disconnect error unretrieved when a publish fails first; asyncio
    would log 'Future exception was never retrieved' at GC."""
    disconnected = client._disconnected
    if disconnected.done() and not disconnected.cancelled():
        disconnected.exception()


@contextlib.asynccontextmanager
async def running(coro: Awaitable[None]) -> AsyncIterator[asyncio.Task[None]]:
    """Run a coroutine as a task for the block; cancel it afterwards (re-raising its failure)."""
    task = asyncio.ensure_future(coro)
    try:
        yield task
    finally:
        if task.done():
            task.result()
        task.cancel()
        await asyncio.wait({task}, timeout=WAIT_S)
        if not task.done():
            raise AssertionError(f"{task!r} did not stop within {WAIT_S}s of cancel")
        if not task.cancelled():
            task.result()


async def retained_status(broker: Mosquitto, timeout_s: float = WAIT_S) -> EdgeStatus:
    """The retained status of EDGE as a new subscriber sees it."""
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.subscribe(edge_topic(SITE, EDGE, EdgeChannel.STATUS), qos=1)
        async with asyncio.timeout(timeout_s):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                return EdgeStatus.model_validate_json(message.payload)
    raise AssertionError("no retained status")
