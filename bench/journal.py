"""The edge's cost per reading with the readings journal on, at a steady rate and at max.

The edge pipeline (run_pipeline: a real TCP scanner source -> journal -> ScanRecognizer stage
-> outbox -> publisher, one SQLite file with group commit) runs in this process; a scanner
thread with a blocking socket feeds it plain GTIN-14 item lines (after SW:MODE:RECEIVE and
SW:LOC:DOCK-1); mosquitto and `stockwire aggregator` (SQLite ledger) run in their own
processes. Edge CPU is this process's CPU time minus the scanner thread's own.

Prints, measured in the same run: the disk's fsync p50/p99 and a bare SQLite WAL commit
(synchronous=FULL) as the baselines; then per phase (`--rate` readings/s offered, then as fast
as the edge takes them) after `--warmup-s`: readings/s journaled and txns/s stored, edge CPU per
reading and per transaction, SQLite commits/s (fsync'd ones apart), readings per device read.

    python bench/journal.py [--rate 1000] [--seconds 10] [--warmup-s 2] [--max-seconds 10]
"""

import argparse
import asyncio
import contextlib
import os
import socket
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import aggregator_process, figure, gtin14, percentile
from edge_agent.agent import run_pipeline
from edge_agent.journal import Journal
from edge_agent.outbox import Outbox, utc_now
from edge_agent.registry import build_device
from edge_agent.settings import DeviceConfig, EdgeSettings, MqttSettings, OutboxSettings
from edge_agent.store import Store
from simulators.mosquitto import Mosquitto

SITE = "bench"
EDGE = "bench-journal"
DEVICE = "scanner-1"
SETUP = b"SW:MODE:RECEIVE\r\nSW:LOC:DOCK-1\r\n"
ITEMS = 100_000  # distinct GTINs, cycled
BASELINE_SAMPLES = 500
MAX_CHUNK_LINES = 256
TICK_S = 0.001
CONNECT_WAIT_S = 30.0
OUTBOX_ROWS_MAX = 1_000_000  # the max phase may outrun the aggregator: never hold the edge back


