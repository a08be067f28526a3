"""Shared helpers for the aggregator's integration tests: databases, transactions, an MQTT edge."""

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import aiomqtt
import httpx
import psycopg
import pytest
import sqlalchemy as sa
import uvicorn
from psycopg import sql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator import key_admin
from aggregator.audit import AuditEntry
from aggregator.database import create_engine
from aggregator.ingest import Ingest
from aggregator.ledger import Ledger
from aggregator.migrate import upgrade
from aggregator.roles import Role
from aggregator.schema import balances, items, locations
from aggregator.service import run_aggregator
from aggregator.settings import AggregatorSettings
from aggregator.telemetry.sink import TelemetrySink
from aggregator.writer import Writer
from simulators.mosquitto import Mosquitto
from stockwire.ack import Ack
from stockwire.ids import uuid7
from stockwire.topics import EdgeChannel, edge_topic
from stockwire.txn import StockTransaction, TxnBatch, TxnKind

SITE = "site1"
EDGE = "edge1"
WAIT_S = 20.0
_seq = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a PostgreSQL database made for this test."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
        return
    dsn: str = request.getfixturevalue("pg_dsn")
    name = f"sw_test_{uuid4().hex[:16]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_url(dsn).set(drivername="postgresql+asyncpg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    await upgrade(db_url)
    eng = create_engine(db_url)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
def writer(engine: AsyncEngine, db_url: str) -> Iterator[Writer]:
    """The ledger's writer thread on the (migrated) database of `engine`."""
    writer = Writer(db_url)
    try:
        yield writer
    finally:
        writer.close()


@pytest.fixture
def ledger(writer: Writer) -> Ledger:
    return Ledger(writer, site=SITE, review_confidence_min=0.5)


def txn(kind: TxnKind, qty: int = 1, **fields: Any) -> StockTransaction:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "id": uuid7(),
        "edge": EDGE,
        "device": "dev1",
        "seq": next(_seq),
        "kind": kind,
        "sku": "SKU-1",
        "qty": qty,
        "occurred_at": now,
        "recorded_at": now,
    }
    values.update(fields)
    return StockTransaction.model_validate(values)


def batch(*txns: StockTransaction, edge: str = EDGE) -> TxnBatch:
    return TxnBatch(edge=edge, sent_at=datetime.now(UTC), txns=txns)


def api_key(db_url: str, role: Role, name: str | None = None) -> str:
    """A new API key of `role` on this database (migrated first), as a client sends it."""
    return key_admin.create(db_url, name or f"test-{role}", role, actor="test").token


def api_client(url: str, key: str | None = None) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.AsyncClient(base_url=url, headers=headers)


def audit_entry(action: str = "test", status: int = 200) -> AuditEntry:
    """What a direct call of a ledger decision (no API request) records as its audit row."""
    return AuditEntry(
        at=datetime.now(UTC),
        request_id=uuid4().hex,
        actor="test",
        key_id=None,
        role=None,
        action=action,
        target=None,
        method="TEST",
        path="-",
        client=None,
        status=status,
    )


StockKey = tuple[str | None, str, str]  # (sku or gtin, location, lot)


async def stock(engine: AsyncEngine) -> dict[StockKey, int]:
    """Every non-zero balance, virtual locations included."""
    query = (
        sa.select(items.c.sku, items.c.gtin, locations.c.code, balances.c.lot, balances.c.qty)
        .join(items, items.c.id == balances.c.item_id)
        .join(locations, locations.c.id == balances.c.location_id)
        .where(balances.c.qty != 0)
    )
    async with engine.connect() as conn:
        return {(r.sku or r.gtin, r.code, r.lot): r.qty for r in await conn.execute(query)}


