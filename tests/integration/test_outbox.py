import asyncio
import contextlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from edge_agent.outbox import Outbox
from edge_agent.recognizers.base import Rejected
from stockwire.ack import Ack, AckResult, AckStatus
from stockwire.txn import StockTransaction
from tests.integration.edge_support import EDGE, draft, now


def ack(*results: tuple[StockTransaction, AckStatus]) -> Ack:
    return Ack(
        edge=EDGE,
        acked_at=now(),
        results=tuple(
            AckResult(id=t.id, status=s, reason="bad item" if s is AckStatus.REJECTED else None)
            for t, s in results
        ),
    )


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql))


async def test_add_assigns_ids_seqs_and_recorded_at(tmp_path: Path) -> None:
    fixed = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    outbox = await Outbox.open(tmp_path / "o.sqlite", EDGE, 100, clock=lambda: fixed)
    try:
        txns = await outbox.add([draft("A"), draft("B", qty=3)])
        assert [t.seq for t in txns] == [0, 1]
        assert [t.sku for t in txns] == ["A", "B"]
        assert all(t.edge == EDGE and t.recorded_at == fixed for t in txns)
        assert len({t.id for t in txns}) == 2
        assert txns[0].id.version == 7
        assert outbox.count() == 2
        assert await outbox.pending(10) == txns
    finally:
        await outbox.close()


async def test_pending_is_in_seq_order_limited_and_excludes(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "o.sqlite", EDGE, 100)
    try:
        txns = await outbox.add([draft(f"S{i}") for i in range(6)])
        assert await outbox.pending(3) == txns[:3]
        assert await outbox.pending(3, exclude={txns[0].id, txns[2].id}) == [
            txns[1],
            txns[3],
            txns[4],
        ]
    finally:
        await outbox.close()


