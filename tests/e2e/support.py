"""Real processes for the end-to-end fault tests: a scripted TCP scanner, the edge and the
aggregator as `python -m stockwire` subprocesses, and read-only looks into their SQLite files.

Chain: ScriptedScanner -> edge (subprocess) -> mosquitto -> aggregator (subprocess) -> SQLite.
"""

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt

from aggregator import key_admin
from aggregator.roles import Role
from simulators.line_port import LinePort
from simulators.mosquitto import Mosquitto
from simulators.ports import free_port
from stockwire.ids import uuid7
from stockwire.topics import EdgeChannel, edge_topic
from stockwire.txn import StockTransaction, TxnBatch, TxnKind

SITE = "site-1"
EDGE = "edge-1"
DOCK = "DOCK-1"
HOST = "127.0.0.1"
WAIT_S = 60.0
POLL_S = 0.1
STOP_WAIT_S = 15.0
LOG_TAIL_LINES = 40
HTTP_TIMEOUT_S = 2.0
ACK_TIMEOUT_S = 2.0
BATCH_TXNS_MAX = 20
PAYLOAD_BYTES_MAX = 65_536
FAULT_EXIT_CODE = 70


# --- the script -------------------------------------------------------------------------------


def ean13(n: int) -> str:
    """A valid EAN-13 for n (distinct n -> distinct codes), prefix 400 + 9 digits."""
    body = f"400{n:09d}"
    odd_even = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - odd_even % 10) % 10)


def gtin14(ean: str) -> str:
    return ean.rjust(14, "0")


def receive_script(items: Sequence[str]) -> list[str]:
    """Receive every item at DOCK-1: each item once, so the expected ledger is exact."""
    return ["SW:MODE:RECEIVE", f"SW:LOC:{DOCK}", *items]


class ScriptedScanner(LinePort):
    """A TCP scanner base: the edge connects; `send` writes lines (CR LF) to the current client.

    Lines are only written while a client is connected; a line whose write fails is re-sent to
    the next client. Lines written into a socket whose edge is then killed can be lost, so tests
    kill the edge only after everything sent is in its outbox.
    """

    def __init__(self) -> None:
        super().__init__(HOST)
        self.sent = 0

    async def send(self, lines: Sequence[str], gap_s: float = 0.0) -> None:
        for line in lines:
            data = f"{line}\r\n".encode()
            while True:
                async with asyncio.timeout(WAIT_S):
                    await self.connected()
                if await self.write(data):
                    break
            self.sent += 1
            if gap_s:
                await asyncio.sleep(gap_s)


# --- processes --------------------------------------------------------------------------------


class Proc:
    """One `python -m stockwire ...` subprocess with its output in a log file."""

    def __init__(self, name: str, args: Sequence[str], log: Path) -> None:
        self.name = name
        self.args = list(args)
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, env: dict[str, str] | None = None) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} is running"
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"===== start #{self.starts} =====\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stockwire", "--log-level", "INFO", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=os.environ | (env or {}),
            )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> int | None:
        """SIGKILL (kill -9); returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(timeout=STOP_WAIT_S)

    async def exited(self, timeout_s: float = WAIT_S) -> int:
        """Wait (bounded) for the process to end by itself; its exit code."""
        assert self.proc is not None
        proc = self.proc
        await wait_for(lambda: proc.poll() is not None, f"{self.name} to exit", timeout_s)
        return proc.wait()

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if not self.log.exists():
            return f"({self.log} missing)"
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def edge_config(workdir: Path, broker: Mosquitto, scanner_port: int) -> Path:
    path = workdir / "edge.toml"
    path.write_text(
        f"""site = "{SITE}"
edge = "{EDGE}"
tick_ms = 50

[mqtt]
host = "{broker.host}"
port = {broker.port}
keepalive_s = 5

[outbox]
path = {_toml_str(str(workdir / "outbox.sqlite"))}

[publisher]
batch_txns_max = {BATCH_TXNS_MAX}
linger_ms = 20
ack_timeout_s = {ACK_TIMEOUT_S}
reconnect_min_s = 0.2
reconnect_max_s = 1.0
status_interval_s = 5

[[devices]]
id = "scan1"
profile = "generic-tcp-scanner"
tcp = "{HOST}:{scanner_port}"
"""
    )
    return path


def aggregator_config(workdir: Path, broker: Mosquitto, api_port: int) -> Path:
    path = workdir / "aggregator.toml"
    ledger = (workdir / "ledger.sqlite").resolve()
    path.write_text(
        f"""site = "{SITE}"
