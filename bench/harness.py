"""Shared pieces of the benchmarks: an aggregator process, synthetic transactions, figures."""

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil

from simulators.ports import free_port
from stockwire.ids import uuid7
from stockwire.txn import StockTransaction, TxnBatch, TxnKind

AGGREGATOR_START_S = 60.0
AGGREGATOR_STOP_S = 30.0
PROCESS_STOP_S = 30.0


def gtin14(n: int) -> str:
    body = f"0400638{n:06d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def receipts(edge: str, count: int, first_seq: int = 1) -> list[StockTransaction]:
    now = datetime.now(UTC)
    return [
        StockTransaction(
            id=uuid7(),
            edge=edge,
            device="bench",
            seq=first_seq + i,
            kind=TxnKind.RECEIPT,
            gtin=gtin14(i % 1000),
            qty=1 + i % 5,
            to_location=f"DOCK-{i % 4}",
            occurred_at=now,
            recorded_at=now,
        )
        for i in range(count)
    ]


def batches(edge: str, txns: list[StockTransaction], size: int) -> list[TxnBatch]:
    now = datetime.now(UTC)
    return [
        TxnBatch(edge=edge, sent_at=now, txns=tuple(txns[i : i + size]))
        for i in range(0, len(txns), size)
    ]


@dataclass(frozen=True, slots=True)
class Aggregator:
    url: str
    db: Path
    pid: int

    def cpu_s(self) -> float:
        """User + system CPU seconds of the aggregator process so far (all threads)."""
        return cpu_s(self.pid)


def aggregator_config(
    workdir: Path, site: str, edges: Sequence[str], mqtt_port: int
) -> tuple[Path, int]:
    """Write the aggregator's TOML (SQLite ledger in workdir); returns (path, API port)."""
    db = workdir / "ledger.db"
    api_port = free_port()
    config = workdir / "aggregator.toml"
    known = ", ".join(f'"{e}"' for e in edges)
    config.write_text(
        f'site = "{site}"\n'
        f'database_url = "sqlite+aiosqlite:///{db}"\n'
        f"known_edges = [{known}]\n"
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n'
        f'[api]\nhost = "127.0.0.1"\nport = {api_port}\n'
    )
    return config, api_port


@contextmanager
def aggregator_process(
    workdir: Path, site: str, edges: Sequence[str], mqtt_port: int, profile: Path | None = None
) -> Iterator[Aggregator]:
    """`stockwire aggregator` in its own process (the second core), stopped with SIGTERM.

    With `profile`, it runs under cProfile and the stats are written there on exit.
    """
    config, api_port = aggregator_config(workdir, site, edges, mqtt_port)
    wrap = ["-m", "cProfile", "-o", str(profile)] if profile else []
    command = [sys.executable, *wrap, "-m", "stockwire", "--log-level", "WARNING"]
    with (workdir / "aggregator.log").open("wb") as log:
        proc = subprocess.Popen(  # our own CLI
            [*command, "aggregator", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ},
        )
        url = f"http://127.0.0.1:{api_port}"
        try:
            wait_healthy(url, proc)
            yield Aggregator(url, workdir / "ledger.db", proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=AGGREGATOR_STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A helper process with its output in `log`; SIGTERM (then SIGKILL) when done."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=PROCESS_STOP_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_healthy(
    url: str, proc: subprocess.Popen[bytes], timeout_s: float = AGGREGATOR_START_S
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"aggregator exited with {proc.returncode} (see aggregator.log)")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"aggregator at {url} not healthy after {timeout_s}s")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (all threads)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of already sorted values (nan when empty)."""
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"


def figure(name: str, value: str, target: str = "") -> None:
    """One aligned figure line: `name  value  [target ...]`."""
    print(f"{name:<34} {value:>22}   {target}".rstrip(), flush=True)
