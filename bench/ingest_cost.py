"""Where the aggregator's CPU goes per transaction: each ingest phase timed in one thread.

The same code the aggregator runs, without MQTT or threads: validate a TxnBatch payload, post
it (one write transaction on SQLite: rows, movements, balances), build and serialise its Ack
and its LedgerEvents. The sum bounds what one aggregator process can do on this machine.
The first batches (items and locations created) are not counted.

With --telemetry, the ledger also reads the stock levels each posting leaves (as with the
telemetry sink on), and two more phases are timed: building the posting's points and handing
them to the sink, and turning them into line protocol (the sink's writer thread does that,
under the same GIL).

    python bench/ingest_cost.py [--txns 40000] [--batch 500] [--telemetry]
"""

import argparse
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.database import writing
from aggregator.ingest import _ack
from aggregator.ledger import Ledger
from aggregator.migrate import upgrade_sync
from aggregator.settings import TelemetrySinkSettings
from aggregator.telemetry import measure as points
from aggregator.telemetry.influx import line
from aggregator.telemetry.points import Point
from aggregator.telemetry.sink import TelemetrySink
from aggregator.writer import Writer
from bench.harness import batches, figure, receipts
from stockwire.events import LedgerEvents
from stockwire.txn import TxnBatch

EDGE = "bench-1"
WARMUP_BATCHES_MAX = 10


class Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.counting = False

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        if self.counting:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


class _Nowhere:
    def write(self, points: Sequence[Point]) -> None:
        pass

    def close(self) -> None:
        pass


def measure(payloads: list[bytes], warmup: int, workdir: Path, telemetry: bool) -> Phases:
    url = f"sqlite+aiosqlite:///{workdir / 'ledger.db'}"
    upgrade_sync(url)
    writer = Writer(url)
    ledger = Ledger(writer, site="bench", stock_levels=telemetry)
    sink = TelemetrySink(TelemetrySinkSettings(url="http://unused"), _Nowhere())
    phases = Phases()
    try:
        for n, payload in enumerate(payloads):
            phases.counting = n >= warmup
            with phases.timed("validate TxnBatch"):
                batch = TxnBatch.model_validate_json(payload)
            with phases.timed("post (one DB transaction)"), writing(writer.engine) as conn:
                group = ledger._post(conn, [batch])
            with phases.timed("ack"):
                _ack(EDGE, group.results[0], datetime.now(UTC)).model_dump_json()
            with phases.timed("ledger events"):
                LedgerEvents(site="bench", movements=tuple(group.movements)).model_dump_json()
            if telemetry:
                with phases.timed("telemetry points"):
                    at = group.movements[0].committed_at
                    made = [
                        *points.stock_levels("bench", group.levels, at),
                        *points.movements("bench", group.movements, group.pending, at),
                        *points.posting_delays("bench", group.movements, at),
                    ]
                    sink.offer(made)
                with phases.timed("line protocol (sink)"):
                    "\n".join(line(p) for p in made)
                sink.stats.offered = 0
                while sink.buffered:  # as if written
                    sink._take(len(made))
    finally:
        writer.close()
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--txns", type=int, default=40_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--telemetry", action="store_true", help="as with the sink on")
    args = parser.parse_args()
    made = batches(EDGE, receipts(EDGE, args.txns), args.batch)
    warmup = min(WARMUP_BATCHES_MAX, len(made) // 2)
    counted = sum(len(b.txns) for b in made[warmup:])
    payloads = [b.model_dump_json().encode() for b in made]
    with tempfile.TemporaryDirectory() as tmp:
        phases = measure(payloads, warmup, Path(tmp), args.telemetry)
    print(f"ingest cost: {counted} receipts counted, batches of {args.batch}, one thread")
    for name, seconds in phases.seconds.items():
        figure(f"  {name}", f"{seconds / counted * 1e6:.1f} us/txn")
    total = sum(phases.seconds.values())
    figure("  total", f"{total / counted * 1e6:.1f} us/txn")
    figure("one core's ceiling", f"{counted / total:,.0f} txn/s", "(no MQTT, no overlap)")


if __name__ == "__main__":
    main()
