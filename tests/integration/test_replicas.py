"""Two real aggregator processes (`python -m stockwire aggregator`) on one database and one
mosquitto, splitting the edges' stream with a shared subscription, with negative stock
forbidden: picks from one bin holding 10, published by several edges at once, never take it
below zero, and every transaction is acked once and posted at most once."""

import asyncio
import json
from collections import Counter
from pathlib import Path

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.roles import Role
from aggregator.schema import balances, locations, movements, rejected_txns, transactions
from simulators.mosquitto import Mosquitto
from simulators.ports import free_port
from stockwire.ack import Ack, AckStatus
from stockwire.topics import EdgeChannel, edge_filter, edge_topic
from stockwire.txn import TxnKind
from tests.e2e.support import Proc, wait_healthy
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    SITE,
    WAIT_S,
    api_key,
    batch,
    edge_client,
    txn,
    wait_ack,
    wait_for,
)

# fixtures shared by the aggregator's tests
db_url = support.db_url
engine = support.engine

K = TxnKind
EDGES = [f"picker-{n}" for n in range(4)]
PICKS_PER_EDGE = 6  # of one each: 24 wanted, 10 in stock
HOST = "127.0.0.1"


def config(path: Path, db_url: str, broker: Mosquitto, name: str, api_port: int) -> Path:
    edges = ", ".join(f'"{e}"' for e in [support.EDGE, *EDGES])
    path.write_text(
        f"""site = "{SITE}"
database_url = {json.dumps(db_url)}
known_edges = [{edges}]

[mqtt]
host = "{broker.host}"
port = {broker.port}
client_id = "{name}"
shared_subscription = true
keepalive_s = 5
reconnect_delay_max_s = 1.0

[api]
host = "{HOST}"
port = {api_port}

[ledger]
negative_stock = "forbid"
"""
    )
    return path


async def posted_by(api: str, key: str) -> int:
    """Transactions this process committed (accepted or rejected), from its /metrics."""
    async with httpx.AsyncClient(base_url=api, headers={"Authorization": f"Bearer {key}"}) as http:
        text = (await http.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("stockwire_aggregator_txns_total{") and "duplicate" not in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


async def pick_from(broker: Mosquitto, edge: str) -> list[Ack]:
    """Publish PICKS_PER_EDGE picks of 1 from B-1 as one message each, all at once, and wait
    for every ack."""
    picks = [
        batch(txn(K.PICK, 1, from_location="B-1", edge=edge), edge=edge)
        for _ in range(PICKS_PER_EDGE)
    ]
    ack_filter = edge_topic(SITE, edge, EdgeChannel.ACK)
    async with edge_client(broker, ack_filter) as (client, inbox):
        for b in picks:
            topic = edge_topic(SITE, edge, EdgeChannel.TXN)
            await client.publish(topic, b.model_dump_json().encode(), qos=1)

        async def all_acked() -> bool:
            acked = {r.id for p in inbox.on(ack_filter) for r in Ack.model_validate_json(p).results}
            return acked >= {b.txns[0].id for b in picks}

        await wait_for(all_acked, f"{edge}'s acks")
        return [Ack.model_validate_json(p) for p in inbox.on(ack_filter)]


async def test_two_aggregator_processes_never_take_a_forbidden_bin_below_zero(
    db_url: str, engine: AsyncEngine, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    key = api_key(db_url, Role.VIEWER)  # migrates the database first
    procs, apis = [], []
    for name in ("agg-a", "agg-b"):
        port = free_port()
        conf = config(tmp_path / f"{name}.toml", db_url, mosquitto, name, port)
        procs.append(Proc(name, ["aggregator", "--config", str(conf)], tmp_path / f"{name}.log"))
        apis.append(f"http://{HOST}:{port}")
    try:
        for proc in procs:
            proc.start()
        for api, proc in zip(apis, procs, strict=True):
            await wait_healthy(api, proc)
        receipt = batch(txn(K.RECEIPT, 10, to_location="B-1"))
        ack_filter = edge_filter(EdgeChannel.ACK, SITE)
        async with edge_client(mosquitto, ack_filter) as (client, inbox):
            topic = edge_topic(SITE, support.EDGE, EdgeChannel.TXN)
            await client.publish(topic, receipt.model_dump_json().encode(), qos=1)
            first = await wait_ack(inbox, {receipt.txns[0].id})
        assert first.results[0].status == AckStatus.ACCEPTED

        acks = await asyncio.wait_for(
            asyncio.gather(*(pick_from(mosquitto, e) for e in EDGES)), WAIT_S
        )
        per_process = [await posted_by(api, key) for api in apis]
    finally:
        for proc in procs:
            if proc.proc is not None and proc.running():
                proc.proc.terminate()
        for proc in procs:
            if proc.proc is not None:
                await proc.exited()

    results = [r for edge_acks in acks for a in edge_acks for r in a.results]
    times_acked = Counter(r.id for r in results)
    assert len(times_acked) == len(EDGES) * PICKS_PER_EDGE
    assert set(times_acked.values()) == {1}, "a transaction acked twice"
    statuses = Counter(r.status for r in results)
    assert statuses == {AckStatus.ACCEPTED: 10, AckStatus.REJECTED: 14}
    reasons = {r.reason for r in results if r.status == AckStatus.REJECTED}
    assert all(r is not None and "negative stock is forbidden at B-1" in r for r in reasons)
    accepted = {r.id for r in results if r.status == AckStatus.ACCEPTED}
    rejected = {r.id for r in results if r.status == AckStatus.REJECTED}
    # both processes committed some (the shared subscription split them); with the receipt: 25
    print("PER", per_process)
    assert all(n > 0 for n in per_process), per_process
    assert sum(per_process) == 1 + len(results)

    async with engine.connect() as conn:
        bin_id = await conn.scalar(sa.select(locations.c.id).where(locations.c.code == "B-1"))
        moves = (
            await conn.execute(
                sa.select(movements.c.txn_id, movements.c.from_location_id, movements.c.qty)
                .where(
                    sa.or_(
                        movements.c.from_location_id == bin_id,
                        movements.c.to_location_id == bin_id,
                    )
                )
                .order_by(movements.c.id)
            )
        ).all()
        balance = await conn.scalar(
            sa.select(balances.c.qty).where(balances.c.location_id == bin_id)
        )
        posted = set((await conn.scalars(sa.select(transactions.c.id))).all())
        kept = set((await conn.scalars(sa.select(rejected_txns.c.txn_id))).all())
    running, lowest = 0, 0
    for m in moves:  # replayed in commit order
        running += -m.qty if m.from_location_id == bin_id else m.qty
        lowest = min(lowest, running)
    assert (running, lowest, balance) == (0, 0, 0)
    picked = Counter(m.txn_id for m in moves if m.from_location_id == bin_id)
    assert set(picked) == accepted
    assert set(picked.values()) == {1}  # each accepted pick posted once, across both processes
    assert accepted <= posted
    assert rejected <= kept
    assert not rejected & posted