async def count_rows(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def wait_for(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = WAIT_S
) -> None:
    """Poll until check() is true (bounded); never a fixed sleep standing in for a condition."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def agg_settings(mosquitto: Mosquitto, db_url: str) -> AggregatorSettings:
    return AggregatorSettings(
        site=SITE,
        database_url=db_url,
        mqtt={"host": mosquitto.host, "port": mosquitto.port, "client_id": f"agg-{uuid4().hex}"},
        known_edges=[EDGE, "edge2"],
        payload_bytes_max=4096,
        api={"port": 0},
    )


@asynccontextmanager
async def running_aggregator(settings: AggregatorSettings) -> AsyncIterator[str]:
    """run_aggregator in a task; yields the API URL once ingest is subscribed (per /health)."""
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run_aggregator(settings, stop=stop, on_ready=ready.set_result))
    try:
        waiting: set[asyncio.Future[Any]] = {task, ready}
        await asyncio.wait(waiting, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        assert ready.done(), "the aggregator did not become ready"
        url = ready.result()
        async with httpx.AsyncClient(base_url=url) as http:

            async def subscribed() -> bool:
                return bool((await http.get("/health")).json()["mqtt"])

            await wait_for(subscribed, "the aggregator's MQTT subscription")
        yield url
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT_S)


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """An ASGI app (create_app around parts a test owns) on uvicorn, on a free loopback port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        assert not task.done(), "uvicorn stopped before it started"
        return server.started

    try:
        await wait_for(started, "uvicorn to start")
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, WAIT_S)


@asynccontextmanager
async def ingesting(
    settings: AggregatorSettings, ledger: Ledger, sink: TelemetrySink | None = None
) -> AsyncIterator[Ingest]:
    """Ingest alone (no API) on `ledger`, until the block ends; yields it once subscribed."""
    ingest = Ingest(settings, ledger.writer, ledger, sink=sink)
    running = asyncio.create_task(ingest.run())
    try:
        await asyncio.wait_for(ingest.ready.wait(), WAIT_S)
        yield ingest
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


@dataclass
class Inbox:
    """What a plain MQTT client (our test 'edge' or a third-party subscriber) received."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)

    async def next(self, topic: str, what: str, start: int = 0) -> tuple[int, bytes]:
        async def arrived() -> bool:
            return any(t == topic for t, _ in self.messages[start:])

        await wait_for(arrived, what)
        return next((i, p) for i, (t, p) in enumerate(self.messages) if i >= start and t == topic)

    def on(self, topic: str) -> list[bytes]:
        return [p for t, p in self.messages if t == topic]


@asynccontextmanager
async def edge_client(
    broker: Mosquitto, *filters: str
) -> AsyncIterator[tuple[aiomqtt.Client, Inbox]]:
    """A plain aiomqtt client standing in for an edge; records what arrives on `filters`."""
    client = aiomqtt.Client(broker.host, broker.port, identifier=f"t-{uuid4().hex}")
    async with recording(client, *filters) as inbox:
        yield client, inbox


@asynccontextmanager
async def recording(client: aiomqtt.Client, *filters: str) -> AsyncIterator[Inbox]:
    """Connect `client`, subscribe to `filters` and record what arrives until the block ends."""
    inbox = Inbox()
    async with client:
        for topic_filter in filters:
            await client.subscribe(topic_filter, qos=1)

        async def record() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                inbox.messages.append((message.topic.value, message.payload))

        task = asyncio.create_task(record())
        try:
            yield inbox
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def wait_ack(inbox: Inbox, batch_ids: set[UUID], edge: str = EDGE) -> Ack:
    """The ack that answers exactly these txn ids."""
    topic = edge_topic(SITE, edge, EdgeChannel.ACK)

    async def arrived() -> bool:
        return any(_ids(p) == batch_ids for p in inbox.on(topic))

    await wait_for(arrived, f"an ack for {len(batch_ids)} txn(s)")
    return next(Ack.model_validate_json(p) for p in inbox.on(topic) if _ids(p) == batch_ids)


def _ids(payload: bytes) -> set[UUID]:
    return {r.id for r in Ack.model_validate_json(payload).results}
