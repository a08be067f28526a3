"""Publishes the outbox to the broker in TxnBatches and applies the aggregator's acks.

One aiomqtt client per connection. The last will is a retained offline EdgeStatus; the birth
is a retained online EdgeStatus, re-published every `status_interval_s` and at once when the
outbox becomes full or stops being full.

The outbox is read as a stream by seq: what `add` has just stored comes from memory, SQLite is
read only after a (re)connect, an ack timeout, or when that memory overflowed. A batch that is
not full waits (as in Nagle's algorithm) only while an earlier batch awaits its ack, and at
most `linger_ms` after the previous batch.

Batches are published without waiting for the previous PUBACK, but unacked batches and
unconfirmed publishes are each bounded by `inflight_batches_max`, paho's own in-flight window
is sized to match, and every publish is awaited in its own task (a failure ends the
connection). A batch whose ack has not come within `ack_timeout_s` is re-read and
re-published; on every (re)connect everything pending is replayed. The aggregator is
idempotent by txn id.

Telemetry (when a SampleQueue is given) goes at QoS 0 on the same connection from its own task:
one TelemetryBatch of at most `telemetry.batch_samples_max` samples at a time, the next only
once paho has written the previous, so it never holds more than one batch ahead of the
transactions in paho's queue and never waits on them. Its failure ends the connection like any
other publish failure; samples taken for a batch that fails are lost (QoS 0 anyway).
"""

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

import aiomqtt
from pydantic import ValidationError

import stockwire
from edge_agent.backoff import Backoff
from edge_agent.outbox import Outbox, utc_now
from edge_agent.recognizers.base import Clock
from edge_agent.settings import EdgeSettings
from edge_agent.telemetry_queue import SampleQueue, payloads
from stockwire.ack import Ack
from stockwire.broker_config import MESSAGE_BYTES_MAX
from stockwire.status import DeviceStatus, EdgeState, EdgeStatus
from stockwire.tasks import cancelling
from stockwire.topics import EdgeChannel, edge_topic
from stockwire.txn import StockTransaction, TxnBatch

log = logging.getLogger(__name__)

DeviceStates = Callable[[], dict[str, DeviceStatus]]

# paho leaves Nagle on: a batch written while our PUBACK for an ack is still unacknowledged
# by the broker's TCP waits for its delayed ACK (~25-40 ms on Linux).
_NO_DELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
STATUS_PUBLISHES_MAX = 1  # status publishes awaiting a PUBACK at once (heartbeat or birth)


@dataclass
class PublisherStats:
    connects: int = 0
    connect_failures: int = 0
    batches_sent: int = 0
    txns_sent: int = 0
    acks: int = 0
    malformed_acks: int = 0
    ack_timeouts: int = 0
    outbox_reads: int = 0  # batches read from SQLite rather than taken from memory
    telemetry_batches: int = 0
    telemetry_samples: int = 0


@dataclass
class Latencies:
    """Batch published -> fully acked, in ms, since the collector last drained it."""

    count: int = 0
    sum_ms: float = 0.0
    max_ms: float = 0.0

    def add(self, ms: float) -> None:
        self.count += 1
        self.sum_ms += ms
        self.max_ms = max(self.max_ms, ms)

    def drain(self) -> "Latencies":
        taken = Latencies(self.count, self.sum_ms, self.max_ms)
        self.count, self.sum_ms, self.max_ms = 0, 0.0, 0.0
        return taken


@dataclass
class _Sent:
    ids: set[UUID]
    first_seq: int
    deadline: float  # loop time
    published_at: float  # loop time