async def test_ack_deletes_accepted_and_duplicate_and_moves_rejected(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    outbox = await Outbox.open(path, EDGE, 100)
    try:
        a, b, c, d = await outbox.add([draft("A"), draft("B"), draft("C"), draft("D")])
        removed = await outbox.apply_ack(
            ack((a, AckStatus.ACCEPTED), (b, AckStatus.DUPLICATE), (c, AckStatus.REJECTED))
        )
        assert removed == 3
        assert outbox.count() == 1
        assert await outbox.pending(10) == [d]
        # an ack for an id no longer in the outbox (late, repeated) changes nothing
        assert await outbox.apply_ack(ack((a, AckStatus.ACCEPTED))) == 0
    finally:
        await outbox.close()
    rejected = rows(path, "SELECT id, seq, body, reason FROM rejected_txns")
    assert len(rejected) == 1
    assert rejected[0][:2] == (str(c.id), c.seq)
    assert StockTransaction.model_validate_json(str(rejected[0][2])) == c
    assert rejected[0][3] == "bad item"


async def test_invalid_draft_becomes_rejected_reading_without_using_a_seq(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    outbox = await Outbox.open(path, EDGE, 100)
    try:
        bad = draft("A", qty=0)  # qty 0 is only valid for a count
        txns = await outbox.add([draft("A"), bad, draft("B")])
        assert [(t.sku, t.seq) for t in txns] == [("A", 0), ("B", 1)]
        await outbox.add_rejected(Rejected("scan1", "]C1garbage", "bad GS1", now()))
    finally:
        await outbox.close()
    readings = rows(path, "SELECT device, raw, reason FROM rejected_readings ORDER BY rowid")
    assert len(readings) == 2
    assert readings[0][0] == "scan1"
    assert "qty must be > 0" in str(readings[0][2])
    assert readings[1] == ("scan1", "]C1garbage", "bad GS1")


async def test_seq_survives_reopen_and_deletes(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    outbox = await Outbox.open(path, EDGE, 100)
    first = await outbox.add([draft("A"), draft("B")])
    await outbox.apply_ack(ack(*((t, AckStatus.ACCEPTED) for t in first)))
    assert outbox.count() == 0
    await outbox.close()

    outbox = await Outbox.open(path, EDGE, 100)
    try:
        assert outbox.count() == 0
        (again,) = await outbox.add([draft("C")])
        assert again.seq == 2
    finally:
        await outbox.close()


async def test_rows_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    outbox = await Outbox.open(path, EDGE, 100)
    txns = await outbox.add([draft("A"), draft("B")])
    await outbox.close()
    outbox = await Outbox.open(path, EDGE, 100)
    try:
        assert outbox.count() == 2
        assert await outbox.pending(10) == txns
    finally:
        await outbox.close()


async def test_full_outbox_holds_add_until_an_ack_frees_space(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "o.sqlite", EDGE, rows_max=3)
    try:
        first = await outbox.add([draft("A"), draft("B"), draft("C")])
        adding = asyncio.create_task(outbox.add([draft("D")]))
        await asyncio.sleep(0)
        for _ in range(20):  # give the add every chance to (wrongly) go through
            await asyncio.sleep(0.01)
        assert not adding.done()
        assert outbox.full
        assert outbox.full_waits == 1
        assert outbox.count() == 3

        await outbox.apply_ack(ack((first[0], AckStatus.ACCEPTED)))
        (added,) = await asyncio.wait_for(adding, timeout=20)
        assert added.sku == "D"
        assert added.seq == 3
        assert not outbox.full
        assert [t.sku for t in await outbox.pending(10)] == ["B", "C", "D"]
    finally:
        await outbox.close()


async def test_add_bigger_than_rows_max_goes_into_an_empty_outbox(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "o.sqlite", EDGE, rows_max=2)
    try:
        txns = await asyncio.wait_for(outbox.add([draft(f"S{i}") for i in range(5)]), 20)
        assert len(txns) == 5
        assert outbox.count() == 5
    finally:
        await outbox.close()


async def test_outbox_file_is_wal(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    outbox = await Outbox.open(path, EDGE, 10)
    await outbox.close()
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]


async def test_read_pages_by_seq_and_says_where_to_read_on(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "o.sqlite", EDGE, 100)
    try:
        txns = await outbox.add([draft(f"S{i}") for i in range(6)])
        first = await outbox.read(0, 2)
        assert (first.txns, first.next_seq) == (txns[:2], 2)
        rest = await outbox.read(first.next_seq, 10, exclude={txns[3].id})
        assert rest.txns == [txns[2], txns[4], txns[5]]
        assert rest.next_seq == 6  # everything read: on from the next seq to be stored
        await outbox.apply_ack(ack((txns[0], AckStatus.ACCEPTED)))
        assert (await outbox.read(0, 1)).txns == [txns[1]]  # acked rows are gone
    finally:
        await outbox.close()


async def test_just_stored_txns_are_taken_from_memory_once(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "o.sqlite", EDGE, 100)
    try:
        assert outbox.unsent_count(0) == 0
        txns = await outbox.add([draft(f"S{i}") for i in range(3)])
        txns += await outbox.add([draft("BAD", qty=0), draft("S3")])  # the reject takes no seq
        assert outbox.unsent_count(0) == 4
        assert outbox.unsent_count(1) == 3
        assert outbox.take_unsent(1, 2) == txns[1:3]  # seq 0 is skipped (read from SQLite)
        assert outbox.take_unsent(3, 10) == [txns[3]]
        assert outbox.take_unsent(4, 10) == []
        assert outbox.unsent_count(4) == 0
        # Taken ones are no longer in memory: reading them again needs SQLite.
        assert outbox.unsent_count(0) is None
        assert outbox.take_unsent(2, 10) is None
        assert outbox.count() == 4  # memory is only a copy: the rows wait for their acks
    finally:
        await outbox.close()


async def test_memory_overflow_leaves_the_oldest_to_sqlite(tmp_path: Path) -> None:
    outbox = await Outbox.open(tmp_path / "o.sqlite", EDGE, 100, unsent_txns_max=3)
    try:
        txns = await outbox.add([draft(f"S{i}") for i in range(5)])
        assert outbox.unsent_overflows == 1
        assert outbox.unsent_count(0) is None  # seqs 0 and 1 are in SQLite only
        page = await outbox.read(0, 2)
        assert page.txns == txns[:2]
        assert outbox.take_unsent(page.next_seq, 10) == txns[2:]
    finally:
        await outbox.close()


async def test_memory_starts_after_the_rows_on_file(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    outbox = await Outbox.open(path, EDGE, 100)
    old = await outbox.add([draft("A"), draft("B")])
    await outbox.close()
    outbox = await Outbox.open(path, EDGE, 100)
    try:
        assert outbox.unsent_count(0) is None  # a restart replays from SQLite
        page = await outbox.read(0, 10)
        assert (page.txns, page.next_seq) == (old, 2)
        new = await outbox.add([draft("C")])
        assert outbox.take_unsent(page.next_seq, 10) == new
    finally:
        await outbox.close()


async def test_an_add_cancelled_while_writing_is_stored_and_kept_in_memory(
    tmp_path: Path,
) -> None:
    outbox = await Outbox.open(tmp_path / "o.sqlite", EDGE, 100)
    try:
        await outbox.add([draft("A")])
        adding = asyncio.create_task(outbox.add([draft("B")]))
        await asyncio.sleep(0)  # the write is handed to the worker thread
        adding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await adding
        await outbox.add([draft("C")])
        assert outbox.count() == 3
        assert [t.sku for t in outbox.take_unsent(0, 10) or []] == ["A", "B", "C"]
    finally:
        await outbox.close()


async def test_acks_are_applied_between_adds(tmp_path: Path) -> None:
    # apply_ack commits without an fsync of its own; the connection stays synchronous=FULL.
    path = tmp_path / "o.sqlite"
    outbox = await Outbox.open(path, EDGE, 100)
    a, b = await outbox.add([draft("A"), draft("B")])
    await outbox.apply_ack(ack((a, AckStatus.ACCEPTED)))
    (c,) = await outbox.add([draft("C")])
    await outbox.close()
    assert rows(path, "SELECT id FROM outbox ORDER BY seq") == [(str(b.id),), (str(c.id),)]
