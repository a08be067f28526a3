"""The readings journal and the store's group commit, on a real SQLite file."""

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.journal import Journal, Taken
from edge_agent.outbox import Outbox
from edge_agent.readings import Scan, Unreadable
from edge_agent.recognizers.base import Rejected
from edge_agent.store import Store, StoreError
from tests.integration.edge_support import EDGE, WAIT_S, draft, now, wait_until

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def scans(device: str, *raws: str) -> list[Scan]:
    return [Scan(device, raw, T0 + timedelta(milliseconds=i)) for i, raw in enumerate(raws)]


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute(sql))


@dataclass
class Edge:
    path: Path
    store: Store
    outbox: Outbox
    journal: Journal


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    edge = await open_edge(tmp_path / "edge.sqlite", ["a", "b", "c"])
    try:
        yield edge
    finally:
        await edge.store.close()


async def open_edge(path: Path, devices: list[str], readings_max: int = 100) -> Edge:
    store = await Store.open(path)
    outbox = await Outbox.open(path, EDGE, 100, store=store)
    journal = await Journal.open(store, devices, readings_max, now)
    return Edge(path, store, outbox, journal)


async def consume_all(edge: Edge, device: str, state: str = "{}") -> list[Scan]:
    """What a stage does: take every journaled reading, store the cursor, in one commit."""
    taken = []
    while (entry := edge.journal.take(device)) is not None:
        taken.append(entry)
    assert taken
    done = Taken(taken[0][0], taken[-1][0], len(taken))
    await edge.outbox.add([], along=edge.journal.consume_op(device, done, state))
    edge.journal.consumed(device, done, state)
    return [reading for _, reading in taken if isinstance(reading, Scan)]


async def test_one_transaction_holds_several_devices_appends_and_a_stage_commit(
    edge: Edge,
) -> None:
    await edge.journal.append("c", scans("c", "C-1"))
    statements: list[str] = []
    await edge.store.call(edge.store.conn.set_trace_callback, statements.append)
    commits = edge.store.stats.commits

    taken = edge.journal.take("c")
    assert taken is not None
    stage_commit = edge.outbox.add(
        [draft("C-1", device="c")],
        along=edge.journal.consume_op("c", Taken(taken[0], taken[0], 1), '{"v": 1}'),
    )
    await asyncio.gather(
        edge.journal.append("a", scans("a", "A-1", "A-2")),
        edge.journal.append("b", scans("b", "B-1")),
        stage_commit,
    )
    await edge.store.call(edge.store.conn.set_trace_callback, None)

    assert edge.store.stats.commits == commits + 1
    assert [s.split()[0] for s in statements if s.split()[0] in ("BEGIN", "COMMIT")] == [
        "BEGIN",
        "COMMIT",
    ]
    assert sum(s.startswith("INSERT INTO readings") for s in statements) == 2  # a, b
    assert any(s.startswith("INSERT INTO outbox") for s in statements)
    assert any(s.startswith("DELETE FROM readings") for s in statements)
    assert rows(edge.path, "SELECT device, payload FROM readings ORDER BY seq") == [
        ("a", "A-1"),
        ("a", "A-2"),
        ("b", "B-1"),
    ]
    assert rows(edge.path, "SELECT device, consumed_seq, state FROM recognizer_state") == [
        ("c", 0, '{"v": 1}')
    ]


class GatedStore(Store):
    """The real store; its first COMMIT waits for the test to open the gate."""

    started = threading.Event()
    gate = threading.Event()

    def _commit(self) -> None:
        if not self.gate.is_set():
            self.started.set()
            self.gate.wait(WAIT_S)
        super()._commit()


async def test_what_is_handed_over_during_a_commit_shares_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "edge.sqlite"
    store = await GatedStore.open(path)
    journal = await Journal.open(store, ["a", "b", "c"], 100, now)
    try:
        running = asyncio.create_task(journal.append("a", scans("a", "A-1")))
        assert await asyncio.to_thread(GatedStore.started.wait, WAIT_S)
        waiting = [
            asyncio.create_task(journal.append(device, scans(device, f"{device}-1")))
            for device in ("b", "c")
        ]
        await asyncio.sleep(0)  # each has handed its append over, and waits
        assert not any(task.done() for task in [running, *waiting])
        GatedStore.gate.set()
        await asyncio.wait_for(asyncio.gather(running, *waiting), WAIT_S)
        assert store.stats.commits == 2  # the first one, then the two together
        assert rows(path, "SELECT count(*) FROM readings") == [(3,)]
    finally:
        GatedStore.gate.set()
        await store.close()


async def test_a_full_journal_holds_the_pump_until_the_stage_consumes(tmp_path: Path) -> None:
    edge = await open_edge(tmp_path / "edge.sqlite", ["a"], readings_max=3)
    try:
        await edge.journal.append("a", scans("a", "A-1", "A-2"))
        appending = asyncio.create_task(edge.journal.append("a", scans("a", "A-3", "A-4")))
        for _ in range(20):  # give the append every chance to (wrongly) go through
            await asyncio.sleep(0.01)
        assert not appending.done()
        assert edge.journal.full_waits("a") == 1
        assert rows(edge.path, "SELECT count(*) FROM readings") == [(2,)]

        assert [s.raw for s in await consume_all(edge, "a")] == ["A-1", "A-2"]
        await asyncio.wait_for(appending, 20)
        assert rows(edge.path, "SELECT payload FROM readings ORDER BY seq") == [("A-3",), ("A-4",)]
    finally:
        await edge.store.close()


