"""Publishes the outbox to the broker in TxnBatches and applies the aggregator's acks.

One aiomqtt client per connection. The last will is a retained offline EdgeStatus; the birth
is a retained online EdgeStatus, re-published every `status_interval_s` and at once when the
outbox becomes full or stops being full. Unacked batches are bounded (`inflight_batches_max`)
and every publish is awaited, so paho's own in-flight window is never overrun (it drops
silently). A batch whose ack has not come within `ack_timeout_s` goes back to pending and is
re-published; on every (re)connect everything pending is replayed. The aggregator is
idempotent by txn id.
"""

import asyncio
import contextlib
import logging
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
from stockwire.ack import Ack
from stockwire.status import DeviceStatus, EdgeState, EdgeStatus
from stockwire.topics import EdgeChannel, edge_topic
from stockwire.txn import StockTransaction, TxnBatch

log = logging.getLogger(__name__)

DeviceStates = Callable[[], dict[str, DeviceStatus]]


@dataclass
class PublisherStats:
    connects: int = 0
    connect_failures: int = 0
    batches_sent: int = 0
    txns_sent: int = 0
    acks: int = 0
    malformed_acks: int = 0
    ack_timeouts: int = 0


@dataclass
class _Sent:
    ids: set[UUID]
    deadline: float  # loop time


@dataclass
class _Inflight:
    """Batches published and not fully acked yet, keyed by a local batch number."""

    batches: dict[int, _Sent] = field(default_factory=dict)
    sent: int = 0

    def ids(self) -> frozenset[UUID]:
        return frozenset(i for sent in self.batches.values() for i in sent.ids)

    def add(self, ids: set[UUID], deadline: float) -> None:
        self.sent += 1
        self.batches[self.sent] = _Sent(ids, deadline)

    def acked(self, ids: set[UUID]) -> None:
        for number, sent in list(self.batches.items()):
            sent.ids -= ids
            if not sent.ids:
                del self.batches[number]

    def expire(self, now: float) -> int:
        late = [n for n, sent in self.batches.items() if sent.deadline <= now]
        for number in late:
            del self.batches[number]
        return len(late)

    def next_deadline(self) -> float | None:
        return min((s.deadline for s in self.batches.values()), default=None)


class Publisher:
    def __init__(
        self,
        settings: EdgeSettings,
        outbox: Outbox,
        devices: DeviceStates | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._settings = settings
        self._outbox = outbox
        self._devices = devices or dict
        self._clock = clock or utc_now
        self._wake = asyncio.Event()
        self._acked = asyncio.Event()
        self._stopping = asyncio.Event()
        self._inflight = _Inflight()
        self.connected = False
        self.stats = PublisherStats()

    def topic(self, channel: EdgeChannel) -> str:
        return edge_topic(self._settings.site, self._settings.edge, channel)

    def wake(self) -> None:
        """New rows are in the outbox: publish them soon."""
        self._wake.set()

    def request_stop(self) -> None:
        """Publish a retained offline status (if connected), disconnect, and end `run`."""
        self._stopping.set()

    async def run(self) -> None:
        """Connect, publish, reconnect with jittered backoff; return after `request_stop`."""
        pub = self._settings.publisher
        backoff = Backoff(pub.reconnect_min_s, pub.reconnect_max_s)
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
        tls = None
        if mqtt.tls:
            tls = aiomqtt.TLSParameters(ca_certs=str(mqtt.ca_file) if mqtt.ca_file else None)
        return aiomqtt.Client(
            mqtt.host,
            mqtt.port,
            username=mqtt.username,
            password=mqtt.password.get_secret_value() if mqtt.password else None,
            identifier=self._settings.client_id,
            clean_session=False,  # acks sent while we were away are queued by the broker
            will=will,
            keepalive=mqtt.keepalive_s,
            timeout=self._settings.publisher.ack_timeout_s,
            tls_params=tls,
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
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(self._receive(client)),
                    tg.create_task(self._send(client)),
                    tg.create_task(self._heartbeat(client)),
                ]
                await self._stopping.wait()
                for task in tasks:
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
            self._inflight.acked({r.id for r in ack.results})
            self.stats.acks += 1
            self._acked.set()

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

    async def _send(self, client: aiomqtt.Client) -> None:
        pub = self._settings.publisher
        loop = asyncio.get_running_loop()
        while True:
            expired = self._inflight.expire(loop.time())
            if expired:
                self.stats.ack_timeouts += expired
                log.warning(
                    "%d batch(es) not acked within %ss: re-sending", expired, pub.ack_timeout_s
                )
            if len(self._inflight.batches) >= pub.inflight_batches_max:
                self._acked.clear()
                await self._wait(self._acked, self._inflight.next_deadline())
                continue
            txns = await self._next_batch()
            if not txns:
                await self._wait(self._wake, self._inflight.next_deadline())
                continue
            await self._publish_batch(client, txns, loop.time() + pub.ack_timeout_s)

    async def _next_batch(self) -> list[StockTransaction]:
        pub = self._settings.publisher
        self._wake.clear()
        txns = await self._outbox.pending(pub.batch_txns_max, self._inflight.ids())
        if txns and len(txns) < pub.batch_txns_max and pub.linger_ms > 0:
            await asyncio.sleep(pub.linger_ms / 1000)  # let the batch fill a little
            txns = await self._outbox.pending(pub.batch_txns_max, self._inflight.ids())
        return txns

    async def _publish_batch(
        self, client: aiomqtt.Client, txns: list[StockTransaction], deadline: float
    ) -> None:
        batch = TxnBatch(edge=self._settings.edge, sent_at=self._clock(), txns=tuple(txns))
        # In flight before the publish: the ack can arrive before the PUBACK does.
        self._inflight.add({t.id for t in txns}, deadline)
        await client.publish(self.topic(EdgeChannel.TXN), batch.model_dump_json(), qos=1)
        self.stats.batches_sent += 1
        self.stats.txns_sent += len(txns)

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
