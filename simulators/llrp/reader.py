"""A simulated LLRP reader on TCP: one client at a time, as real readers allow.

Feed it `Sighting`s (what the portal's physics says each antenna reads) through `sight`; while
a client's ROSpec is active they are folded into RO_ACCESS_REPORTs, otherwise they are missed
(counted) as a real reader that is not inventorying misses tags. Faults: `reboot`, `drop`,
`absent_until_s`, and raw frames through `inject`.
"""

import asyncio
import contextlib
import logging
import struct
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from simulators.llrp import events, frames
from simulators.llrp.events import ConnectionAttempt, ROSpecEventType
from simulators.llrp.frames import FrameError
from simulators.llrp.frames import MessageType as M
from simulators.llrp.inventory import REPORT_TAGS_MAX, Report
from simulators.llrp.models import DEFAULT_MODEL, ReaderModel, load
from simulators.llrp.requests import Requests, report_frame
from simulators.llrp.tags import TagReport
from simulators.ports import free_port
from simulators.sightings import Sighting

HOST = "127.0.0.1"
FRAME_BYTES_MAX = 1 << 20  # largest request accepted from a client
SEND_BUFFER_BYTES_MAX = 64 << 20  # unsent bytes to a slow client before reports are dropped
CLOSE_WAIT_S = 5.0

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReaderStats:
    sightings_read: int = 0
    sightings_missed: int = 0  # no client, no active ROSpec for the antenna, or rebooting
    reports_sent: int = 0
    reports_dropped: int = 0  # the client did not read fast enough (send buffer full)
    tags_reported: int = 0  # TagReportData sent
    connections_accepted: int = 0
    connections_refused: int = 0  # a second client while one is connected
    requests: int = 0
    keepalives_sent: int = 0
    requests_ignored: int = 0  # while hung
    reboots: int = 0
    drops: int = 0
    hangs: int = 0


def wall_utc_us() -> int:
    return time.time_ns() // 1000