async def test_a_batch_bigger_than_the_journal_goes_into_an_empty_one(tmp_path: Path) -> None:
    edge = await open_edge(tmp_path / "edge.sqlite", ["a"], readings_max=2)
    try:
        await asyncio.wait_for(edge.journal.append("a", scans("a", *"WXYZ")), 20)
        assert rows(edge.path, "SELECT count(*) FROM readings") == [(4,)]
    finally:
        await edge.store.close()


async def test_reopen_replays_what_was_not_consumed_in_order_with_the_state(
    tmp_path: Path,
) -> None:
    path = tmp_path / "edge.sqlite"
    edge = await open_edge(path, ["a", "b"])
    await edge.journal.append("a", scans("a", "A-1", "A-2"))
    await edge.journal.append("b", scans("b", "B-1"))
    await consume_all(edge, "a", state='{"mode": "RECEIVE"}')
    await edge.journal.append("a", scans("a", "A-3"))
    await edge.journal.append("a", scans("a", "A-4"))
    await edge.store.close()

    edge = await open_edge(path, ["a", "b"])
    try:
        assert edge.journal.state("a") == '{"mode": "RECEIVE"}'
        assert edge.journal.state("b") is None
        assert [s.raw for s in await consume_all(edge, "a")] == ["A-3", "A-4"]
        assert [s.raw for s in await consume_all(edge, "b")] == ["B-1"]
        # Seqs go on after the highest ever used, even with the readings table empty now.
        await edge.journal.append("a", scans("a", "A-5"))
        assert rows(path, "SELECT seq, payload FROM readings") == [(5, "A-5")]
    finally:
        await edge.store.close()


async def test_times_survive_the_journal_exactly(tmp_path: Path) -> None:
    path = tmp_path / "edge.sqlite"
    edge = await open_edge(path, ["a"])
    at = datetime(2026, 3, 4, 5, 6, 7, 891_234, tzinfo=UTC)
    await edge.journal.append("a", [Scan("a", "]C1\x1dODD ÄÖ", at)])
    await edge.store.close()
    edge = await open_edge(path, ["a"])
    try:
        assert edge.journal.take("a") == (0, Scan("a", "]C1\x1dODD ÄÖ", at))
    finally:
        await edge.store.close()


async def test_an_undecodable_row_becomes_a_rejected_reading(tmp_path: Path) -> None:
    path = tmp_path / "edge.sqlite"
    edge = await open_edge(path, ["a"])
    await edge.journal.append("a", scans("a", "A-1"))
    await edge.store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE readings SET kind = 'hologram'")

    edge = await open_edge(path, ["a"])
    try:
        entry = edge.journal.take("a")
        assert entry is not None
        assert "unknown kind 'hologram'" in getattr(entry[1], "reason", "")
    finally:
        await edge.store.close()


async def test_close_waits_for_what_was_handed_over(tmp_path: Path) -> None:
    path = tmp_path / "edge.sqlite"
    edge = await open_edge(path, ["a"])
    appending = asyncio.create_task(edge.journal.append("a", scans("a", "A-1")))
    await asyncio.sleep(0)
    appending.cancel()  # the caller goes away; the write it handed over does not
    await edge.store.close()
    await wait_until(lambda: appending.done(), "the append task ended")
    assert rows(path, "SELECT payload FROM readings") == [("A-1",)]


async def test_a_failed_transaction_fails_its_group_and_the_store_takes_no_more(
    edge: Edge,
) -> None:
    def broken() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    first = asyncio.create_task(edge.journal.append("a", scans("a", "A-1")))
    await asyncio.sleep(0)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        await edge.store.write(broken)
    with pytest.raises(sqlite3.OperationalError):
        await first  # it shared the transaction: rolled back with it
    with pytest.raises(StoreError, match="an earlier transaction failed"):
        await edge.journal.append("b", scans("b", "B-1"))
    assert rows(edge.path, "SELECT count(*) FROM readings") == [(0,)]


async def test_an_unreadable_line_reaches_the_stage_as_rejected_also_after_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "edge.sqlite"
    edge = await open_edge(path, ["a"])
    bad = Unreadable("a", "X" * 256, "line of 5000 bytes is over max_line_bytes 4096", T0)
    await edge.journal.append("a", [bad, *scans("a", "WIDGET-42")])
    taken = [edge.journal.take("a"), edge.journal.take("a")]
    await edge.store.close()
    expected = Rejected("a", "X" * 256, bad.reason, T0)
    assert [r for _, r in filter(None, taken)] == [expected, *scans("a", "WIDGET-42")]
    edge = await open_edge(path, ["a"])  # not consumed: replayed from the file
    try:
        replayed = edge.journal.take("a")
        assert replayed is not None
        assert replayed[1] == expected
    finally:
        await edge.store.close()
