"""Edge reading -> journal -> recognizer -> outbox -> mosquitto -> aggregator commit -> ack
applied at the edge, per transaction.

The real edge pipeline (run_pipeline: journal, ScanRecognizer stage, outbox, publisher, one
SQLite file with group commit) runs in this process, fed by an in-process source; mosquitto
and `stockwire aggregator` (SQLite ledger) run in their own processes. Readings (one distinct
GTIN-14 receipt each, after SW:MODE:RECEIVE and SW:LOC:DOCK-1) are due open-loop at a steady
rate: the source hands over everything due as one batch whenever the pump asks (after the
previous batch's journal commit), and a transaction's latency runs from its reading's due time
to the moment the outbox has applied its ack. The first `--warmup-s` seconds are not counted.
Acks are observed by a subclass of the real Outbox (`add`, `apply_ack`), so the edge needs no
hook. `--breakdown` adds an observer client that times each leg on the broker.

    python bench/latency.py [--rate 1000] [--seconds 10] [--warmup-s 2] [--breakdown]
                            [--linger-ms 20] [--inflight 4]   (defaults: the edge's own)
"""

import argparse
import asyncio
import dataclasses
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import aggregator_process, figure, gtin14, percentile, verdict
from device_profiles import ScannerProfile, load_profile_of
from edge_agent.agent import run_pipeline
from edge_agent.journal import Journal
from edge_agent.outbox import Along, Outbox, utc_now
from edge_agent.readings import Reading, Scan
from edge_agent.recognizers.base import Rejected, TxnDraft
from edge_agent.recognizers.scan import ScanRecognizer
from edge_agent.settings import (
    EdgeSettings,
    MqttSettings,
    OutboxSettings,
    PublisherSettings,
)
from edge_agent.store import Store
from simulators.mosquitto import Mosquitto
from stockwire import topics
from stockwire.ack import Ack
from stockwire.status import DeviceState, DeviceStatus
from stockwire.txn import StockTransaction, TxnBatch

SITE = "bench"
EDGE = "bench-lat"
DEVICE = "bench-scanner"
P99_MS_MAX = 30.0
TICK_S = 0.001
ACKS_WAIT_S = 60.0
SETUP = ("SW:MODE:RECEIVE", "SW:LOC:DOCK-1")


@dataclass
class Clocks:
    """Per txn id: when its reading was due, when it was stored in the outbox, when acked."""

    due: dict[UUID, float] = field(default_factory=dict)
    handed: dict[UUID, float] = field(default_factory=dict)
    acked: dict[UUID, float] = field(default_factory=dict)
    # With --breakdown: when an observer client saw the txn's batch / its ack on the broker.
    published: dict[UUID, float] = field(default_factory=dict)
    ack_sent: dict[UUID, float] = field(default_factory=dict)
    all_acked: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0
    due_of_raw: dict[str, float] = field(default_factory=dict)  # filled by the source
    cpu_s: dict[str, float] = field(default_factory=dict)  # from the first reading to the last ack
    wall_s: float = float("nan")
    commits: int = 0
    durable_commits: int = 0


class TimedOutbox(Outbox):
    """The real outbox; notes when each txn was stored and when its ack has been applied."""

    clocks: Clocks

    async def add(
        self,
        drafts: Sequence[TxnDraft],
        *,
        rejected: Sequence[Rejected] = (),
        along: Along | None = None,
    ) -> list[StockTransaction]:
        made = await super().add(drafts, rejected=rejected, along=along)
        now = time.perf_counter()
        for txn in made:
            self.clocks.handed[txn.id] = now
            self.clocks.due[txn.id] = self.clocks.due_of_raw[txn.evidence.raw or ""]
        return made

    async def apply_ack(self, ack: Ack) -> int:
        removed = await super().apply_ack(ack)
        now = time.perf_counter()
        for result in ack.results:
            self.clocks.acked.setdefault(result.id, now)
        if self.clocks.expected and len(self.clocks.acked) >= self.clocks.expected:
            self.clocks.all_acked.set()
        return removed


class SteadySource:
    """Readings due open-loop at `rate`; each pull takes everything due as one batch."""

    device = DEVICE

    def __init__(self, clocks: Clocks, rate: float, total: int) -> None:
        self.clocks = clocks
        self.rate = rate
        self.total = total
        self.done = asyncio.Event()

    async def batches(self) -> AsyncIterator[list[Reading]]:
        yield [Scan(DEVICE, raw, datetime.now(UTC)) for raw in SETUP]
        start = time.perf_counter()
        sent = 0
        while sent < self.total:
            due = min(self.total, int((time.perf_counter() - start) * self.rate) + 1)
            if due == sent:
                await asyncio.sleep(TICK_S)
                continue
            at = datetime.now(UTC)
            batch: list[Reading] = []
            for i in range(sent, due):
                raw = gtin14(i)
                self.clocks.due_of_raw[raw] = start + i / self.rate
                batch.append(Scan(DEVICE, raw, at))
            sent = due
            yield batch
        self.done.set()
        await asyncio.Event().wait()

    def status(self) -> DeviceStatus:
        return DeviceStatus(kind="bench", state=DeviceState.UP)