class Scanner(threading.Thread):
    """A TCP scanner base on a blocking socket in its own thread: the edge connects, then lines
    go out at `rate` per second (open loop, whatever is due in one write), or as fast as the
    edge takes them (rate 0). `pause()` stops sending."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="bench scanner")
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.sent = 0
        self._phase: tuple[float, float, int] | None = None  # rate, start, sent at start
        self._stop = threading.Event()

    def cpu_s(self) -> float:
        """CPU seconds this thread has used so far."""
        assert self.ident is not None
        return time.clock_gettime(time.pthread_getcpuclockid(self.ident))

    def send_at(self, rate: float) -> None:
        self._phase = (rate, time.perf_counter(), self.sent)

    def pause(self) -> None:
        self._phase = None

    def stop(self) -> None:
        self._stop.set()
        self.server.close()

    def run(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn, contextlib.suppress(OSError):  # the edge hangs up at the end
            conn.sendall(SETUP)
            while not self._stop.is_set():
                count = self._due()
                if count == 0:
                    time.sleep(TICK_S)
                    continue
                lines = (f"{gtin14((self.sent + i) % ITEMS)}\r\n" for i in range(count))
                conn.sendall("".join(lines).encode())
                self.sent += count

    def _due(self) -> int:
        phase = self._phase
        if phase is None:
            return 0
        rate, start, first = phase
        if rate == 0:
            return MAX_CHUNK_LINES
        return first + int((time.perf_counter() - start) * rate) - self.sent


@dataclass(frozen=True)
class Sample:
    at: float
    cpu_s: float  # the edge's: process minus the scanner thread
    readings: int
    reads: int
    txns: int
    commits: int
    durable_commits: int
    aggregator_cpu_s: float


@dataclass(frozen=True)
class Edge:
    store: Store
    outbox: Outbox
    journal: Journal
    scanner: Scanner
    aggregator_cpu_s: Callable[[], float]

    def sample(self) -> Sample:
        times = os.times()
        return Sample(
            at=time.perf_counter(),
            cpu_s=times.user + times.system - self.scanner.cpu_s(),
            readings=self.journal.appended,
            reads=self.journal.appends,
            txns=self.outbox.next_seq,
            commits=self.store.stats.commits,
            durable_commits=self.store.stats.durable_commits,
            aggregator_cpu_s=self.aggregator_cpu_s(),
        )


def baselines(work: Path) -> tuple[list[float], list[float]]:
    """fsync of a small append, and a one-row SQLite WAL commit (FULL), in ms, sorted."""
    fsyncs, commits = [], []
    fd = os.open(work / "fsync.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for _ in range(BASELINE_SAMPLES):
            os.write(fd, b"x" * 100)
            t0 = time.perf_counter()
            os.fsync(fd)
            fsyncs.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
    db = sqlite3.connect(work / "baseline.sqlite", isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE t (seq INTEGER PRIMARY KEY, payload TEXT)")
        for i in range(BASELINE_SAMPLES):
            t0 = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t VALUES (?, ?)", (i, gtin14(i)))
            db.execute("COMMIT")
            commits.append((time.perf_counter() - t0) * 1000)
    finally:
        db.close()
    return sorted(fsyncs), sorted(commits)


def edge_settings(work: Path, mqtt_port: int, scanner_port: int) -> EdgeSettings:
    device = DeviceConfig(id=DEVICE, profile="generic-tcp-scanner", tcp=f"127.0.0.1:{scanner_port}")
    return EdgeSettings(
        site=SITE,
        edge=EDGE,
        mqtt=MqttSettings(port=mqtt_port),
        outbox=OutboxSettings(path=work / "edge.sqlite"),
        devices=[device],
    )


async def phase(edge: Edge, rate: float, warmup_s: float, seconds: float) -> tuple[Sample, Sample]:
    edge.scanner.send_at(rate)
    await asyncio.sleep(warmup_s)
    first = edge.sample()
    await asyncio.sleep(seconds)
    last = edge.sample()
    edge.scanner.pause()
    return first, last


async def run(
    work: Path, mqtt_port: int, aggregator_cpu_s: Callable[[], float], args: argparse.Namespace
) -> list[tuple[str, Sample, Sample]]:
    scanner = Scanner()
    scanner.start()
    settings = edge_settings(work, mqtt_port, scanner.port)
    devices = [build_device(d, utc_now) for d in settings.devices]
    store = await Store.open(settings.outbox.path)
    stop = asyncio.Event()
    try:
        outbox = await Outbox.open(settings.outbox.path, EDGE, OUTBOX_ROWS_MAX, store=store)
        journal = await Journal.open(store, [DEVICE], settings.queue_readings_max, utc_now)
        pipeline = run_pipeline(settings, devices, outbox, journal, stop, utc_now)
        running = asyncio.create_task(pipeline)
        edge = Edge(store, outbox, journal, scanner, aggregator_cpu_s)
        async with asyncio.timeout(CONNECT_WAIT_S):
            while journal.appended < 2:  # the setup lines: the edge is connected
                if running.done():
                    running.result()
                await asyncio.sleep(0.05)
        phases = [(f"{args.rate:,.0f} readings/s offered", args.rate, args.seconds)]
        if args.max_seconds > 0:
            phases.append(("as fast as the edge takes them", 0.0, args.max_seconds))
        results = []
        for name, rate, seconds in phases:
            results.append((name, *await phase(edge, rate, args.warmup_s, seconds)))
        stop.set()
        await running
    finally:
        scanner.stop()
        await store.close()
    return results


def report(
    results: list[tuple[str, Sample, Sample]], fsyncs: list[float], commits: list[float]
) -> None:
    print(
        "journal: edge pipeline in this process (TCP scanner source -> journal -> ScanRecognizer"
        " -> outbox -> publisher), mosquitto and `stockwire aggregator` in their own"
    )
    print(f"baseline on this disk ({BASELINE_SAMPLES} each, p50 / p99):")
    figure("  fsync of a 100-byte append", _p50_p99(fsyncs))
    figure("  SQLite WAL commit, one row, FULL", _p50_p99(commits))
    for name, a, b in results:
        wall = b.at - a.at
        readings, txns = b.readings - a.readings, b.txns - a.txns
        cpu_s = b.cpu_s - a.cpu_s
        print(f"phase: {name} ({wall:.1f} s measured)")
        figure("  readings/s journaled", f"{readings / wall:,.0f}")
        figure("  txns/s stored in the outbox", f"{txns / wall:,.0f}")
        figure("  edge CPU", f"{cpu_s / wall:.0%} of a core")
        figure("  CPU per reading", f"{_us(cpu_s, readings)} us")
        figure("  CPU per transaction", f"{_us(cpu_s, txns)} us")
        commits_s = (b.commits - a.commits) / wall
        durable_s = (b.durable_commits - a.durable_commits) / wall
        figure("  SQLite commits/s", f"{commits_s:,.0f}", f"({durable_s:,.0f}/s fsync'd)")
        figure("  readings per device read", f"{readings / max(1, b.reads - a.reads):.1f}")
        aggregator = (b.aggregator_cpu_s - a.aggregator_cpu_s) / wall
        figure("  aggregator CPU (for context)", f"{aggregator:.0%} of a core")


def _p50_p99(values: list[float]) -> str:
    return f"{percentile(values, 50):.2f} / {percentile(values, 99):.2f} ms"


def _us(seconds: float, count: int) -> str:
    return f"{seconds / count * 1e6:,.0f}" if count else "nan"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="readings/s offered")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured, per phase")
    parser.add_argument("--warmup-s", type=float, default=2.0, help="not measured, per phase")
    parser.add_argument("--max-seconds", type=float, default=10.0, help="0: no max phase")
    args = parser.parse_args()
    assert args.rate > 0, "--rate must be > 0"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fsyncs, commits = baselines(work)
        with (
            Mosquitto(work / "broker") as broker,
            aggregator_process(work, SITE, [EDGE], broker.port) as aggregator,
        ):
            results = asyncio.run(run(work, broker.port, aggregator.cpu_s, args))
    report(results, fsyncs, commits)


if __name__ == "__main__":
    main()
