"""Subscribe to every edge of the site, post each TxnBatch, then ack and republish.

Per message, in arrival order: the edge's rate limit, size, topic, schema (strict, as the JSON
Schema), topic edge == payload edge, known edge. A message over its edge's rate is refused
(counted by edge, alerted); any other failure is kept as a dead letter and alerted. A valid
batch is posted in one database transaction; its Ack is published only after commit.

Nothing is discarded under a flood: every QoS 1 message is acknowledged to the broker only once
it is posted, dead-lettered, refused or recorded (aggregator.acks), and the broker sends no more
than our in-flight window, so the rest waits at the broker. While the database is down, writes
are retried with backoff and the stream waits there too.
"""

import asyncio
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import aiomqtt
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from aggregator import dead_letters, edges, mqtt
from aggregator.acks import InOrderAcks, Ticket
from aggregator.dead_letters import Letter
from aggregator.ledger import GroupPosting, Ledger, NegativeBalance, Outcome, Posting
from aggregator.ledger.ledger import GROUP_TXNS_MAX
from aggregator.ledger.reorder import LowStock
from aggregator.metrics import AggregatorMetrics
from aggregator.rate_limit import AlertThrottle, EdgeRateLimit
from aggregator.settings import AggregatorSettings
from aggregator.telemetry import measure
from aggregator.telemetry.points import Point, from_sample
from aggregator.telemetry.sink import TelemetrySink
from aggregator.writer import Work, Writer
from stockwire import logs
from stockwire.ack import Ack, AckStatus
from stockwire.config import describe
from stockwire.events import Alert, AlertKind, LedgerEvents, Severity
from stockwire.status import EdgeState, EdgeStatus
from stockwire.tasks import cancelling
from stockwire.telemetry import TelemetryBatch
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
T = TypeVar("T")
M = TypeVar("M", TxnBatch, EdgeStatus, TelemetryBatch)

RECONNECT_DELAY_MIN_S = 0.2
ALERT_MESSAGE_CHARS_MAX = 500
# Group commit: at most this many received messages go into one DB transaction.
GROUP_MESSAGES_MAX = 200
# A batch that fails to post this often while the database answers is kept as a dead letter.
POST_ATTEMPTS_MAX = 3
FAULT_EXIT_CODE = 70  # fault_exit_after_commits
REJECTED_LOGGED_MAX = 20  # per group commit, one line each; the rest in one line
_CHANNELS = frozenset(EdgeChannel)


class IngestRejectError(Exception):
    """A message that is not valid input; the message text is the dead-letter reason."""


@dataclass(slots=True)
class IngestStats:
    connected: bool = False
    batches: int = 0
    txns: int = 0
    dead_letters: int = 0
    post_failures: int = 0
    write_failures: int = 0
    reconnects: int = 0
    messages: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, outcome)
    txn_statuses: Counter[str] = field(default_factory=Counter)  # of committed batches

    def posted(self, results: list[list[Outcome]]) -> None:
        """Committed batches, with each one's outcomes."""
        for outcomes in results:
            statuses = Counter(o.status.value for o in outcomes)
            self.txn_statuses.update(statuses)
            every_one_duplicate = statuses[AckStatus.DUPLICATE.value] == len(outcomes)
            self.messages["txn", "duplicate" if every_one_duplicate else "posted"] += 1


@dataclass(slots=True)
class _Batch:
    batch: TxnBatch
    ticket: Ticket
    topic: str
    payload: bytes  # kept as a dead letter if the batch cannot be posted
    arrived: float  # time.monotonic() when the MQTT client received it (ack latency)
    received: datetime


@dataclass(slots=True)
class _Group:
    """One group of received messages, sorted by what is done with them."""

    batches: list[_Batch] = field(default_factory=list)
    letters: list[tuple[Letter, str, Ticket]] = field(default_factory=list)  # + edge key
    statuses: list[tuple[EdgeTopic, EdgeStatus | None, Ticket]] = field(default_factory=list)
    telemetry: list[TelemetryBatch] = field(default_factory=list)  # only with a sink