def settings(port: int, outbox: Path, publisher: PublisherSettings) -> EdgeSettings:
    return EdgeSettings(
        site=SITE,
        edge=EDGE,
        mqtt=MqttSettings(port=port),
        outbox=OutboxSettings(path=outbox),
        publisher=publisher,
    )


async def observe(port: int, clocks: Clocks, ready: asyncio.Event) -> None:
    """A third client on the edge's txn and ack topics: when each crossed the broker."""
    txn_topic = topics.edge_topic(SITE, EDGE, topics.EdgeChannel.TXN)
    ack_topic = topics.edge_topic(SITE, EDGE, topics.EdgeChannel.ACK)
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-observer") as client:
        await client.subscribe(txn_topic, qos=0)
        await client.subscribe(ack_topic, qos=0)
        ready.set()
        async for message in client.messages:
            now = time.perf_counter()
            payload = message.payload
            assert isinstance(payload, bytes), type(payload)
            if message.topic.value == txn_topic:
                for txn in TxnBatch.model_validate_json(payload).txns:
                    clocks.published.setdefault(txn.id, now)
            else:
                for result in Ack.model_validate_json(payload).results:
                    clocks.ack_sent.setdefault(result.id, now)


async def run(
    port: int,
    work: Path,
    rate: float,
    total: int,
    publisher_settings: PublisherSettings,
    breakdown: bool,
    aggregator_cpu_s: Callable[[], float],
) -> Clocks:
    edge = settings(port, work / "edge.sqlite", publisher_settings)
    clocks = Clocks(expected=total)
    source = SteadySource(clocks, rate, total)
    recognizer = ScanRecognizer(
        DEVICE, load_profile_of("generic-tcp-scanner", ScannerProfile), utc_now
    )
    store = await Store.open(edge.outbox.path)
    try:
        outbox = await TimedOutbox.open(edge.outbox.path, EDGE, edge.outbox.rows_max, store=store)
        outbox.clocks = clocks
        journal = await Journal.open(store, [DEVICE], edge.queue_readings_max, utc_now)
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            if breakdown:
                ready = asyncio.Event()
                observer = tg.create_task(observe(port, clocks, ready))
                await ready.wait()
            pipeline = run_pipeline(edge, [(source, recognizer)], outbox, journal, stop, utc_now)
            running = tg.create_task(pipeline)
            cpu0, agg0, wall0 = os.times(), aggregator_cpu_s(), time.perf_counter()
            stats0 = dataclasses.replace(store.stats)
            try:
                await asyncio.wait_for(clocks.all_acked.wait(), total / rate + ACKS_WAIT_S)
                clocks.wall_s = time.perf_counter() - wall0
                cpu1 = os.times()
                clocks.cpu_s["edge (this process)"] = (
                    cpu1.user + cpu1.system - cpu0.user - cpu0.system
                )
                clocks.cpu_s["  of which system"] = cpu1.system - cpu0.system
                clocks.cpu_s["aggregator"] = aggregator_cpu_s() - agg0
                clocks.commits = store.stats.commits - stats0.commits
                clocks.durable_commits = store.stats.durable_commits - stats0.durable_commits
            finally:
                stop.set()
                await running
                if breakdown:
                    observer.cancel()
    finally:
        await store.close()
    return clocks


def latencies_ms(clocks: Clocks, since: dict[UUID, float], warm_from: float) -> list[float]:
    return spans_ms(clocks, since, clocks.acked, warm_from)


def spans_ms(
    clocks: Clocks, since: dict[UUID, float], until: dict[UUID, float], warm_from: float
) -> list[float]:
    return sorted(
        (until[i] - since[i]) * 1000
        for i, due in clocks.due.items()
        if due >= warm_from and i in until and i in since
    )


