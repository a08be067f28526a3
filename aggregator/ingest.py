"""Subscribe to every edge of the site, post each TxnBatch, then ack and republish.

Per message: size check, topic, schema, topic edge == payload edge, known edge. Any failure is
kept as a dead letter (reason + raw bytes) and announced on the alerts topic; the loop goes on.
A valid batch is posted in one database transaction; the Ack is published only after commit.
"""

import asyncio
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiomqtt
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from aggregator import dead_letters, edges, mqtt
from aggregator.ledger import GroupPosting, Ledger, NegativeBalance, Outcome
from aggregator.ledger.ledger import GROUP_TXNS_MAX
from aggregator.settings import AggregatorSettings
from aggregator.writer import Writer
from stockwire.ack import Ack
from stockwire.config import describe
from stockwire.events import Alert, AlertKind, LedgerEvents, Movement, Severity
from stockwire.status import EdgeState, EdgeStatus
from stockwire.tasks import cancelling
from stockwire.topics import (
    EdgeChannel,
    EdgeTopic,
    SiteChannel,
    TopicError,
    edge_filter,
    edge_topic,
    parse_edge_topic,
    site_topic,
)
from stockwire.txn import TxnBatch

log = logging.getLogger(__name__)

RECONNECT_DELAY_MIN_S = 0.2
ALERT_MESSAGE_CHARS_MAX = 500
# Group commit: at most this many received messages go into one DB transaction.
GROUP_MESSAGES_MAX = 200
FAULT_EXIT_CODE = 70  # fault_exit_after_commits


class IngestRejectError(Exception):
    """A message that is not valid input; the message text is the dead-letter reason."""


@dataclass(slots=True)
class IngestStats:
    connected: bool = False
    batches: int = 0
    txns: int = 0
    dead_letters: int = 0
    post_failures: int = 0
    reconnects: int = 0


