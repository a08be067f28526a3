"""Line framing and the reconnect loop shared by the scanner transports (TCP and serial).

A scanner sends one scan per line. Lines end at the profile's terminator; a line longer than
max_line_bytes is not a scan: its first OVERLONG_PREFIX_BYTES_MAX bytes and its size become an
Unreadable (kept in the edge's rejected_readings, logged, counted) and the stream resyncs at the
next terminator. Bytes are decoded with errors="replace": bad bytes never stop a source.
"""

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from device_profiles.schema import ScannerProfile
from edge_agent.backoff import Backoff
from edge_agent.outage import OutageReport
from edge_agent.readings import Scan, Unreadable
from edge_agent.recognizers.base import Clock
from edge_agent.sources.base import SourceError, SourceHealth
from stockwire.status import DeviceState, DeviceStatus

log = logging.getLogger(__name__)

READ_BYTES_MAX = 4096
DETAIL_CHARS_MAX = 500
OVERLONG_PREFIX_BYTES_MAX = 256


@dataclass(frozen=True, slots=True)
class Overlong:
    """A line longer than the framer's max: its first bytes, its size, whether it ended."""

    prefix: bytes
    size_bytes: int
    ended: bool = True

    def reason(self, max_line_bytes: int) -> str:
        over = f"is over max_line_bytes {max_line_bytes}"
        kept = f"the first {len(self.prefix)} bytes kept"
        if self.ended:
            return f"line of {self.size_bytes} bytes {over}; {kept}"
        return (
            f"line of {self.size_bytes}+ bytes {over} and the connection ended before its"
            f" terminator; {kept}"
        )


class LineFramer:
    """Splits a byte stream into lines at `terminator`; no line (or buffer) exceeds the max.

    Over-long lines are not returned by `feed`; `take_overlong` hands them over (prefix, size).
    """

    def __init__(self, terminator: bytes, max_line_bytes: int) -> None:
        assert terminator
        assert max_line_bytes > 0
        self.terminator = terminator
        self.max_line_bytes = max_line_bytes
        self.overlong = 0
        self._buffer = bytearray()
        self._skipping = False
        self._skipped_prefix = b""
        self._skipped_bytes = 0
        self._dropped: list[Overlong] = []

    def feed(self, data: bytes) -> list[bytes]:
        """The complete lines in `data` (and what came before it), without terminators."""
        self._buffer += data
        lines = []
        while (end := self._buffer.find(self.terminator)) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + len(self.terminator)]
            if self._skipping:  # the tail of an over-long line: resync here
                self._skipping = False
                size = self._skipped_bytes + len(line)
                self._overlong(Overlong(self._skipped_prefix, size))
            elif len(line) > self.max_line_bytes:
                self._overlong(Overlong(line[:OVERLONG_PREFIX_BYTES_MAX], len(line)))
            else:
                lines.append(line)
        if len(self._buffer) > self.max_line_bytes + len(self.terminator) - 1:
            if not self._skipping:
                self._skipping = True
                self._skipped_prefix = bytes(self._buffer[:OVERLONG_PREFIX_BYTES_MAX])
                self._skipped_bytes = 0
            keep = len(self.terminator) - 1  # a terminator may be split across reads
            self._skipped_bytes += len(self._buffer) - keep
            del self._buffer[: len(self._buffer) - keep]
        return lines

    def take_overlong(self) -> list[Overlong]:
        """The over-long lines met since the last call, in stream order."""
        dropped, self._dropped = self._dropped, []
        return dropped

    def reset(self) -> None:
        """Forget a partial line (after a reconnect it cannot be completed); an over-long
        line cut short this way is still handed over by `take_overlong`."""
        if self._skipping:
            size = self._skipped_bytes + len(self._buffer)
            self._overlong(Overlong(self._skipped_prefix, size, ended=False))
        self._buffer.clear()
        self._skipping = False

    def _overlong(self, line: Overlong) -> None:
        self.overlong += 1
        self._dropped.append(line)
        log.warning(
            "rejected a line of %d bytes (max_line_bytes %d; %d over-long so far)",
            line.size_bytes,
            self.max_line_bytes,
            self.overlong,
        )


def decode_line(line: bytes, profile: ScannerProfile) -> str:
    """Bytes of one line -> the scan text, with the profile's prefix and suffix removed."""
    text = line.decode(profile.encoding, errors="replace")
    if profile.prefix:
        text = text.removeprefix(profile.prefix)
    if profile.suffix:
        text = text.removesuffix(profile.suffix)
    return text