class Ingest:
    def __init__(
        self,
        settings: AggregatorSettings,
        writer: Writer,
        ledger: Ledger,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        jitter: Callable[[], float] = random.random,
        metrics: AggregatorMetrics | None = None,
        sink: TelemetrySink | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.ledger = ledger
        # Off (None): ingest neither subscribes to telemetry nor builds a single point.
        self.sink = sink
        assert sink is None or ledger.stock_levels, "the sink needs the ledger's stock levels"
        self.clock = clock
        self.jitter = jitter
        self.stats = IngestStats()
        self.metrics = metrics or AggregatorMetrics()
        self.limits = EdgeRateLimit(settings.rate_limit)
        self.throttle = AlertThrottle(
            settings.rate_limit.alert_interval_s, settings.rate_limit.edges_max
        )
        self.flow = mqtt.Flow(settings.mqtt.incoming_messages_max)
        self.ready = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        # Publishes of acks, ledger events and alerts not confirmed by the broker yet. Not
        # awaited where messages are handled: while ingest stops reading the socket their
        # PUBACKs cannot arrive. Bounded by the messages handled while reading is paused.
        self._sending: set[asyncio.Task[None]] = set()

    def refused(self) -> Mapping[str, int]:
        """Messages refused since start (over the rate limit), by edge."""
        return dict(self.limits.refused)

    def publishing(self) -> int:
        """Acks, ledger events and alerts published and not confirmed by the broker yet."""
        return len(self._sending)

    async def republish(self, posting: Posting) -> None:
        """Announce movements committed outside ingest (review approvals, reversals).

        Best effort: while the broker is away they are not queued; subscribers catch up with
        GET /movements?after=<last id they saw>.
        """
        movements = posting.movements
        if not movements:
            return
        if self.sink is not None:
            site, at = self.settings.site, movements[0].committed_at
            self._measure(
                lambda: [
                    *measure.movements(site, movements, (), at, edge=measure.API_EDGE),
                    *measure.stock_levels(site, posting.levels, at),
                ]
            )
        if self._client is None:
            log.warning("not connected: %d movement(s) not republished", len(movements))
            return
        events = LedgerEvents(site=self.settings.site, movements=tuple(movements))
        topic = site_topic(self.settings.site, SiteChannel.LEDGER)
        try:
            await self._client.publish(topic, events.model_dump_json(), qos=1)
        except aiomqtt.MqttError as e:
            log.warning("%d movement(s) not republished: %s", len(movements), e)
        for low in posting.low_stock:
            self._alert(self._client, _low_stock_alert(self.settings.site, low, self.clock()))

    async def run(self) -> None:
        """Forever: connect, subscribe, consume; on a lost connection, back off and reconnect."""
        failures = 0
        broker = self._broker()
        while True:
            connected = False
            try:
                async with mqtt.client(self.settings.mqtt, self.flow) as client:
                    await self._subscribe(client)
                    connected = True
                    failures = 0
                    self.stats.connected = True
                    self._client = client
                    self.ready.set()
                    log.info("mqtt: connected to %s, subscribed to the site's edges", broker)
                    await self._consume(client)
            except aiomqtt.MqttError as e:
                if cancelling():
                    raise asyncio.CancelledError from e
                self.stats.connected = False
                failures += 1
                self.stats.reconnects += 1
                delay_s = self._backoff_s(failures)
                what = "lost the connection to" if connected else "cannot connect to"
                log.warning("mqtt: %s %s: %s; reconnecting in %.1fs", what, broker, e, delay_s)
                await asyncio.sleep(delay_s)
                log.info("mqtt: reconnecting to %s (attempt %d)", broker, failures)
            except asyncio.CancelledError:
                log.info("mqtt: the aggregator is stopping; leaving %s", broker)
                raise
            finally:
                self.stats.connected = False
                self._client = None
                for task in self._sending:
                    task.cancel()  # the connection they were queued on is gone

    def _broker(self) -> str:
        conf = self.settings.mqtt
        user = conf.username or "anonymous"
        return f"mqtt{'s' if conf.tls else ''}://{conf.host}:{conf.port} as {user}"

    def _backoff_s(self, failures: int) -> float:
        cap_s = self.settings.mqtt.reconnect_delay_max_s
        base_s = min(cap_s, RECONNECT_DELAY_MIN_S * 2 ** min(failures, 16))
        return float(base_s * (0.5 + self.jitter() / 2))

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        shared = self.settings.mqtt.shared_subscription
        for channel in (EdgeChannel.TXN, EdgeChannel.STATUS):
            await client.subscribe(edge_filter(channel, self.settings.site, shared), qos=1)
        if self.sink is not None:  # QoS 0, as the edges publish it: may be lost, never waits
            telemetry = edge_filter(EdgeChannel.TELEMETRY, self.settings.site, shared)
            await client.subscribe(telemetry, qos=0)

    async def _consume(self, client: aiomqtt.Client) -> None:
        """Sort and record the next group while the writer thread commits the one before.

        Whatever has already arrived goes into one group (one database transaction); the acks
        of a group go out after its commit, and groups commit in arrival order.
        """
        acks = InOrderAcks(lambda message: mqtt.ack(client, message))
        messages = client.messages
        posting: asyncio.Task[None] | None = None
        try:
            async for first in messages:
                received = [first]
                while len(messages) > 0 and len(received) < GROUP_MESSAGES_MAX:
                    received.append(await anext(messages))
                group = self._sort(received, acks)
                if group.telemetry:
                    self._offer_samples(group.telemetry)
                await self._record(client, group)
                if posting is not None:
                    await posting
                    posting = None
                if group.batches:
                    posting = asyncio.create_task(self._post_all(client, group.batches))
        finally:
            if posting is not None:
                # Lost connection: no ack now. The broker sends the unacknowledged messages
                # again and the batches that did commit are answered "duplicate".
                posting.cancel()
                await asyncio.gather(posting, return_exceptions=True)

    def _sort(self, received: list[aiomqtt.Message], acks: InOrderAcks) -> _Group:
        group = _Group()
        now = self.clock()
        for message in received:
            ticket = acks.track(message)
            arrived = self.flow.received_at(message)
            topic = message.topic.value
            edge = _edge_level(topic)
            if not self.limits.allow(edge):
                self.stats.messages[_channel_level(topic), "refused"] += 1
                self._note_refused(edge, topic)
                ticket.done()
                continue
            payload = _raw(message.payload)
            try:
                where = self._where(topic)
                if where.channel is EdgeChannel.TXN:
                    batch = self._parse(TxnBatch, where, payload)
                    group.batches.append(_Batch(batch, ticket, topic, payload, arrived, now))
                elif where.channel is EdgeChannel.STATUS:
                    status = self._parse(EdgeStatus, where, payload) if payload else None
                    group.statuses.append((where, status, ticket))  # None: a cleared retained one
                elif where.channel is EdgeChannel.TELEMETRY:
                    ticket.done()  # QoS 0: nothing to acknowledge, nothing to wait for
                    if self.sink is not None:  # else not subscribed to
                        group.telemetry.append(self._parse(TelemetryBatch, where, payload))
                        self.stats.messages[EdgeChannel.TELEMETRY.value, "recorded"] += 1
            except IngestRejectError as e:
                group.letters.append((Letter(topic, str(e), payload, now), edge, ticket))
        return group

    def _offer_samples(self, batches: list[TelemetryBatch]) -> None:
        site = self.settings.site
        self._measure(lambda: [from_sample(site, b.edge, s) for b in batches for s in b.samples])

    def _measure(self, build: Callable[[], list[Point]]) -> None:
        """Hand points to the sink. A bug in building them is logged, never raised into
        ingest: telemetry must not cost a posting or an ack."""
        assert self.sink is not None
        try:
            points = build()
        except Exception:
            log.exception("telemetry: building points failed; they are not written")
            return
        self.sink.offer(points)

    def _note_refused(self, edge: str, topic: str) -> None:
        if self.throttle.due("refused", edge) is None:
            return  # logged and alerted once per alert_interval_s
        count = self.limits.refused[self.limits.key(edge)]
        log.warning("edge %r is over its rate limit (%s): %d refused so far", edge, topic, count)
        alert = Alert(
            site=self.settings.site,
            kind=AlertKind.RATE_LIMITED,
            severity=Severity.WARNING,
            at=self.clock(),
            message=f"edge {edge[:64]!r} is over its rate limit: {count} message(s) refused",
            subject={"topic": topic[:200], "refused": str(count)},
        )
        if self._client is not None:
            self._alert(self._client, alert)

    async def _record(self, client: aiomqtt.Client, group: _Group) -> None:
        """Dead letters and reported states of one group: one write, then alerts, then acks."""
        if not group.letters and not group.statuses:
            return
        letters = [letter for letter, _, _ in group.letters]
        site, now = self.settings.site, self.clock()
        prefix_max = self.settings.dead_letter_payload_bytes_max
        states = [(w.edge, s.state.value) for w, s, _ in group.statuses if s is not None]

        def work(conn: sa.Connection) -> tuple[list[int], list[str | None]]:
            ids = dead_letters.keep(conn, letters, prefix_max)
            before = [edges.record_state(conn, site, edge, state, now) for edge, state in states]
            return ids, before

        ids, before = await self._write(work)
        self.stats.dead_letters += len(ids)
        if self.sink is not None:
            self._measure(lambda: self._record_points(group, now))
        for (letter, edge, ticket), letter_id in zip(group.letters, ids, strict=True):
            self.stats.messages[_channel_level(letter.topic), "dead_letter"] += 1
            self._dead_letter_alert(client, letter, edge, letter_id)
            ticket.done()
        reported = [(w, s) for w, s, _ in group.statuses if s is not None]
        for (where, status), was in zip(reported, before, strict=True):
            if status.state is EdgeState.OFFLINE and was != EdgeState.OFFLINE.value:
                self._alert(client, _offline_alert(site, where.edge, self.clock()))
        for _, _, ticket in group.statuses:
            self.stats.messages[EdgeChannel.STATUS.value, "recorded"] += 1
            ticket.done()

    def _record_points(self, group: _Group, now: datetime) -> list[Point]:
        site = self.settings.site
        points = [measure.dead_letter(site, e, letter.topic, now) for letter, e, _ in group.letters]
        for where, status, _ in group.statuses:
            if status is not None:
                points.append(measure.edge_status(site, where.edge, status, now))
        return points

    async def _write(self, work: Work[T]) -> T:
        """Run on the writer thread; while the database fails, retry with backoff. The
        messages wait unacknowledged meanwhile, and the broker holds the rest."""
        failures = 0
        while True:
            try:
                return await self.writer.run(work)
            except (SQLAlchemyError, OSError) as e:
                failures += 1
                self.stats.write_failures += 1
                delay_s = self._backoff_s(failures)
                log.warning("database write failed (%s); retrying in %.1fs", e, delay_s)
                await asyncio.sleep(delay_s)

    async def _post_all(self, client: aiomqtt.Client, batches: list[_Batch]) -> None:
        for chunk in _chunks(batches, GROUP_TXNS_MAX):
            await self._post(client, chunk)

    async def _post(self, client: aiomqtt.Client, chunk: list[_Batch]) -> None:
        try:
            group = await self.ledger.post_many([b.batch for b in chunk])
        except Exception as e:
            # Alone, a batch that cannot post cannot hold up the others.
            if len(chunk) > 1:
                for one in chunk:
                    await self._post(client, [one])
                return
            await self._post_alone(client, chunk[0], e)
            return
        await self._posted(client, chunk, group)

    async def _post_alone(self, client: aiomqtt.Client, one: _Batch, error: Exception) -> None:
        """Retry one failing batch with backoff. While the database is down it waits (and the
        stream with it); if the database answers and this batch still fails, it is kept as a
        dead letter (no Ack: the edge publishes it again after its ack timeout)."""
        failures = 0
        while True:
            failures += 1
            self.stats.post_failures += 1
            log.error(
                "posting a batch of %d from %s failed",
                len(one.batch.txns),
                one.topic,
                exc_info=error,
                extra=logs.about((t.id for t in one.batch.txns), one.batch.edge),
            )
            if failures >= POST_ATTEMPTS_MAX and await self._database_answers():
                reason = f"posting failed {failures} times: {error!r}"
                letter = Letter(one.topic, reason, one.payload, self.clock())
                group = _Group(letters=[(letter, one.batch.edge, one.ticket)])
                await self._record(client, group)
                return
            await asyncio.sleep(self._backoff_s(failures))
            try:
                posted = await self.ledger.post_many([one.batch])
            except Exception as e:
                error = e
                continue
            await self._posted(client, [one], posted)
            return

    async def _database_answers(self) -> bool:
        try:
            await self.writer.run(lambda conn: conn.execute(sa.select(1)).scalar())
        except (SQLAlchemyError, OSError):
            return False
        return True

    async def _posted(
        self, client: aiomqtt.Client, chunk: list[_Batch], group: GroupPosting
    ) -> None:
        self.stats.batches += len(chunk)
        self.stats.txns += sum(len(b.batch.txns) for b in chunk)
        self.stats.posted(group.results)
        self.metrics.committed(len(b.batch.txns) for b in chunk)
        self._fault_exit()
        _log_rejected(chunk, group)
        if self.sink is not None:
            self._measure(lambda: self._posted_points(chunk, group))
        self._announce(client, chunk, group)
        for one in chunk:
            one.ticket.done()

    def _posted_points(self, chunk: list[_Batch], group: GroupPosting) -> list[Point]:
        site = self.settings.site
        at = group.movements[0].committed_at if group.movements else self.clock()
        received = [
            measure.Received(
                b.batch.edge,
                len(b.batch.txns),
                [o.status for o in outcomes],
                (b.received - b.batch.sent_at).total_seconds(),
            )
            for b, outcomes in zip(chunk, group.results, strict=True)
        ]
        return [
            *measure.stock_levels(site, group.levels, at),
            *measure.movements(site, group.movements, group.pending, at),
            *measure.posting_delays(site, group.movements, at),
            *measure.ingest(site, received, at),
        ]

    def _fault_exit(self) -> None:
        """Test-only (settings.fault_exit_after_commits): die between commit and ack."""
        commits_max = self.settings.fault_exit_after_commits
        if commits_max is not None and self.stats.batches >= commits_max:
            log.critical("fault injection: exiting after %d commit(s), before the ack", commits_max)
            os._exit(FAULT_EXIT_CODE)

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

    def _parse(self, model: type[M], where: EdgeTopic, payload: bytes) -> M:
        """A TxnBatch or EdgeStatus from a known edge, no larger than payload_bytes_max, that
        names the edge of its topic."""
        self._check_known(where.edge)
        size_max = self.settings.payload_bytes_max
        if len(payload) > size_max:
            raise IngestRejectError(f"payload is {len(payload)} bytes, max {size_max}")
        try:
            parsed = model.model_validate_json(payload)
        except ValidationError as e:
            raise IngestRejectError(describe(e, model.__name__)) from None
        if parsed.edge != where.edge:
            raise IngestRejectError(
                f"payload edge {parsed.edge!r} does not match topic edge {where.edge!r}"
            )
        return parsed

    def _announce(self, client: aiomqtt.Client, chunk: list[_Batch], group: GroupPosting) -> None:
        """Acks first, then the movements, then alerts, one after another on the wire."""
        site = self.settings.site
        outgoing: list[tuple[str, str]] = []
        for one, outcomes in zip(chunk, group.results, strict=True):
            edge = one.batch.edge
            ack = _ack(edge, outcomes, self.clock())
            outgoing.append((edge_topic(site, edge, EdgeChannel.ACK), ack.model_dump_json()))
            self.metrics.ack_seconds.observe(time.monotonic() - one.arrived)
        if group.movements:
            events = LedgerEvents(site=site, movements=tuple(group.movements))
            outgoing.append((site_topic(site, SiteChannel.LEDGER), events.model_dump_json()))
        for topic, payload in outgoing:
            self._send(client, topic, payload)
        for negative in group.negatives:
            self._alert(client, _negative_alert(site, negative, self.clock()))
        for low in group.low_stock:
            self._alert(client, _low_stock_alert(site, low, self.clock()))

    def _dead_letter_alert(
        self, client: aiomqtt.Client, letter: Letter, edge: str, letter_id: int
    ) -> None:
        held = self.throttle.due("dead_letter", edge)
        if held is None:
            if log.isEnabledFor(logging.DEBUG):
                about = logs.about(_txn_ids(letter.payload), edge)
                why = (letter_id, letter.topic, letter.reason)
                log.debug("dead letter %d from %s: %s", *why, extra=about)
            return
        log.warning(
            "dead letter %d from %s: %s%s",
            letter_id,
            letter.topic,
            letter.reason,
            f" ({held} more from this edge since the last warning)" if held else "",
            extra=logs.about(_txn_ids(letter.payload), edge),
        )
        more = f" (and {held} more since the last alert)" if held else ""
        alert = Alert(
            site=self.settings.site,
            kind=AlertKind.DEAD_LETTER,
            severity=Severity.WARNING,
            at=self.clock(),
            message=(letter.reason[: ALERT_MESSAGE_CHARS_MAX - len(more)] + more),
            subject={"topic": letter.topic[:200], "dead_letter_id": str(letter_id)},
        )
        self._alert(client, alert)

    def _alert(self, client: aiomqtt.Client, alert: Alert) -> None:
        topic = site_topic(self.settings.site, SiteChannel.ALERTS)
        self._send(client, topic, alert.model_dump_json())
        if self.sink is not None:
            self._measure(lambda: [measure.alert(self.settings.site, alert)])

    def _send(self, client: aiomqtt.Client, topic: str, payload: str) -> None:
        """Publish (QoS 1) without waiting for the broker's PUBACK here. If the connection
        fails first, an Ack is lost with it: the edge publishes the batch again and gets
        "duplicate"."""
        task = asyncio.get_running_loop().create_task(client.publish(topic, payload, qos=1))
        self._sending.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: "asyncio.Task[None]") -> None:
        self._sending.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.warning("a publish failed: %s", error)


