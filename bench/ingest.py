"""End-to-end ingest throughput vs a raw SQLite bulk insert of the same rows, in one run.

End to end: pre-built TxnBatch payloads -> mosquitto (QoS 1) -> `stockwire aggregator` (own
process) -> SQLite ledger (one DB transaction per batch) -> Ack back; timed from the first
publish to the last ack. Raw: the rows the aggregator wrote (every table), inserted with sqlite3
executemany into a fresh file with the same schema (copied from the ledger's sqlite_master) and
the same pragmas (WAL, synchronous=FULL), in one transaction; also with one commit per batch.

    python bench/ingest.py [--txns 100000] [--batch 500] [--window 8] [--profile FILE]
"""

import argparse
import asyncio
import pstats
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import (
    aggregator_process,
    batches,
    figure,
    receipts,
    verdict,
)
from simulators.mosquitto import Mosquitto
from stockwire import topics
from stockwire.ack import Ack

SITE = "bench"
EDGE = "bench-1"
E2E_TXN_PER_S_MIN = 25_000
RATIO_MIN = 0.5
ACKS_WAIT_S = 600.0
PROFILE_LINES_MAX = 30

Rows = dict[str, list[tuple[object, ...]]]


@dataclass(frozen=True, slots=True)
class Raw:
    one_commit_s: float
    per_batch_s: float
    rows: int


async def publish_all(port: int, payloads: list[bytes], txns_total: int, window: int) -> float:
    """Publish with at most `window` batches unacked; seconds from first publish to last ack."""
    acked = 0
    done = asyncio.Event()
    slots = asyncio.Semaphore(window)
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-edge") as client:
        await client.subscribe(topics.edge_topic(SITE, EDGE, topics.EdgeChannel.ACK), qos=1)

        async def acks() -> None:
            nonlocal acked
            async for message in client.messages:
                assert isinstance(message.payload, bytes), type(message.payload)
                ack = Ack.model_validate_json(message.payload)
                acked += len(ack.results)
                slots.release()
                if acked >= txns_total:
                    done.set()
                    return

        reader = asyncio.create_task(acks())
        topic = topics.edge_topic(SITE, EDGE, topics.EdgeChannel.TXN)
        start = time.perf_counter()
        for payload in payloads:
            await slots.acquire()
            await client.publish(topic, payload, qos=1)
        await asyncio.wait_for(done.wait(), timeout=ACKS_WAIT_S)
        elapsed = time.perf_counter() - start
        reader.cancel()
        return elapsed


def _schema_and_rows(ledger: Path) -> tuple[list[str], Rows]:
    src = sqlite3.connect(ledger)
    try:
        tables = src.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='table' AND sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
        ).fetchall()
        indexes = src.execute(
            "SELECT sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL"
        ).fetchall()
        rows = {name: src.execute(f'SELECT * FROM "{name}"').fetchall() for name, _ in tables}
    finally:
        src.close()
    return [sql for _, sql in tables] + [sql for (sql,) in indexes], rows


def _fresh(target: Path, ddl: list[str]) -> sqlite3.Connection:
    dst = sqlite3.connect(target, isolation_level=None)
    dst.execute("PRAGMA journal_mode=WAL")
    dst.execute("PRAGMA synchronous=FULL")
    for sql in ddl:
        dst.execute(sql)
    return dst


def _insert(dst: sqlite3.Connection, rows: Rows, parts: int) -> float:
    """Insert every table's rows in `parts` commits, each a contiguous slice of every table."""
    start = time.perf_counter()
    for part in range(parts):
        dst.execute("BEGIN")
        for name, table_rows in rows.items():
            n = len(table_rows)
            chunk = table_rows[n * part // parts : n * (part + 1) // parts]
            if chunk:
                marks = ",".join("?" * len(chunk[0]))
                dst.executemany(f'INSERT INTO "{name}" VALUES ({marks})', chunk)
        dst.execute("COMMIT")
    return time.perf_counter() - start


def raw_insert(ledger: Path, workdir: Path, batches_total: int) -> Raw:
    ddl, rows = _schema_and_rows(ledger)
    one = _fresh(workdir / "raw-one.db", ddl)
    try:
        one_s = _insert(one, rows, 1)
    finally:
        one.close()
    per = _fresh(workdir / "raw-per-batch.db", ddl)
    try:
        per_s = _insert(per, rows, batches_total)
    finally:
        per.close()
    return Raw(one_s, per_s, sum(len(r) for r in rows.values()))


def print_profile(path: Path) -> None:
    print(f"\naggregator profile ({path}), top by own time:")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(PROFILE_LINES_MAX)
    print("top by cumulative time:")
    stats.sort_stats("cumulative").print_stats(PROFILE_LINES_MAX)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--txns", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--window", type=int, default=8, help="batches in flight")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the aggregator here")
    args = parser.parse_args()

    txns = receipts(EDGE, args.txns)
    payloads = [b.model_dump_json().encode() for b in batches(EDGE, txns, args.batch)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with (
            Mosquitto(work / "broker") as broker,
            aggregator_process(work, SITE, [EDGE], broker.port, args.profile) as agg,
        ):
            cpu_before = agg.cpu_s()
            seconds = asyncio.run(publish_all(broker.port, payloads, args.txns, args.window))
            agg_cpu = agg.cpu_s() - cpu_before
        raw = raw_insert(agg.db, work, len(payloads))

    e2e_rate = args.txns / seconds
    raw_rate = args.txns / raw.one_commit_s
    ratio = e2e_rate / raw_rate
    print(f"ingest: {args.txns} receipts, batches of {args.batch}, {args.window} batches in flight")
    figure("end to end", f"{e2e_rate:,.0f} txn/s", f"({seconds:.2f} s)")
    figure("  target", f">= {E2E_TXN_PER_S_MIN:,} txn/s", verdict(e2e_rate >= E2E_TXN_PER_S_MIN))
    figure("  aggregator CPU", f"{agg_cpu / seconds:.0%} of a core", f"({agg_cpu:.2f} s)")
    figure("raw sqlite bulk insert", f"{raw_rate:,.0f} txn/s", f"({raw.one_commit_s:.2f} s)")
    figure("  rows written (all tables)", f"{raw.rows:,}", "one transaction, synchronous=FULL")
    per_batch_rate = args.txns / raw.per_batch_s
    figure(
        "raw, one commit per batch", f"{per_batch_rate:,.0f} txn/s", f"({raw.per_batch_s:.2f} s)"
    )
    figure(
        "ratio end to end / raw",
        f"{ratio:.1%}",
        f">= {RATIO_MIN:.0%} {verdict(ratio >= RATIO_MIN)}",
    )
    if args.profile is not None:
        print_profile(args.profile)


if __name__ == "__main__":
    main()