@dataclass(slots=True)
class LineCounters:
    connects: int = 0
    failures: int = 0
    lines: int = 0
    empty: int = 0
    overlong: int = 0


def utc_now() -> datetime:
    return datetime.now(UTC)


class LineSource(ABC):
    """A scanner that sends lines over a byte stream; reconnects with jittered backoff forever.

    Subclasses only open the stream (and turn their library's errors into SourceError).
    """

    kind = "scanner"

    def __init__(
        self,
        device: str,
        profile: ScannerProfile,
        *,
        clock: Clock = utc_now,
        backoff: Backoff | None = None,
    ) -> None:
        self.device = device
        self.profile = profile
        self.counters = LineCounters()
        self._clock = clock
        self._backoff = backoff or Backoff(0.2, 10.0)
        self._framer = LineFramer(profile.terminator.encode("ascii"), profile.max_line_bytes)
        self._state = DeviceState.UNKNOWN
        self._detail: str | None = None
        # A device that stays away is reported steadily, not at every retry.
        self.report = OutageReport(log, f"scanner {device}")

    @property
    @abstractmethod
    def endpoint(self) -> str:
        """Where the device is, for logs and status (host:port, /dev/ttyUSB0)."""

    @abstractmethod
    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Open the byte stream; raise SourceError on failure."""

    def status(self) -> DeviceStatus:
        detail = self._detail
        if detail is None and self.counters.overlong:
            detail = f"{self.counters.overlong} over-long line(s) rejected"
        return DeviceStatus(kind=self.kind, state=self._state, detail=detail)

    def health(self) -> SourceHealth:
        return SourceHealth(errors_total=self.counters.failures)

    async def batches(self) -> AsyncIterator[list[Scan | Unreadable]]:
        while True:
            try:
                reader, writer = await self._open()
            except SourceError as exc:
                await self._pause(f"cannot open {self.endpoint}: {exc}")
                continue
            self._up()
            try:
                async for texts, overlong in self._lines(reader):
                    at = self._clock()
                    batch: list[Scan | Unreadable] = [self._unreadable(o, at) for o in overlong]
                    batch += [Scan(device=self.device, raw=text, at=at) for text in texts]
                    yield batch
                reason = f"{self.endpoint} closed the connection"
            except SourceError as exc:
                reason = f"read from {self.endpoint} failed: {exc}"
            finally:
                writer.close()
            await self._pause(reason)

    async def _lines(
        self, reader: asyncio.StreamReader
    ) -> AsyncIterator[tuple[list[str], list[Overlong]]]:
        """The non-empty scan texts and the over-long lines of each read that completes any."""
        self._framer.reset()  # an over-long line a lost connection cut short is handed over here
        while True:
            try:
                data = await reader.read(READ_BYTES_MAX)
            except OSError as exc:
                raise SourceError(str(exc) or type(exc).__name__) from exc
            if not data:
                self._framer.reset()
                self.counters.overlong = self._framer.overlong
                if overlong := self._framer.take_overlong():
                    yield [], overlong
                return
            texts = []
            for line in self._framer.feed(data):
                text = decode_line(line, self.profile)
                if not text:
                    self.counters.empty += 1
                    continue
                self.counters.lines += 1
                texts.append(text)
            self.counters.overlong = self._framer.overlong
            overlong = self._framer.take_overlong()
            if texts or overlong:
                yield texts, overlong

    def _unreadable(self, line: Overlong, at: datetime) -> Unreadable:
        raw = line.prefix.decode(self.profile.encoding, errors="replace")
        return Unreadable(self.device, raw, line.reason(self.profile.max_line_bytes), at)

    def _up(self) -> None:
        self.counters.connects += 1
        self._backoff.reset()
        self._state, self._detail = DeviceState.UP, None
        log.info(
            "scanner %s: connected to %s%s", self.device, self.endpoint, self.report.recovered()
        )

    async def _pause(self, reason: str) -> None:
        self.counters.failures += 1
        self._state, self._detail = DeviceState.DOWN, reason[:DETAIL_CHARS_MAX]
        delay_s = self._backoff.next_s()
        self.report.failed(reason, delay_s)
        await asyncio.sleep(delay_s)