def report_breakdown(clocks: Clocks, warm_from: float) -> None:
    print("breakdown (an observer client on the broker; p50 / p99):")
    stages = [
        ("  due -> stored in the outbox", clocks.due, clocks.handed),
        ("  stored -> batch on the broker", clocks.handed, clocks.published),
        ("  batch on broker -> ack on broker", clocks.published, clocks.ack_sent),
        ("  ack on broker -> ack applied", clocks.ack_sent, clocks.acked),
    ]
    for label, since, until in stages:
        spans = spans_ms(clocks, since, until, warm_from)
        figure(label, f"{percentile(spans, 50):.1f} / {percentile(spans, 99):.1f} ms")


def commit_delays_ms(ledger: Path, warm_from: datetime) -> list[float]:
    """Hand-over (occurred_at, set when the draft is made) -> commit, from the ledger itself."""
    db = sqlite3.connect(ledger)
    try:
        rows = db.execute("SELECT occurred_at, committed_at FROM transactions").fetchall()
    finally:
        db.close()
    stamps = [(_utc(a), _utc(b)) for a, b in rows if b is not None]
    return sorted((b - a).total_seconds() * 1000 for a, b in stamps if a >= warm_from)


def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def report(
    clocks: Clocks, rate: float, warmup_s: float, pub: PublisherSettings, commits: list[float]
) -> None:
    start = min(clocks.due.values())
    warm_from = start + warmup_s
    from_due = latencies_ms(clocks, clocks.due, warm_from)
    from_handed = latencies_ms(clocks, clocks.handed, warm_from)
    print(
        f"latency: {len(clocks.due)} receipts at {rate:,.0f} readings/s offered, "
        f"first {warmup_s:g} s not counted ({len(from_due)} measured)"
    )
    print(
        f"edge publisher: linger_ms={pub.linger_ms} inflight_batches_max="
        f"{pub.inflight_batches_max} batch_txns_max={pub.batch_txns_max}"
    )
    print(
        "reading due -> journal -> recognizer -> outbox -> broker -> aggregator commit"
        " -> ack applied at the edge"
    )
    for p in (50, 90, 99):
        figure(f"  p{p}", f"{percentile(from_due, p):.1f} ms")
    p99 = percentile(from_due, 99)
    figure("  max", f"{from_due[-1]:.1f} ms" if from_due else "nan")
    figure("  target p99", f"<= {P99_MS_MAX:g} ms", verdict(p99 <= P99_MS_MAX))
    figure(
        "  p50 / p99 from outbox to ack",
        f"{percentile(from_handed, 50):.1f} / {percentile(from_handed, 99):.1f} ms",
    )
    stored = spans_ms(clocks, clocks.due, clocks.handed, warm_from)
    figure(
        "  p50 / p99 due -> stored in outbox",
        f"{percentile(stored, 50):.1f} / {percentile(stored, 99):.1f} ms",
        "(journal commit + stage commit)",
    )
    figure(
        "  p50 / p99 read -> ledger commit",
        f"{percentile(commits, 50):.1f} / {percentile(commits, 99):.1f} ms",
        "(from the ledger's occurred_at, committed_at)",
    )
    lost = len(clocks.due) - len(clocks.acked)
    figure("  not acked", str(lost))
    if clocks.published:
        report_breakdown(clocks, warm_from)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="offered txn/s")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup-s", type=float, default=2.0)
    defaults = PublisherSettings()
    parser.add_argument("--linger-ms", type=int, default=defaults.linger_ms)
    parser.add_argument("--inflight", type=int, default=defaults.inflight_batches_max)
    parser.add_argument(
        "--breakdown", action="store_true", help="also time each leg with an observer client"
    )
    args = parser.parse_args()
    total = max(1, int(args.rate * args.seconds))
    pub = PublisherSettings(linger_ms=args.linger_ms, inflight_batches_max=args.inflight)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with (
            Mosquitto(work / "broker") as broker,
            aggregator_process(work, SITE, [EDGE], broker.port) as agg,
        ):
            began = datetime.now(UTC)
            clocks = asyncio.run(
                run(broker.port, work, args.rate, total, pub, args.breakdown, agg.cpu_s)
            )
        warmup_s = min(args.warmup_s, args.seconds / 2)
        commits = commit_delays_ms(agg.db, began + timedelta(seconds=warmup_s))
    report(clocks, args.rate, warmup_s, pub, commits)
    for name, seconds in clocks.cpu_s.items():
        per_txn_us = seconds / max(1, len(clocks.acked)) * 1e6
        figure(
            f"  CPU {name}", f"{seconds / clocks.wall_s:.0%} of a core", f"{per_txn_us:.0f} us/txn"
        )
    figure(
        "  edge SQLite commits",
        f"{clocks.commits / clocks.wall_s:,.0f}/s",
        f"({clocks.durable_commits / clocks.wall_s:,.0f}/s fsync'd)",
    )


if __name__ == "__main__":
    main()