class Ingest:
    def __init__(
        self,
        settings: AggregatorSettings,
        writer: Writer,
        ledger: Ledger,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.ledger = ledger
        self.clock = clock
        self.jitter = jitter
        self.stats = IngestStats()
        self.ready = asyncio.Event()
        self._client: aiomqtt.Client | None = None

    async def republish(self, movements: list[Movement]) -> None:
        """Announce movements committed outside ingest (review approvals, reversals).

        Best effort: while the broker is away they are not queued; subscribers catch up with
        GET /movements?after=<last id they saw>.
        """
        if not movements:
            return
        if self._client is None:
            log.warning("not connected: %d movement(s) not republished", len(movements))
            return
        events = LedgerEvents(site=self.settings.site, movements=tuple(movements))
        topic = site_topic(self.settings.site, SiteChannel.LEDGER)
        try:
            await self._client.publish(topic, events.model_dump_json(), qos=1)
        except aiomqtt.MqttError as e:
            log.warning("%d movement(s) not republished: %s", len(movements), e)

    async def run(self) -> None:
        """Forever: connect, subscribe, consume; on a lost connection, back off and reconnect."""
        failures = 0
        while True:
            try:
                async with mqtt.client(self.settings.mqtt) as client:
                    await self._subscribe(client)
                    failures = 0
                    self.stats.connected = True
                    self._client = client
                    self.ready.set()
                    await self._consume(client)
            except aiomqtt.MqttError as e:
                if cancelling():
                    raise asyncio.CancelledError from e
                self.stats.connected = False
                failures += 1
                self.stats.reconnects += 1
                delay_s = self._backoff_s(failures)
                log.warning("mqtt: %s; reconnecting in %.1fs", e, delay_s)
                await asyncio.sleep(delay_s)
            finally:
                self.stats.connected = False
                self._client = None

    def _backoff_s(self, failures: int) -> float:
        cap_s = self.settings.mqtt.reconnect_delay_max_s
        base_s = min(cap_s, RECONNECT_DELAY_MIN_S * 2 ** min(failures, 16))
        return float(base_s * (0.5 + self.jitter() / 2))

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        shared = self.settings.mqtt.shared_subscription
        for channel in (EdgeChannel.TXN, EdgeChannel.STATUS):
            await client.subscribe(edge_filter(channel, self.settings.site, shared), qos=1)

    async def _consume(self, client: aiomqtt.Client) -> None:
        """Read and validate the next group while the writer thread commits the one before.

        Whatever has already arrived goes into one group (one database transaction); the acks
        of a group go out after its commit, and groups commit in arrival order.
        """
        messages = client.messages
        posting: asyncio.Task[None] | None = None
        try:
            async for first in messages:
                group = [first]
                while len(messages) > 0 and len(group) < GROUP_MESSAGES_MAX:
                    group.append(await anext(messages))
                batches = await self._validated(client, [(m.topic.value, m.payload) for m in group])
                if posting is not None:
                    await posting
                    posting = None
                if batches:
                    posting = asyncio.create_task(self._post_all(client, batches))
        finally:
            if posting is not None:
                # Lost connection: no ack now; the edges replay and get "duplicate" for any
                # batch that did commit.
                posting.cancel()
                await asyncio.gather(posting, return_exceptions=True)

    async def _validated(
        self, client: aiomqtt.Client, messages: list[tuple[str, object]]
    ) -> list[TxnBatch]:
        """The valid TxnBatches, in arrival order; the rest become dead letters, never raise."""
        batches: list[TxnBatch] = []
        for topic, raw in messages:
            payload = _raw(raw)
            try:
                where = self._where(topic)
                if where.channel is EdgeChannel.TXN:
                    batches.append(self._parse_batch(where, payload))
                elif where.channel is EdgeChannel.STATUS:
                    await self._on_status(client, where, payload)
            except IngestRejectError as e:
                await self._dead_letter(client, topic, str(e), payload)
            except (SQLAlchemyError, OSError):
                log.exception("recording the status on %s failed", topic)
        return batches

    async def _post_all(self, client: aiomqtt.Client, batches: list[TxnBatch]) -> None:
        for chunk in _chunks(batches, GROUP_TXNS_MAX):
            await self._post(client, chunk)

    def _where(self, topic: str) -> EdgeTopic:
        try:
            where = parse_edge_topic(topic)
        except TopicError as e:
            raise IngestRejectError(str(e)) from None
        if where.site != self.settings.site:
            raise IngestRejectError(f"topic {topic!r} is for site {where.site!r}")
        return where

    def _check_known(self, edge: str) -> None:
        if not self.settings.edge_known(edge):
            raise IngestRejectError(f"unknown edge {edge!r} (not in known_edges)")

    async def _post(self, client: aiomqtt.Client, batches: list[TxnBatch]) -> None:
        try:
            group = await self.ledger.post_many(batches)
        except Exception:
            # Not the edges' fault (database down, or a bug): no ack, so their outboxes replay
            # later. Alone, a batch that cannot post cannot hold up the others.
            if len(batches) > 1:
                for batch in batches:
                    await self._post(client, [batch])
                return
            self.stats.post_failures += 1
            log.exception(
                "posting a batch of %d from %s failed", len(batches[0].txns), batches[0].edge
            )
            return
        self.stats.batches += len(batches)
        self.stats.txns += sum(len(b.txns) for b in batches)
        self._fault_exit()
        await self._announce(client, batches, group)

    def _fault_exit(self) -> None:
        """Test-only (settings.fault_exit_after_commits): die between commit and ack."""
        commits_max = self.settings.fault_exit_after_commits
        if commits_max is not None and self.stats.batches >= commits_max:
            log.critical("fault injection: exiting after %d commit(s), before the ack", commits_max)
            os._exit(FAULT_EXIT_CODE)

    def _parse_batch(self, where: EdgeTopic, payload: bytes) -> TxnBatch:
        size_max = self.settings.payload_bytes_max
        if len(payload) > size_max:
            raise IngestRejectError(f"payload is {len(payload)} bytes, max {size_max}")
        try:
            batch = TxnBatch.model_validate_json(payload)
        except ValidationError as e:
            raise IngestRejectError(describe(e, "TxnBatch")) from None
        if batch.edge != where.edge:
            raise IngestRejectError(
                f"payload edge {batch.edge!r} does not match topic edge {where.edge!r}"
            )
        self._check_known(batch.edge)
        return batch

    async def _announce(
        self, client: aiomqtt.Client, batches: list[TxnBatch], group: GroupPosting
    ) -> None:
        """Acks first, then the movements, then alerts: one after another on the wire, but the
        PUBACKs are awaited together (one round trip per group, not one per message)."""
        site = self.settings.site
        outgoing: list[tuple[str, str]] = []
        for batch, outcomes in zip(batches, group.results, strict=True):
            ack = _ack(batch.edge, outcomes, self.clock())
            outgoing.append((edge_topic(site, batch.edge, EdgeChannel.ACK), ack.model_dump_json()))
        if group.movements:
            events = LedgerEvents(site=site, movements=tuple(group.movements))
            outgoing.append((site_topic(site, SiteChannel.LEDGER), events.model_dump_json()))
        alerts = site_topic(site, SiteChannel.ALERTS)
        for negative in group.negatives:
            alert = _negative_alert(site, negative, self.clock())
            outgoing.append((alerts, alert.model_dump_json()))
        await asyncio.gather(*(client.publish(t, p, qos=1) for t, p in outgoing))

    async def _on_status(self, client: aiomqtt.Client, where: EdgeTopic, payload: bytes) -> None:
        if not payload:
            return  # a cleared retained status
        self._check_known(where.edge)
        try:
            status = EdgeStatus.model_validate_json(payload)
        except ValidationError as e:
            raise IngestRejectError(describe(e, "EdgeStatus")) from None
        if status.edge != where.edge:
            raise IngestRejectError(
                f"status edge {status.edge!r} does not match topic edge {where.edge!r}"
            )
        site, state, now = self.settings.site, status.state.value, self.clock()
        before = await self.writer.run(
            lambda conn: edges.record_state(conn, site, where.edge, state, now)
        )
        if status.state is EdgeState.OFFLINE and before != EdgeState.OFFLINE.value:
            alert = Alert(
                site=self.settings.site,
                kind=AlertKind.DEVICE_OFFLINE,
                severity=Severity.WARNING,
                at=self.clock(),
                message=f"edge {where.edge} went offline",
                edge=where.edge,
            )
            await self._alert(client, alert)

    async def _dead_letter(
        self, client: aiomqtt.Client, topic: str, reason: str, payload: bytes
    ) -> None:
        self.stats.dead_letters += 1
        log.warning("dead letter from %s: %s", topic, reason)
        try:
            now = self.clock()
            letter_id = await self.writer.run(
                lambda conn: dead_letters.keep(conn, topic, reason, payload, now)
            )
        except SQLAlchemyError:
            log.exception("could not store a dead letter from %s", topic)
            return
        alert = Alert(
            site=self.settings.site,
            kind=AlertKind.DEAD_LETTER,
            severity=Severity.WARNING,
            at=self.clock(),
            message=reason[:ALERT_MESSAGE_CHARS_MAX],
            subject={"topic": topic[:200], "dead_letter_id": str(letter_id)},
        )
        await self._alert(client, alert)

    async def _alert(self, client: aiomqtt.Client, alert: Alert) -> None:
        topic = site_topic(self.settings.site, SiteChannel.ALERTS)
        await client.publish(topic, alert.model_dump_json(), qos=1)


def _negative_alert(site: str, negative: NegativeBalance, at: datetime) -> Alert:
    item = negative.sku or negative.gtin or "?"
    subject = {"location": negative.location, "qty": str(negative.qty)}
    subject |= {k: v for k, v in (("sku", negative.sku), ("gtin", negative.gtin)) if v}
    subject |= {"lot": negative.lot} if negative.lot else {}
    return Alert(
        site=site,
        kind=AlertKind.NEGATIVE_STOCK,
        severity=Severity.WARNING,
        at=at,
        message=f"{item} at {negative.location} is {negative.qty}",
        edge=negative.edge,
        subject=subject,
    )


def _ack(edge: str, outcomes: list[Outcome], at: datetime) -> Ack:
    # Validating plain dicts in one call is a few times cheaper than an AckResult per txn.
    results = [{"id": o.id, "status": o.status, "reason": o.reason} for o in outcomes]
    return Ack.model_validate({"edge": edge, "acked_at": at, "results": results})


def _chunks(batches: list[TxnBatch], txns_max: int) -> list[list[TxnBatch]]:
    chunks: list[list[TxnBatch]] = []
    size = txns_max
    for batch in batches:
        if size + len(batch.txns) > txns_max:
            chunks.append([])
            size = 0
        chunks[-1].append(batch)
        size += len(batch.txns)
    return chunks


def _raw(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()