def _offline_alert(site: str, edge: str, at: datetime) -> Alert:
    return Alert(
        site=site,
        kind=AlertKind.DEVICE_OFFLINE,
        severity=Severity.WARNING,
        at=at,
        message=f"edge {edge} went offline",
        edge=edge,
    )


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


def _low_stock_alert(site: str, low: LowStock, at: datetime) -> Alert:
    """Raised once when an item's stock falls below its reorder point; cleared (info) when it
    is back (aggregator/ledger/reorder.py keeps which are raised)."""
    item = low.sku or low.gtin or "?"
    if low.location is not None:  # a reorder point at one location
        item = f"{item} at {low.location}"
    subject = {"qty": str(low.qty), "reorder_point": str(low.reorder_point)}
    named = (("sku", low.sku), ("gtin", low.gtin), ("location", low.location))
    subject |= {k: v for k, v in named if v}
    subject["state"] = "raised" if low.raised else "cleared"
    verb = "below" if low.raised else "back at or above"
    return Alert(
        site=site,
        kind=AlertKind.LOW_STOCK,
        severity=Severity.WARNING if low.raised else Severity.INFO,
        at=at,
        message=f"{item}: {low.qty} on hand, {verb} the reorder point {low.reorder_point}",
        subject=subject,
    )


def _ack(edge: str, outcomes: list[Outcome], at: datetime) -> Ack:
    # Validating plain dicts in one call is a few times cheaper than an AckResult per txn.
    results = [{"id": o.id, "status": o.status, "reason": o.reason} for o in outcomes]
    return Ack.model_validate({"edge": edge, "acked_at": at, "results": results})