database_url = {_toml_str(f"sqlite+aiosqlite:///{ledger}")}
known_edges = ["{EDGE}"]
payload_bytes_max = {PAYLOAD_BYTES_MAX}

[mqtt]
host = "{broker.host}"
port = {broker.port}
keepalive_s = 5
reconnect_delay_max_s = 1.0

[api]
host = "{HOST}"
port = {api_port}
"""
    )
    return path


# --- reading the files (read-only) ------------------------------------------------------------


def query(path: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of one query on a SQLite file opened read-only; [] while the file does not exist."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return []  # not migrated yet
        raise
    finally:
        conn.close()


@dataclass(frozen=True)
class Ledger:
    """What the aggregator's SQLite ledger holds for the edge."""

    path: Path

    def posted(self) -> list[tuple[str, int]]:
        """(txn id as 32 hex digits, seq) of every posted transaction of EDGE."""
        rows = query(
            self.path,
            "SELECT id, seq FROM transactions WHERE edge = ? AND status = 'posted'",
            (EDGE,),
        )
        return [(_hex(r[0]), int(r[1])) for r in rows]

    def posted_count(self) -> int:
        return len(self.posted())

    def statuses(self) -> Counter[str]:
        return Counter(str(r[0]) for r in query(self.path, "SELECT status FROM transactions"))

    def movements(self) -> int:
        return int(query(self.path, "SELECT count(*) FROM movements")[0][0])

    def physical_balances(self) -> dict[tuple[str, str], int]:
        """(gtin, location) -> qty at physical locations, lots summed."""
        rows = query(
            self.path,
            "SELECT i.gtin, l.code, sum(b.qty) FROM balances b"
            " JOIN items i ON i.id = b.item_id JOIN locations l ON l.id = b.location_id"
            " WHERE NOT l.virtual GROUP BY i.gtin, l.code",
        )
        return {(str(g), str(loc)): int(q) for g, loc, q in rows if int(q) != 0}

    def dead_letters(self) -> list[tuple[str, str]]:
        return [
            (str(t), str(r)) for t, r in query(self.path, "SELECT topic, reason FROM dead_letters")
        ]

    def rejected(self) -> int:
        rows = query(self.path, "SELECT count(*) FROM rejected_txns")
        return int(rows[0][0]) if rows else 0


@dataclass(frozen=True)
class EdgeOutbox:
    """The edge's outbox file."""

    path: Path

    def ids(self) -> set[str]:
        return {_hex(r[0]) for r in query(self.path, "SELECT id FROM outbox")}

    def rows(self) -> int:
        rows = query(self.path, "SELECT count(*) FROM outbox")
        return int(rows[0][0]) if rows else 0

    def next_seq(self) -> int:
        rows = query(self.path, "SELECT next_seq FROM meta WHERE edge = ?", (EDGE,))
        return int(rows[0][0]) if rows else 0

    def rejected(self) -> int:
        txns = query(self.path, "SELECT count(*) FROM rejected_txns")
        readings = query(self.path, "SELECT count(*) FROM rejected_readings")
        return sum(int(r[0][0]) for r in (txns, readings) if r)


def _hex(value: object) -> str:
    return str(value).replace("-", "").lower()


# --- waiting ----------------------------------------------------------------------------------