class LLRPReader:
    def __init__(
        self,
        model: str | ReaderModel = DEFAULT_MODEL,
        host: str = HOST,
        port: int = 0,
        *,
        absent_until_s: float = 0.0,
        utc_us: Callable[[], int] = wall_utc_us,
        report_tags_max: int = REPORT_TAGS_MAX,
        frame_bytes_max: int = FRAME_BYTES_MAX,
        send_buffer_bytes_max: int = SEND_BUFFER_BYTES_MAX,
    ) -> None:
        assert absent_until_s >= 0, absent_until_s
        self.model = load(model) if isinstance(model, str) else model
        self.host = host
        self._port = port or (free_port(host) if absent_until_s else 0)
        self.absent_until_s = absent_until_s
        self.utc_us = utc_us
        self.frame_bytes_max = frame_bytes_max
        self.send_buffer_bytes_max = send_buffer_bytes_max
        self.stats = ReaderStats()
        self.requests = Requests(self.model, time.monotonic, report_tags_max)
        self.connected = asyncio.Event()  # a client holds the connection
        self.up = asyncio.Event()  # listening (not absent, not rebooting)
        self.inventory_started = asyncio.Event()  # a client's ROSpec became active (ever)
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # our own: a delayed listen
        self._handlers: set[asyncio.Task[Any]] = set()  # one per accepted connection
        self._open: set[asyncio.StreamWriter] = set()
        self._wake = asyncio.Event()  # ROSpec timers may have changed
        self._config_set = asyncio.Event()  # SET_READER_CONFIG: the keepalive period may change
        self._alive = asyncio.Event()  # cleared while hung
        self._alive.set()
        self._msg_id = 0

    @property
    def port(self) -> int:
        if self._server is not None and self._server.sockets:
            return int(self._server.sockets[0].getsockname()[1])
        return self._port

    @property
    def inventorying(self) -> bool:
        """A client is connected and one of its ROSpecs is active."""
        return self._writer is not None and self.requests.inventorying

    async def start(self) -> None:
        """Listen now, or after `absent_until_s` (the port is fixed beforehand)."""
        if self.absent_until_s:
            self._spawn(self._listen_later(self.absent_until_s))
        else:
            await self._listen()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self._abort()
        await self._unlisten()
        for writer in list(self._open):
            writer.transport.abort()
        handlers = list(self._handlers)
        if handlers:
            await asyncio.wait(handlers, timeout=CLOSE_WAIT_S)

    @property
    def hung(self) -> bool:
        return not self._alive.is_set()

    def sight(self, sightings: Iterable[Sighting]) -> int:
        """Read what can be read now; returns how many were read (the rest are missed)."""
        read = 0
        reports: list[Report] = []
        for s in sightings:
            ok = False
            if self._writer is not None and not self.hung:
                ok, due = self.requests.sight(s, self.utc_us())
                reports += due
            read += ok
            self.stats.sightings_missed += not ok
        self.stats.sightings_read += read
        self._send_reports(reports)
        self._wake.set()
        return read

    async def reboot(self, down_s: float) -> None:
        """Power cycle: the connection dies without a word, nothing listens for `down_s`,
        ROSpecs and configuration are forgotten; returns once listening again."""
        self.power_off()
        await self.power_on(after_s=down_s)

    def power_off(self) -> None:
        """The first half of `reboot`, at once: connection gone, port closed, state lost."""
        self.stats.reboots += 1
        self._abort()
        self.up.clear()
        if self._server is not None:
            self._server.close()  # the listening socket closes now: connections are refused
        self.requests.reset()

    async def power_on(self, after_s: float = 0.0) -> None:
        assert after_s >= 0, after_s
        await self._unlisten()
        await asyncio.sleep(after_s)
        await self._listen()

    async def close_connection(self) -> bool:
        """Close the connection as a reader does (ConnectionCloseEvent first); state is kept."""
        writer = self._writer
        if writer is None:
            return False
        self._event(events.connection_close(self.utc_us()))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        self._writer = None
        self.connected.clear()
        writer.close()
        return True

    async def hang(self, duration_s: float) -> None:
        """The reader goes silent with the connection open, as a wedged one does: no answers,
        reports or keepalives, tags not read; after `duration_s` it carries on."""
        assert duration_s >= 0, duration_s
        self.freeze()
        try:
            await asyncio.sleep(duration_s)
        finally:
            self.thaw()

    def freeze(self) -> None:
        """`hang` until `thaw`."""
        self.stats.hangs += 1
        self._alive.clear()

    def thaw(self) -> None:
        self._alive.set()
        self._wake.set()

    def drop(self) -> None:
        """The TCP connection dies (no CLOSE_CONNECTION); the reader keeps its state."""
        self.stats.drops += 1
        self._abort()

    async def inject(self, data: bytes) -> bool:
        """Write raw bytes (any frame, well-formed or not) to the client; False if none."""
        writer = self._writer
        if not self.inject_now(data) or writer is None:
            return False
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        return True

    def inject_now(self, data: bytes) -> bool:
        """`inject` without waiting for the bytes to leave."""
        if self._writer is None:
            return False
        self._writer.write(data)
        return True

    async def send_report(self, report: Sequence[TagReport]) -> bool:
        """Send one RO_ACCESS_REPORT with exactly these TagReportData (e.g. 60,000 of them)."""
        return await self.inject(report_frame(self._next_id(), list(report)))

    def _next_id(self) -> int:
        self._msg_id = self._msg_id + 1 if self._msg_id < frames.ID_MAX else 1
        return self._msg_id

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _listen_later(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        await self._listen()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, self.host, self._port)
            self._port = self.port
            self.up.set()
            log.info("llrp reader %s listening on %s:%s", self.model.name, self.host, self.port)

    async def _unlisten(self) -> None:
        self.up.clear()
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_WAIT_S):
                    await server.wait_closed()

    def _abort(self) -> None:
        writer, self._writer = self._writer, None
        self.connected.clear()
        if writer is not None:
            writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._open.add(writer)
        try:
            await self._connection(reader, writer)
        finally:
            self._open.discard(writer)
            self._handlers.discard(task)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            await self._refuse(writer)
            return
        self._writer = writer
        self.stats.connections_accepted += 1
        self.connected.set()
        self._event(events.connection_attempt(self.utc_us(), ConnectionAttempt.Success))
        timers = asyncio.create_task(self._timers(writer))
        keepalive = asyncio.create_task(self._keepalive(writer))
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, FrameError) as e:
            log.info("llrp reader: connection ended: %s", e or type(e).__name__)
        finally:
            timers.cancel()
            keepalive.cancel()
            if self._writer is writer:
                self._writer = None
                self.connected.clear()
            writer.close()

    async def _refuse(self, writer: asyncio.StreamWriter) -> None:
        self.stats.connections_refused += 1
        now = self.utc_us()
        self._event(events.connection_attempt(now, ConnectionAttempt.Another_Connection_Attempted))
        body = events.connection_attempt(
            now, ConnectionAttempt.Failed_Client_Initiated_Connection_Exists
        )
        writer.write(frames.encode(M.READER_EVENT_NOTIFICATION, self._next_id(), body))
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while self._writer is writer:
            head = await reader.readexactly(frames.HEADER_BYTES)
            length = frames.header(head)[2]
            if length > self.frame_bytes_max:
                raise FrameError(f"request of {length} bytes > {self.frame_bytes_max}")
            msg = frames.decode(head + await reader.readexactly(length - frames.HEADER_BYTES))
            self.stats.requests += 1
            if self.hung:
                self.stats.requests_ignored += 1
                continue
            answer = self.requests.answer(msg)
            for frame in answer.frames:
                writer.write(frame)
            self._send_reports(answer.reports)
            self._send_events()
            self._wake.set()
            if msg.type == M.SET_READER_CONFIG:
                self._config_set.set()
            self._note_inventory()
            await writer.drain()
            if answer.close:
                return

    def _note_inventory(self) -> None:
        if self.inventorying:
            self.inventory_started.set()

    def _send_reports(self, reports: list[Report]) -> None:
        writer = self._writer
        for report in reports:
            if writer is None or not report:
                return
            if writer.transport.get_write_buffer_size() > self.send_buffer_bytes_max:
                self.stats.reports_dropped += 1
                log.warning("llrp reader: client too slow, report of %d tags dropped", len(report))
                continue
            writer.write(report_frame(self._next_id(), report))
            self.stats.reports_sent += 1
            self.stats.tags_reported += len(report)

    def _send_events(self) -> None:
        for started, rospec_id in self.requests.events():
            kind = ROSpecEventType.Start if started else ROSpecEventType.End
            self._event(events.rospec_event(self.utc_us(), kind, rospec_id))

    def _event(self, body: bytes) -> None:
        if self._writer is not None and not self.hung:
            self._writer.write(frames.encode(M.READER_EVENT_NOTIFICATION, self._next_id(), body))

    async def _timers(self, writer: asyncio.StreamWriter) -> None:
        while self._writer is writer:
            self._wake.clear()
            deadline = self.requests.next_deadline_s()
            wait_s = None if deadline is None else max(0.0, deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._wake.wait()
            await self._alive.wait()
            self._send_reports(self.requests.due())
            self._send_events()
            self._note_inventory()
            with contextlib.suppress(ConnectionError):
                await writer.drain()

    async def _keepalive(self, writer: asyncio.StreamWriter) -> None:
        """KEEPALIVE every period the client set (KeepaliveSpec), counted from the last change."""
        while self._writer is writer:
            period_ms = self.requests.state.config.keepalive_ms
            self._config_set.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(period_ms / 1000 if period_ms else None):
                    await self._config_set.wait()
                continue  # the configuration changed: start over with its period
            if self._writer is writer and not self.hung:
                writer.write(frames.encode(M.KEEPALIVE, self._next_id()))
                self.stats.keepalives_sent += 1


def synthetic_tags(count: int, antenna_id: int = 1, utc_us: int = 0) -> list[TagReport]:
    """`count` distinct EPC-96 TagReportData, e.g. for a multi-megabyte report."""
    return [
        TagReport(
            epc=b"\x30\x00" + struct.pack("!IIH", 0x5EED, i, 0),
            antenna_id=antenna_id,
            peak_rssi_dbm=-60,
            first_seen_utc_us=utc_us,
            tag_seen_count=1,
        )
        for i in range(count)
    ]
