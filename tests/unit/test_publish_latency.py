"""Publish -> ack latency as the publisher's in-flight bookkeeping records it (no I/O)."""

from datetime import UTC, datetime
from uuid import UUID

from edge_agent.publisher import Latencies, _Inflight
from stockwire.txn import StockTransaction, TxnKind

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def txns(*seqs: int) -> list[StockTransaction]:
    return [
        StockTransaction(
            id=UUID(int=seq + 1),
            edge="edge1",
            seq=seq,
            device="scan1",
            kind=TxnKind.RECEIPT,
            qty=1,
            sku="SKU-1",
            to_location="A-01-01",
            occurred_at=T0,
            recorded_at=T0,
        )
        for seq in seqs
    ]


def test_a_batch_counts_once_all_its_txns_are_acked() -> None:
    inflight = _Inflight()
    inflight.add(txns(0, 1), deadline=100.0, now=10.0)
    inflight.add(txns(2), deadline=100.0, now=11.0)
    assert inflight.acked({UUID(int=1)}) == []  # half of the first batch
    done = inflight.acked({UUID(int=2), UUID(int=3)})
    assert [(s.first_seq, s.published_at) for s in done] == [(0, 10.0), (2, 11.0)]
    assert inflight.batches == {}


def test_latencies_drain_mean_and_max_per_interval() -> None:
    latencies = Latencies()
    for ms in (10.0, 30.0, 20.0):
        latencies.add(ms)
    taken = latencies.drain()
    assert (taken.count, taken.sum_ms / taken.count, taken.max_ms) == (3, 20.0, 30.0)
    assert latencies.drain().count == 0