async def wait_for(check: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll `check` until it holds; bounded (AssertionError naming `what` after timeout_s)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(POLL_S)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


async def wait_healthy(api: str, agg: Proc) -> None:
    """Until GET /health is 200 and says MQTT is connected (the aggregator has subscribed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while not await asyncio.to_thread(http_ok, f"{api}/health"):
        if not agg.running():
            raise AssertionError(f"aggregator exited early:\n{agg.tail()}")
        if loop.time() > deadline:
            raise AssertionError(f"aggregator not healthy after {WAIT_S}s:\n{agg.tail()}")
        await asyncio.sleep(POLL_S * 3)


# --- bad input --------------------------------------------------------------------------------


def txn_batch(edge: str, gtin: str, seq: int) -> TxnBatch:
    now = datetime.now(UTC)
    txn = StockTransaction(
        id=uuid7(),
        edge=edge,
        seq=seq,
        device="scan9",
        kind=TxnKind.RECEIPT,
        gtin=gtin,
        qty=1,
        to_location=DOCK,
        occurred_at=now,
        recorded_at=now,
    )
    return TxnBatch(edge=edge, sent_at=now, txns=(txn,))


def bad_payloads() -> list[tuple[str, bytes, str]]:
    """(topic, payload, a word the dead-letter reason must contain)."""
    own = edge_topic(SITE, EDGE, EdgeChannel.TXN)
    stranger = "edge-9"
    unknown = txn_batch(stranger, gtin14(ean13(999_999)), 0).model_dump_json().encode()
    return [
        (own, b"{not json", "TxnBatch"),
        (own, b'{"schema_version": 1, "edge": "edge-1", "txns": "many"}', "TxnBatch"),
        (own, b"[" + b" " * (PAYLOAD_BYTES_MAX + 10) + b"]", "bytes"),
        (edge_topic(SITE, stranger, EdgeChannel.TXN), unknown, "unknown edge"),
    ]


async def publish(broker: Mosquitto, messages: Sequence[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client(broker.host, broker.port, identifier="e2e-bad-input") as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


# --- the chain --------------------------------------------------------------------------------


class Chain:
    """Broker (from the `mosquitto` fixture), scanner, edge and aggregator, with their files."""

    def __init__(self, workdir: Path, broker: Mosquitto) -> None:
        self.workdir = workdir
        self.broker = broker
        self.scanner = ScriptedScanner()
        self.api_port = free_port()
        self.api = f"http://{HOST}:{self.api_port}"
        self.ledger = Ledger(workdir / "ledger.sqlite")
        self.outbox = EdgeOutbox(workdir / "outbox.sqlite")
        self.edge = Proc("edge", [], workdir / "edge.log")
        self.aggregator = Proc("aggregator", [], workdir / "aggregator.log")

    async def open(self) -> None:
        await self.scanner.start()
        self.edge.args = [
            "edge",
            "--config",
            str(edge_config(self.workdir, self.broker, self.scanner.port)),
        ]
        agg_config = aggregator_config(self.workdir, self.broker, self.api_port)
        self.aggregator.args = ["aggregator", "--config", str(agg_config)]

    async def start_aggregator(self, env: dict[str, str] | None = None) -> None:
        self.aggregator.start(env)
        await wait_healthy(self.api, self.aggregator)

    def start_edge(self) -> None:
        self.edge.start()

    def viewer_key(self) -> str:
        """A new API key to read the aggregator's API with."""
        database_url = f"sqlite+aiosqlite:///{self.ledger.path.resolve()}"
        return key_admin.create(database_url, "e2e", Role.VIEWER, actor="test").token

    async def scan(self, items: Sequence[str], gap_s: float = 0.0) -> None:
        await self.scanner.send(items, gap_s)

    async def settled(self, expected: int) -> None:
        """Until the ledger holds `expected` posted txns of EDGE and the outbox is empty."""
        await wait_for(
            lambda: self.ledger.posted_count() >= expected and self.outbox.rows() == 0,
            f"{expected} txns posted and the edge outbox empty "
            f"(posted {self.ledger.posted_count()}, outbox {self.outbox.rows()})",
        )

    def close(self) -> None:
        """Kill everything still running (never leave orphans) and print the log tails."""
        for proc in (self.edge, self.aggregator):
            with contextlib.suppress(Exception):
                proc.kill()
        for proc in (self.edge, self.aggregator):
            print(f"----- {proc.name} log tail ({proc.log}) -----\n{proc.tail()}")
        mosquitto_log = self.broker.workdir / "mosquitto.log"
        if mosquitto_log.exists():
            tail = mosquitto_log.read_text(errors="replace").splitlines()[-10:]
            print("----- mosquitto log tail -----\n" + "\n".join(tail))


def assert_ledger_matches(chain: Chain, items: Sequence[str]) -> None:
    """Ground truth: every item received once at DOCK-1, each txn posted once, nothing else."""
    posted = chain.ledger.posted()
    ids = [i for i, _ in posted]
    assert len(ids) == len(set(ids)), "a transaction id posted twice"
    assert sorted(seq for _, seq in posted) == list(range(len(items))), "seqs lost or repeated"
    assert chain.outbox.next_seq() == len(items), "the edge produced a different number of txns"
    assert chain.ledger.statuses() == Counter({"posted": len(items)})
    assert chain.ledger.movements() == len(items)
    assert chain.ledger.physical_balances() == {(gtin14(e), DOCK): 1 for e in items}
    assert chain.ledger.rejected() == 0
    assert chain.outbox.rejected() == 0
    assert chain.outbox.rows() == 0


def chain_items(count: int, first: int = 0) -> list[str]:
    return [ean13(first + i) for i in range(count)]
