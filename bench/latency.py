"""Edge emit -> outbox -> mosquitto -> aggregator commit -> ack applied at the edge, per txn.

The real edge Outbox and Publisher run in this process; mosquitto and `stockwire aggregator`
(SQLite ledger) run in their own processes. Transactions are emitted open-loop at a steady
rate: every due draft is handed to the outbox (one `add` per tick, as a recognizer stage does),
and its latency runs from its due time to the moment the outbox has applied its ack. The first
`--warmup-s` seconds are not counted. Acks are observed by a subclass of the real Outbox
(`apply_ack`), so the edge needs no hook. `--breakdown` adds an observer client that times
each leg on the broker.

    python bench/latency.py [--rate 1000] [--seconds 10] [--warmup-s 2] [--breakdown]
                            [--linger-ms 20] [--inflight 4]   (defaults: the edge's own)
"""

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import aggregator_process, figure, gtin14, percentile, verdict
from edge_agent.outbox import Outbox
from edge_agent.publisher import Publisher
from edge_agent.recognizers.base import TxnDraft
from edge_agent.settings import (
    EdgeSettings,
    MqttSettings,
    OutboxSettings,
    PublisherSettings,
)
from simulators.mosquitto import Mosquitto
from stockwire import topics
from stockwire.ack import Ack
from stockwire.txn import TxnBatch, TxnKind

SITE = "bench"
EDGE = "bench-lat"
P99_MS_MAX = 30.0
TICK_S = 0.001
ACKS_WAIT_S = 60.0


@dataclass
class Clocks:
    """Per txn id: when it was due (emitted), when it was handed to the outbox, when acked."""

    due: dict[UUID, float] = field(default_factory=dict)
    handed: dict[UUID, float] = field(default_factory=dict)
    acked: dict[UUID, float] = field(default_factory=dict)
    # With --breakdown: when an observer client saw the txn's batch / its ack on the broker.
    published: dict[UUID, float] = field(default_factory=dict)
    ack_sent: dict[UUID, float] = field(default_factory=dict)
    all_acked: asyncio.Event = field(default_factory=asyncio.Event)
    expected: int = 0


class TimedOutbox(Outbox):
    """The real outbox; notes when each ack has been applied (rows deleted, committed)."""

    clocks: Clocks

    async def apply_ack(self, ack: Ack) -> int:
        removed = await super().apply_ack(ack)
        now = time.perf_counter()
        for result in ack.results:
            self.clocks.acked.setdefault(result.id, now)
        if self.clocks.expected and len(self.clocks.acked) >= self.clocks.expected:
            self.clocks.all_acked.set()
        return removed


def draft(i: int) -> TxnDraft:
    return TxnDraft(
        device="bench",
        kind=TxnKind.RECEIPT,
        qty=1,
        occurred_at=datetime.now(UTC),
        gtin=gtin14(i % 1000),
        to_location=f"DOCK-{i % 4}",
    )


async def emit(outbox: TimedOutbox, publisher: Publisher, rate: float, total: int) -> None:
    """Open loop: whatever is due is handed over at once, however long the last add took."""
    clocks = outbox.clocks
    start = time.perf_counter()
    sent = 0
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * rate) + 1)
        if due > sent:
            made = await outbox.add([draft(i) for i in range(sent, due)])
            for i, txn in enumerate(made, start=sent):
                clocks.due[txn.id] = start + i / rate
                clocks.handed[txn.id] = now
            sent = due
            publisher.wake()
        await asyncio.sleep(TICK_S)


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
) -> Clocks:
    edge = settings(port, work / "outbox.sqlite", publisher_settings)
    outbox = await TimedOutbox.open(edge.outbox.path, EDGE, edge.outbox.rows_max)
    outbox.clocks = Clocks(expected=total)
    try:
        publisher = Publisher(edge, outbox)
        async with asyncio.TaskGroup() as tg:
            if breakdown:
                ready = asyncio.Event()
                observer = tg.create_task(observe(port, outbox.clocks, ready))
                await ready.wait()
            publishing = tg.create_task(publisher.run())
            await emit(outbox, publisher, rate, total)
            try:
                await asyncio.wait_for(outbox.clocks.all_acked.wait(), ACKS_WAIT_S)
            finally:
                publisher.request_stop()
                await publishing
                if breakdown:
                    observer.cancel()
    finally:
        await outbox.close()
    return outbox.clocks


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
        ("  due -> handed to the outbox", clocks.due, clocks.handed),
        ("  handed -> batch on the broker", clocks.handed, clocks.published),
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
        f"latency: {len(clocks.due)} receipts at {rate:,.0f} txn/s offered, "
        f"first {warmup_s:g} s not counted ({len(from_due)} measured)"
    )
    print(
        f"edge publisher: linger_ms={pub.linger_ms} inflight_batches_max="
        f"{pub.inflight_batches_max} batch_txns_max={pub.batch_txns_max}"
    )
    print("emit -> outbox -> broker -> aggregator commit -> ack applied at the edge")
    for p in (50, 90, 99):
        figure(f"  p{p}", f"{percentile(from_due, p):.1f} ms")
    p99 = percentile(from_due, 99)
    figure("  max", f"{from_due[-1]:.1f} ms" if from_due else "nan")
    figure("  target p99", f"<= {P99_MS_MAX:g} ms", verdict(p99 <= P99_MS_MAX))
    figure(
        "  p50 / p99 from hand-over to outbox",
        f"{percentile(from_handed, 50):.1f} / {percentile(from_handed, 99):.1f} ms",
    )
    figure(
        "  p50 / p99 hand-over -> commit",
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
            cpu0, agg_cpu0, wall0 = time.process_time(), agg.cpu_s(), time.perf_counter()
            clocks = asyncio.run(run(broker.port, work, args.rate, total, pub, args.breakdown))
            wall = time.perf_counter() - wall0
            cpu = {
                "edge (this process)": time.process_time() - cpu0,
                "aggregator": agg.cpu_s() - agg_cpu0,
            }
        warmup_s = min(args.warmup_s, args.seconds / 2)
        commits = commit_delays_ms(agg.db, began + timedelta(seconds=warmup_s))
    report(clocks, args.rate, warmup_s, pub, commits)
    for name, seconds in cpu.items():
        figure(f"  CPU {name}", f"{seconds / wall:.0%} of a core")


if __name__ == "__main__":
    main()