@dataclass
class _Inflight:
    """Batches published and not fully acked yet, keyed by a local batch number."""

    batches: dict[int, _Sent] = field(default_factory=dict)
    sent: int = 0

    def ids(self) -> frozenset[UUID]:
        return frozenset(i for sent in self.batches.values() for i in sent.ids)

    def add(self, txns: list[StockTransaction], deadline: float, now: float) -> None:
        self.sent += 1
        self.batches[self.sent] = _Sent({t.id for t in txns}, txns[0].seq, deadline, now)

    def acked(self, ids: set[UUID]) -> list[_Sent]:
        """Forget `ids`; the batches now fully acked."""
        done = []
        for number, sent in list(self.batches.items()):
            sent.ids -= ids
            if not sent.ids:
                done.append(self.batches.pop(number))
        return done

    def expire(self, now: float) -> list[_Sent]:
        late = [n for n, sent in self.batches.items() if sent.deadline <= now]
        return [self.batches.pop(number) for number in late]

    def next_deadline(self) -> float | None:
        return min((s.deadline for s in self.batches.values()), default=None)


class Publisher:
    def __init__(
        self,
        settings: EdgeSettings,
        outbox: Outbox,
        devices: DeviceStates | None = None,
        clock: Clock | None = None,
        telemetry: SampleQueue | None = None,
    ) -> None:
        self._settings = settings
        self._outbox = outbox
        self._telemetry = telemetry
        self._devices = devices or dict
        self._clock = clock or utc_now
        self._changed = asyncio.Event()  # rows added, a batch acked or a publish confirmed
        self._stopping = asyncio.Event()
        # Per connection, reset by _connected:
        self._inflight = _Inflight()
        self._publishing: set[asyncio.Task[None]] = set()
        self._next_seq = 0  # rows below it are acked or in flight on this connection
        self._last_batch_at = -math.inf  # loop time
        self.connected = False
        self.stats = PublisherStats()
        self.latencies = Latencies()

    def topic(self, channel: EdgeChannel) -> str:
        return edge_topic(self._settings.site, self._settings.edge, channel)

    def wake(self) -> None:
        """New rows are in the outbox: publish them soon."""
        self._changed.set()

    def request_stop(self) -> None:
        """Publish a retained offline status (if connected), disconnect, and end `run`."""
        self._stopping.set()

    async def run(self) -> None:
        """Connect, publish, reconnect with jittered backoff; return after `request_stop`."""
        pub = self._settings.publisher
        backoff = Backoff(pub.reconnect_min_s, pub.reconnect_max_s)
        if (mismatch := self._settings.login_mismatch()) is not None:
            log.warning(mismatch)
        while not self._stopping.is_set():
            if await self._attempt():
                backoff.reset()
            if self._stopping.is_set():
                return
            delay = backoff.next_s()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def _attempt(self) -> bool:
        """One connection's life; True if it got connected at all."""
        connects = self.stats.connects
        try:
            await self._session()
        except* aiomqtt.MqttError as group:
            if cancelling():
                raise asyncio.CancelledError from group
            log.warning(
                "mqtt %s:%d: %s",
                self._settings.mqtt.host,
                self._settings.mqtt.port,
                group.exceptions[0],
            )
        finally:
            self.connected = False
        if self.stats.connects == connects:
            self.stats.connect_failures += 1
            return False
        return True

    def _status(self, state: EdgeState, with_rows: bool) -> bytes:
        status = EdgeStatus(
            edge=self._settings.edge,
            state=state,
            at=self._clock(),
            version=stockwire.__version__,
            outbox_rows=self._outbox.count() if with_rows else None,
            outbox_rows_max=self._outbox.rows_max,
            outbox_full=self._outbox.full if with_rows else False,
            devices=self._devices() if with_rows else {},
        )
        return status.model_dump_json().encode()

    def _client(self) -> aiomqtt.Client:
        mqtt = self._settings.mqtt
        will = aiomqtt.Will(
            self.topic(EdgeChannel.STATUS),
            self._status(EdgeState.OFFLINE, with_rows=False),
            qos=1,
            retain=True,
        )
        return aiomqtt.Client(
            mqtt.host,
            mqtt.port,
            socket_options=[_NO_DELAY],
            max_inflight_messages=self._settings.publisher.inflight_batches_max
            + STATUS_PUBLISHES_MAX,
            username=mqtt.username,
            password=mqtt.password_text(),
            identifier=self._settings.client_id,
            clean_session=False,  # acks sent while we were away are queued by the broker
            will=will,
            keepalive=mqtt.keepalive_s,
            timeout=self._settings.publisher.ack_timeout_s,
            tls_context=mqtt.tls_context(),
        )

    async def _session(self) -> None:
        client = self._client()
        try:
            await self._connected(client)
        finally:
            _retrieve_disconnect(client)

    async def _connected(self, client: aiomqtt.Client) -> None:
        async with client:
            self.stats.connects += 1
            self.connected = True
            log.info("mqtt connected to %s:%d", self._settings.mqtt.host, self._settings.mqtt.port)
            await client.subscribe(self.topic(EdgeChannel.ACK), qos=1)
            await self._publish_status(client, EdgeState.ONLINE)
            self._inflight = _Inflight()  # replay everything pending
            self._publishing = set()
            self._next_seq = 0
            self._last_batch_at = -math.inf
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._receive(client)),
                    tg.create_task(self._send(client, tg)),
                    tg.create_task(self._heartbeat(client)),
                ]
                if self._telemetry is not None:
                    tasks.append(tg.create_task(self._send_telemetry(client, self._telemetry)))
                await self._stopping.wait()
                for task in [*tasks, *self._publishing]:  # unconfirmed rows stay stored
                    task.cancel()
            await self._publish_status(client, EdgeState.OFFLINE)

    async def _publish_status(self, client: aiomqtt.Client, state: EdgeState) -> None:
        payload = self._status(state, with_rows=True)  # the will alone goes without
        await client.publish(self.topic(EdgeChannel.STATUS), payload, qos=1, retain=True)

    async def _heartbeat(self, client: aiomqtt.Client) -> None:
        """A status every status_interval_s, and at once when the outbox fills or frees up."""
        changed = self._outbox.full_changed
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.publisher.status_interval_s):
                    await changed.wait()
            changed.clear()  # before reading `full`: a flip after this sets it again
            await self._publish_status(client, EdgeState.ONLINE)
            if cancelling():  # Python 3.11's wait_for (in publish) can swallow a cancel
                raise asyncio.CancelledError

    async def _receive(self, client: aiomqtt.Client) -> None:
        ack_topic = self.topic(EdgeChannel.ACK)
        async for message in client.messages:
            if message.topic.value != ack_topic:
                log.warning("ignoring message on unexpected topic %s", message.topic.value)
                continue
            ack = self._parse_ack(message.payload)
            if ack is None:
                continue
            await self._outbox.apply_ack(ack)  # rows go first, so they are never re-sent
            now = asyncio.get_running_loop().time()
            for sent in self._inflight.acked({r.id for r in ack.results}):
                self.latencies.add((now - sent.published_at) * 1000)
            self.stats.acks += 1
            self._changed.set()

    def _parse_ack(self, payload: object) -> Ack | None:
        data = payload if isinstance(payload, bytes | bytearray | str) else repr(payload)
        try:
            ack = Ack.model_validate_json(data)
        except ValidationError as e:
            self.stats.malformed_acks += 1
            log.warning("malformed ack on %s (dropped): %s", self.topic(EdgeChannel.ACK), e)
            return None
        if ack.edge != self._settings.edge:
            self.stats.malformed_acks += 1
            log.warning("ack names edge %r, this is %r (dropped)", ack.edge, self._settings.edge)
            return None
        return ack

    async def _send(self, client: aiomqtt.Client, tg: asyncio.TaskGroup) -> None:
        while True:
            self._expire()
            if self._window_full():
                self._changed.clear()
                await self._wait(self._changed, self._inflight.next_deadline())
                continue
            txns = await self._next_batch()
            if not txns:
                await self._wait(self._changed, self._inflight.next_deadline())
                continue
            self._start_publish(client, tg, txns)

    def _expire(self) -> None:
        expired = self._inflight.expire(asyncio.get_running_loop().time())
        if not expired:
            return
        self.stats.ack_timeouts += len(expired)
        # Read those rows again (from SQLite): everything from the oldest on not in flight.
        self._next_seq = min(self._next_seq, *(sent.first_seq for sent in expired))
        log.warning(
            "%d batch(es) not acked within %ss: re-sending",
            len(expired),
            self._settings.publisher.ack_timeout_s,
        )

    def _window_full(self) -> bool:
        window = self._settings.publisher.inflight_batches_max
        return len(self._inflight.batches) >= window or len(self._publishing) >= window

    async def _next_batch(self) -> list[StockTransaction]:
        """Up to batch_txns_max of the oldest rows not in flight; [] when there are none."""
        limit = self._settings.publisher.batch_txns_max
        self._changed.clear()
        if self._outbox.unsent_count(self._next_seq) == 0:
            return []
        await self._linger()
        txns = self._outbox.take_unsent(self._next_seq, limit)
        if txns is None:  # not all in memory: read on from SQLite
            page = await self._outbox.read(self._next_seq, limit, self._inflight.ids())
            self.stats.outbox_reads += 1
            self._next_seq = page.next_seq
            return page.txns
        if txns:
            self._next_seq = txns[-1].seq + 1
        return txns

    async def _linger(self) -> None:
        """Nagle: a batch that is not full goes at once when no batch awaits its ack; otherwise
        it fills until the acks are in, it is full, or linger_ms after the previous batch.

        So batches follow the aggregator's pace: small and prompt when it answers fast,
        bigger (fewer, cheaper for it) when it is busy, and never held past linger_ms."""
        pub = self._settings.publisher
        until = self._last_batch_at + pub.linger_ms / 1000
        loop = asyncio.get_running_loop()
        while self._inflight.batches and loop.time() < until:
            ready = self._outbox.unsent_count(self._next_seq)
            if ready is None or ready >= pub.batch_txns_max:
                return
            self._changed.clear()
            await self._wait(self._changed, until)

    def _start_publish(
        self, client: aiomqtt.Client, tg: asyncio.TaskGroup, txns: list[StockTransaction]
    ) -> None:
        loop = asyncio.get_running_loop()
        batch = TxnBatch(edge=self._settings.edge, sent_at=self._clock(), txns=tuple(txns))
        # In flight before the publish: the ack can arrive before the PUBACK does.
        now = loop.time()
        self._inflight.add(txns, now + self._settings.publisher.ack_timeout_s, now)
        self._last_batch_at = loop.time()
        task = tg.create_task(self._publish_batch(client, batch.model_dump_json(), len(txns)))
        self._publishing.add(task)
        task.add_done_callback(self._published)

    async def _publish_batch(self, client: aiomqtt.Client, payload: str, txns: int) -> None:
        """One batch until its PUBACK; a failure fails the connection's TaskGroup."""
        await client.publish(self.topic(EdgeChannel.TXN), payload, qos=1)
        self.stats.batches_sent += 1
        self.stats.txns_sent += txns

    async def _send_telemetry(self, client: aiomqtt.Client, queue: SampleQueue) -> None:
        """Queued samples at QoS 0, a batch at a time; never touches the transaction path."""
        topic = self.topic(EdgeChannel.TELEMETRY)
        limit = self._settings.telemetry.batch_samples_max
        while True:
            if not len(queue):
                queue.ready.clear()
                await queue.ready.wait()
                continue
            samples = queue.take(limit)
            for payload in payloads(self._settings.edge, samples, MESSAGE_BYTES_MAX):
                await client.publish(topic, payload, qos=0)
            self.stats.telemetry_batches += 1
            self.stats.telemetry_samples += len(samples)

    def _published(self, task: "asyncio.Task[None]") -> None:
        self._publishing.discard(task)
        self._changed.set()

    @staticmethod
    async def _wait(event: asyncio.Event, deadline: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await event.wait()


def _retrieve_disconnect(client: aiomqtt.Client) -> None:
    """aiomqtt 2.x leaves its disconnect error unretrieved when a publish fails first, and
    asyncio then logs 'Future exception was never retrieved'; we have logged it already."""
    disconnected = getattr(client, "_disconnected", None)
    if not isinstance(disconnected, asyncio.Future) or not disconnected.done():
        return
    if not disconnected.cancelled():
        disconnected.exception()
