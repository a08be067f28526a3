"""The readings journal: what a source took from its device is durable before it is consumed.

A source's batch (one device read) is appended to the `readings` table in the edge's SQLite
file and the pump awaits that commit before it reads the device again (the store groups the
appends of every device, and the stages' commits, into one fsync). The batch also goes at once,
in memory, to the device's recognizer stage. The stage consumes readings in one transaction with
their outputs: it deletes them and moves the device's cursor (`recognizer_state.consumed_seq`)
and its recognizer's snapshot. That transaction is the append's or a later one (the store
commits in submission order), so at low rates one fsync carries both, and nothing a stage
stores can outlive the readings it came from. After a restart, a stage restores the snapshot
and replays the device's readings still on file, in order, before new ones.

Each device holds at most `readings_max` journaled readings not consumed yet; at that mark its
pump waits (the device's bytes wait in the socket or the serial buffer): back-pressure, which a
full outbox passes on through the stage. Seqs are global across devices, assigned here in
append order and never reused.
"""

import asyncio
import logging
import os
import sqlite3
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Self

from edge_agent.readings import (
    Journaled,
    Reading,
    ReadingFormatError,
    Unreadable,
    from_journal_row,
    journal_row,
)
from edge_agent.recognizers.base import Clock, Rejected
from edge_agent.store import Store, insert_rows

log = logging.getLogger(__name__)

FAULT_EXIT_CODE = 70  # fault_exit_after_readings (test-only)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY, device TEXT NOT NULL, kind TEXT NOT NULL, at INTEGER NOT NULL,
    payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recognizer_state (
    device TEXT PRIMARY KEY, consumed_seq INTEGER NOT NULL, state TEXT);
CREATE TABLE IF NOT EXISTS recognizer_state_bad (
    device TEXT NOT NULL, consumed_seq INTEGER NOT NULL, state TEXT, reason TEXT NOT NULL,
    at TEXT NOT NULL);
"""

# (seq, reading); Rejected: a row that does not decode, or what a source could not read
Entry = tuple[int, Reading | Rejected]
Row = tuple[int, str, int, str]


@dataclass(frozen=True, slots=True)
class Taken:
    """Readings a stage consumes in one commit: seqs first..last of its device, count of them."""

    first: int
    last: int
    count: int


@dataclass
class _Device:
    pending: deque[Entry] = field(default_factory=deque)  # journaled, not taken by the stage
    unconsumed: int = 0  # journaled, not consumed (committed) by the stage yet
    consumed_seq: int = -1
    state: str | None = None  # the snapshot on file (JSON)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    freed: asyncio.Event = field(default_factory=asyncio.Event)
    full: bool = False
    full_waits: int = 0  # times the pump had to wait for the stage
    readings: int = 0  # journaled by this process


class _Tables:
    """The journal's tables on the store's writing connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        conn.executescript(_SCHEMA)

    def next_seq(self) -> int:
        top = self.conn.execute(
            "SELECT max(m) FROM (SELECT max(seq) AS m FROM readings"
            " UNION ALL SELECT max(consumed_seq) FROM recognizer_state)"
        ).fetchone()[0]
        return 0 if top is None else int(top) + 1

    def load(self, device: str) -> tuple[int, str | None, list[Row]]:
        row = self.conn.execute(
            "SELECT consumed_seq, state FROM recognizer_state WHERE device = ?", (device,)
        ).fetchone()
        consumed_seq, state = (-1, None) if row is None else (int(row[0]), row[1])
        rows = self.conn.execute(
            "SELECT seq, kind, at, payload FROM readings WHERE device = ? AND seq > ? ORDER BY seq",
            (device, consumed_seq),
        ).fetchall()
        return consumed_seq, state, rows

    def others(self, devices: Sequence[str]) -> list[tuple[str, int]]:
        marks = ", ".join("?" * len(devices))
        return self.conn.execute(
            f"SELECT device, count(*) FROM readings WHERE device NOT IN ({marks})"  # noqa: S608
            " GROUP BY device",
            tuple(devices),
        ).fetchall()

    def append(self, rows: list[tuple[int, str, str, int, str]]) -> None:
        insert_rows(self.conn, "readings", ("seq", "device", "kind", "at", "payload"), rows)

    def consume(self, device: str, taken: Taken | None, consumed_seq: int, state: str) -> None:
        if taken is not None:
            self.conn.execute(
                "DELETE FROM readings WHERE seq BETWEEN ? AND ? AND device = ?",
                (taken.first, taken.last, device),
            )
        self.conn.execute(
            "INSERT INTO recognizer_state (device, consumed_seq, state) VALUES (?, ?, ?)"
            " ON CONFLICT (device) DO UPDATE"
            " SET consumed_seq = excluded.consumed_seq, state = excluded.state",
            (device, consumed_seq, state),
        )

    def set_aside(self, device: str, reason: str, at: str) -> None:
        self.conn.execute(
            "INSERT INTO recognizer_state_bad (device, consumed_seq, state, reason, at)"
            " SELECT device, consumed_seq, state, ?, ? FROM recognizer_state WHERE device = ?",
            (reason, at, device),
        )
        self.conn.execute("UPDATE recognizer_state SET state = NULL WHERE device = ?", (device,))