def _chunks(batches: list[_Batch], txns_max: int) -> list[list[_Batch]]:
    chunks: list[list[_Batch]] = []
    size = txns_max
    for one in batches:
        if size + len(one.batch.txns) > txns_max:
            chunks.append([])
            size = 0
        chunks[-1].append(one)
        size += len(one.batch.txns)
    return chunks


def _edge_level(topic: str) -> str:
    """The {edge} level of stockwire/v1/{site}/{edge}/{channel}, whatever it holds."""
    parts = topic.split("/", 4)
    return parts[3] if len(parts) > 3 else "(no edge level)"


def _log_rejected(chunk: list[_Batch], group: GroupPosting) -> None:
    rejected = [
        (o, one.batch.edge)
        for one, outcomes in zip(chunk, group.results, strict=True)
        for o in outcomes
        if o.status is AckStatus.REJECTED
    ]
    for outcome, edge in rejected[:REJECTED_LOGGED_MAX]:
        about = logs.about(outcome.id, edge)
        log.warning("txn %s from %s rejected: %s", outcome.id, edge, outcome.reason, extra=about)
    if len(rejected) > REJECTED_LOGGED_MAX:
        log.warning("and %d more rejected in this commit", len(rejected) - REJECTED_LOGGED_MAX)


def _txn_ids(payload: bytes) -> list[str]:
    """The txn ids a dead-lettered payload names, if it is JSON enough to tell (for logs)."""
    try:
        txns = json.loads(payload).get("txns")
        return [t["id"] for t in txns if isinstance(t["id"], str)]
    except (ValueError, TypeError, KeyError, AttributeError):
        return []


def _channel_level(topic: str) -> str:
    """The {channel} level of an edge topic if it is one of ours, else "other"."""
    channel = topic.rsplit("/", 1)[-1]
    return channel if channel in _CHANNELS else "other"


def _raw(payload: object) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode()