class Journal:
    """Create with `await Journal.open(store, devices, readings_max)`."""

    def __init__(
        self,
        store: Store,
        tables: _Tables,
        next_seq: int,
        readings_max: int,
        clock: Clock,
        fault_exit_after_readings: int | None = None,
    ) -> None:
        self._store = store
        self._tables = tables
        self._next_seq = next_seq  # assigned here, in submission (= commit) order
        self.readings_max = readings_max
        self._clock = clock
        self._devices: dict[str, _Device] = {}
        self.appended = 0  # readings journaled by this process
        self.appends = 0  # batches (device reads) journaled by this process
        self._fault_exit_after = fault_exit_after_readings

    @classmethod
    async def open(
        cls,
        store: Store,
        devices: Sequence[str],
        readings_max: int,
        clock: Clock,
        fault_exit_after_readings: int | None = None,
    ) -> Self:
        """Load each device's cursor, snapshot and readings not consumed yet."""
        assert readings_max >= 1
        tables = await store.call(_Tables, store.conn)
        next_seq = await store.call(tables.next_seq)
        journal = cls(store, tables, next_seq, readings_max, clock, fault_exit_after_readings)
        for device in devices:
            consumed_seq, state, rows = await store.call(tables.load, device)
            journal._devices[device] = dev = _Device(consumed_seq=consumed_seq, state=state)
            dev.pending.extend((row[0], journal._decode(device, row)) for row in rows)
            dev.unconsumed = len(rows)
            if rows:
                log.info("journal: %d reading(s) of device %r to replay", len(rows), device)
        if devices:
            for device, count in await store.call(tables.others, devices):
                log.warning(
                    "journal: %d reading(s) of %r, a device no longer configured", count, device
                )
        return journal

    def _decode(self, device: str, row: Row) -> Reading | Rejected:
        seq, kind, at_us, payload = row
        try:
            return _entry(from_journal_row(device, kind, at_us, payload))
        except (ReadingFormatError, ValueError, OverflowError) as e:
            problem = str(e)
        log.error("journal: reading %d of device %r does not decode: %s", seq, device, problem)
        return Rejected(device, payload, f"journal: {problem}", self._clock())

    # -- the pump's side -----------------------------------------------------------------------

    async def append(self, device: str, batch: Sequence[Journaled]) -> None:
        """Journal one batch (one commit); waits while the device's journal is full. The stage
        may take the batch before that commit is done."""
        if not batch:
            return
        dev = self._devices[device]
        await self._wait_for_room(device, dev, len(batch))
        first, self._next_seq = self._next_seq, self._next_seq + len(batch)
        dev.unconsumed += len(batch)
        dev.readings += len(batch)
        self.appended += len(batch)
        self.appends += 1
        fault = self._fault_exit_after is not None and self.appended >= self._fault_exit_after
        if not fault:  # (test-only: the batch that trips the fault is never seen by a stage)
            entries = map(_entry, batch)
            dev.pending.extend(zip(range(first, first + len(batch)), entries, strict=True))
            dev.arrived.set()
        rows = [(first + i, device, *journal_row(r)) for i, r in enumerate(batch)]
        append = partial(self._tables.append, rows)
        await self._store.write(append, on_commit=self._fault_exit if fault else None)

    def _fault_exit(self, _: None) -> None:
        """Test-only (fault_exit_after_readings): die after a journal commit, before any stage
        has seen its last batch."""
        log.critical("fault injection: exiting after %d reading(s) journaled", self.appended)
        os._exit(FAULT_EXIT_CODE)

    async def _wait_for_room(self, device: str, dev: _Device, wanted: int) -> None:
        # A batch bigger than readings_max still goes in when nothing is waiting (no deadlock).
        while dev.unconsumed > 0 and dev.unconsumed + wanted > self.readings_max:
            if not dev.full:
                dev.full = True
                dev.full_waits += 1
                log.warning(
                    "device %s: journal full (%d readings not consumed): not reading the device"
                    " until its recognizer stage catches up",
                    device,
                    dev.unconsumed,
                )
            dev.freed.clear()
            await dev.freed.wait()
        if dev.full:
            dev.full = False
            log.info("device %s: journal has room again", device)

    def full_waits(self, device: str) -> int:
        return self._devices[device].full_waits

    def readings(self, device: str) -> int:
        """Readings of the device journaled by this process."""
        return self._devices[device].readings

    def waiting(self, device: str) -> int:
        """Readings of the device journaled and not consumed yet."""
        return self._devices[device].unconsumed

    # -- the stage's side ----------------------------------------------------------------------

    def state(self, device: str) -> str | None:
        """The device's recognizer snapshot on file (JSON), if any."""
        return self._devices[device].state

    def take(self, device: str) -> Entry | None:
        """The device's next journaled reading in order, if there is one."""
        pending = self._devices[device].pending
        return pending.popleft() if pending else None

    async def wait(self, device: str, deadline: float) -> None:
        """Until the device has a reading to take, or loop time `deadline`."""
        dev = self._devices[device]
        if dev.pending:
            return
        dev.arrived.clear()
        try:
            async with asyncio.timeout_at(deadline):
                await dev.arrived.wait()
        except TimeoutError:
            pass

    def consume_op(self, device: str, taken: Taken | None, state: str) -> Callable[[], None]:
        """The work to put in the stage's transaction: delete what it took, keep the cursor
        and the snapshot. Call `consumed` once that transaction has committed."""
        consumed_seq = self._devices[device].consumed_seq if taken is None else taken.last
        return partial(self._tables.consume, device, taken, consumed_seq, state)

    def consumed(self, device: str, taken: Taken | None, state: str) -> None:
        dev = self._devices[device]
        dev.state = state
        if taken is not None:
            dev.consumed_seq = taken.last
            dev.unconsumed -= taken.count
            dev.freed.set()

    async def set_aside(self, device: str, reason: str) -> None:
        """Keep the device's snapshot in recognizer_state_bad and forget it (start fresh)."""
        at = self._clock().isoformat()
        await self._store.write(partial(self._tables.set_aside, device, reason, at))
        self._devices[device].state = None


def _entry(reading: Journaled) -> Reading | Rejected:
    """What the stage takes: an Unreadable goes to rejected_readings, not to the recognizer."""
    if isinstance(reading, Unreadable):
        return Rejected(reading.device, reading.raw, reading.reason, reading.at)
    return reading
