"""An LLRP RFID reader through sllurp: one TagRead batch per RO_ACCESS_REPORT.

The only module that imports sllurp (GPL-3.0, untyped: `Any` stays in here). sllurp's client
reads its socket in its own thread and calls us back there; we convert each report to TagReads
in that thread and hand it to the event loop with call_soon_threadsafe.

The hand-off is bounded: at most `reports_queued_max` reports are decoded and not yet accepted
(journaled) by the edge. When the edge is behind, sllurp's thread blocks in the hand-off with
the next report, stops reading its socket, and TCP pushes back on the reader (which buffers
reports itself). Nothing is dropped and memory stays within `reports_queued_max` + 1 decoded
reports plus one frame of at most `frame_bytes_max` bytes being received.

What we do instead of sllurp (all through its public classes, subclassed; sllurp is unchanged):
- framing: sllurp re-joins a partial frame with `bytes +=` per 4 KiB read (quadratic for a
  multi-megabyte report) and gives up on the rest of a read after one frame it cannot decode;
  raw_data_received here frames into a bytearray and decodes frame by frame, so a malformed or
  vendor-custom frame (sllurp raises a bare struct.error on some) costs that frame only;
- reconnect: sllurp's own waits a fixed 60 s; it is off, and each connection is a new client
  after our jittered backoff, which re-runs sllurp's setup (capabilities, config, ROSpec);
- keepalive: the reader is asked for a KEEPALIVE every `keepalive_s`; no byte from the reader
  for `keepalive_missed_max` intervals (not counting time sllurp's thread spent decoding or
  waiting in the hand-off: then it is not reading) tears the connection down;
- transmit power: mapped from dBm to the reader's power-table index ourselves (sllurp's
  closest-match search assumes a 1-based table and picks a non-existent index on a 0-based
  one, and its index 0 means "maximum").
"""

import asyncio
import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sllurp.llrp import (
    LLRPClient,
    LLRPMessage,
    LLRPReaderClient,
    LLRPReaderConfig,
    LLRPReaderState,
)
from sllurp.llrp_errors import ReaderConfigurationError

from device_profiles.rfid import RfidReaderProfile
from edge_agent.backoff import Backoff
from edge_agent.outage import OutageReport
from edge_agent.readings import TagRead
from edge_agent.recognizers.base import Clock
from edge_agent.sources.base import SourceError, SourceHealth
from stockwire.status import DeviceState, DeviceStatus

log = logging.getLogger(__name__)

REPORTS_QUEUED_MAX = 4
FRAME_BYTES_MAX = 64 * 1024 * 1024
CONNECT_TIMEOUT_S = 5.0
SETUP_TIMEOUT_S = 10.0  # connected -> inventorying (capabilities, config, ROSpec)
HANDOFF_POLL_S = 0.2  # a blocked hand-off looks this often whether the connection is closing
DETAIL_CHARS_MAX = 500
UNKNOWN_RSSI_DBM = -128.0  # the floor of LLRP's PeakRSSI; used when a report has none
PHASE_STEPS = 4096
LOG_FIRST = 10  # a flood of bad frames: log the first ones, then one in LOG_EVERY
LOG_EVERY = 1000  # ImpinjRFPhaseAngle: 0..4095 for 0..360 degrees

_HEADER = struct.Struct("!HII")  # version+type, length (header included), message id
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_US_MAX = (datetime(9999, 1, 1, tzinfo=UTC) - _EPOCH) // _US


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class RfidCounters:
    connects: int = 0  # connections that reached inventorying
    failures: int = 0
    reports: int = 0
    tags: int = 0
    tags_skipped: int = 0  # report entries without an EPC
    decode_errors: int = 0  # frames sllurp could not decode (counted, skipped)
    protocol_errors: int = 0  # decoded frames sllurp's state machine choked on
    keepalives: int = 0
    keepalive_timeouts: int = 0
    setup_timeouts: int = 0
    handoff_waits: int = 0  # times the edge was behind and sllurp's thread waited
    report_gaps: int = 0  # gaps between consecutive reports of one connection, summed:
    report_gap_ms_sum: float = 0.0

    @property
    def reconnects(self) -> int:
        return max(0, self.connects - 1)


# --- report entries -> TagReads (pure; runs in sllurp's thread) ---------------------------


def tag_reads(
    device: str, entries: Iterable[Mapping[str, Any]], now: datetime
) -> tuple[list[TagRead], int]:
    """The TagReads of one report's TagReportData entries, and how many had no EPC."""
    reads = []
    skipped = 0
    for entry in entries:
        read = _tag_read(device, entry, now)
        if read is None:
            skipped += 1
        else:
            reads.append(read)
    return reads, skipped


def _tag_read(device: str, entry: Mapping[str, Any], now: datetime) -> TagRead | None:
    epc = entry.get("EPC") or entry.get("EPC-96")
    if not isinstance(epc, bytes | bytearray | str):
        return None
    text = epc.decode("ascii") if isinstance(epc, bytes | bytearray) else epc
    if not text:
        return None
    first = _utc(entry.get("FirstSeenTimestampUTC"))
    last = _utc(entry.get("LastSeenTimestampUTC"))
    phase = entry.get("ImpinjRFPhaseAngle")
    return TagRead(
        device=device,
        epc=text.upper(),
        antenna=int(entry.get("AntennaID", 0)),
        rssi_dbm=_rssi(entry),
        at=last or first or now,
        first_at=first,
        seen_count=int(entry.get("TagSeenCount", 1)) or 1,
        phase_deg=None if phase is None else (int(phase) % PHASE_STEPS) * 360.0 / PHASE_STEPS,
    )


def _utc(us: object) -> datetime | None:
    if not isinstance(us, int) or not 0 < us < _US_MAX:
        return None
    return _EPOCH + us * _US


def _rssi(entry: Mapping[str, Any]) -> float:
    impinj = entry.get("ImpinjPeakRSSI")  # hundredths of a dBm
    if isinstance(impinj, int):
        return impinj / 100.0
    peak = entry.get("PeakRSSI")
    return float(peak) if isinstance(peak, int | float) else UNKNOWN_RSSI_DBM


# --- transmit power ------------------------------------------------------------------------


def power_index(table: Iterable[Mapping[str, Any]], dbm: float) -> tuple[int, float]:
    """(index, dBm) of the reader's power-table entry closest to `dbm`.

    `table` is the TransmitPowerLevelTableEntry list of the reader's capabilities (power in
    hundredths of a dBm). Index 0 is never chosen: sllurp reads a TransmitPower of 0 as
    "maximum".
    """
    levels = [(int(e["Index"]), int(e["TransmitPowerValue"]) / 100.0) for e in table]
    usable = [(index, level) for index, level in levels if index > 0]
    if not usable:
        raise ReaderConfigurationError("the reader reports no transmit power table")
    return min(usable, key=lambda entry: (abs(entry[1] - dbm), entry[0]))


# --- the sllurp side -------------------------------------------------------------------------


def reader_config(profile: RfidReaderProfile) -> Any:
    """sllurp's config for one connection (sllurp mutates it: never share it)."""
    config: dict[str, Any] = {
        "antennas": list(profile.ports),
        "tx_power": 0,  # replaced by the table index in _Client.parseCapabilities
        "mode_identifier": profile.mode_id,
        "session": profile.session,
        "tag_population": profile.tag_population,
        "report_every_n_tags": profile.report_every_n_tags,
        "report_timeout_ms": profile.report_timeout_ms,
        "tag_content_selector": {
            "EnableROSpecID": False,
            "EnableSpecIndex": False,
            "EnableInventoryParameterSpecID": False,
            "EnableAntennaID": True,
            "EnableChannelIndex": False,
            "EnablePeakRSSI": True,  # sllurp's config default turns it off
            "EnableFirstSeenTimestamp": True,
            "EnableLastSeenTimestamp": True,
            "EnableTagSeenCount": True,
            "EnableAccessSpecID": False,
        },
        "keepalive_interval": max(1, round(profile.keepalive_s * 1000)),
        "reconnect": False,
        "start_inventory": True,
        "reset_on_connect": True,
        "impinj_search_mode": profile.impinj_search_mode,
    }
    if profile.reports_phase:
        config["impinj_tag_content_selector"] = {
            "EnableRFPhaseAngle": True,
            "EnablePeakRSSI": False,
            "EnableRFDopplerFrequency": False,
        }
    return LLRPReaderConfig(config)


class _Client(LLRPClient):  # type: ignore[misc]
    """sllurp's protocol state machine, with our dBm -> power-table index."""

    def __init__(self, tx_power_dbm: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tx_power_dbm = tx_power_dbm
        self.tx_power_chosen: tuple[int, float] | None = None

    def parseCapabilities(self, capdict: Any) -> None:  # sllurp's name
        try:
            band = capdict["RegulatoryCapabilities"]["UHFBandCapabilities"]
            table = band["TransmitPowerLevelTableEntry"]
        except (KeyError, TypeError):
            raise ReaderConfigurationError("capabilities without a power table") from None
        index, dbm = power_index(table, self._tx_power_dbm)
        self.tx_power_chosen = (index, dbm)
        self.config.tx_power = dict.fromkeys(self.config.antennas, index)
        self.config.tx_power_dbm = None
        super().parseCapabilities(capdict)


class _Bridge:
    """What sllurp's thread and the event loop share for one connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reports_queued_max: int) -> None:
        assert reports_queued_max >= 1
        self.loop = loop
        self.events: asyncio.Queue[_Event] = asyncio.Queue()
        self.closing = threading.Event()
        self.heard_at_s = time.monotonic()
        # sllurp's thread is handling what it read (decoding, or waiting in the hand-off): it
        # is not reading its socket, so silence is not the reader's
        self.busy = False
        self.config_error: str | None = None
        self._slots = threading.BoundedSemaphore(reports_queued_max)

    # called in sllurp's thread
    def heard(self) -> None:
        self.heard_at_s = time.monotonic()

    def post(self, event: "_Event") -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.closing.set()

    def hand_off(self, reads: list[TagRead], on_wait: Callable[[], None]) -> None:
        """Block until the edge has room for one more report (or the connection closes)."""
        if not self._slots.acquire(blocking=False):
            on_wait()
            while not self._slots.acquire(timeout=HANDOFF_POLL_S):
                if self.closing.is_set():
                    return
        self.post(_Report(reads))

    # called in the loop
    def accepted(self) -> None:
        """The edge journaled a report: one more may be handed off."""
        self._slots.release()

    def silent_s(self) -> float:
        return 0.0 if self.busy else time.monotonic() - self.heard_at_s


@dataclass(frozen=True, slots=True)
class _Report:
    reads: list[TagRead]


@dataclass(frozen=True, slots=True)
class _Inventorying:
    tx_power: tuple[int, float] | None


@dataclass(frozen=True, slots=True)
class _Ended:
    pass


_Event = _Report | _Inventorying | _Ended


class _Hooks:
    """What the reader thread reports to the source (counters live in the source)."""

    def __init__(self, source: "RfidLlrpSource", bridge: _Bridge) -> None:
        self.source = source
        self.bridge = bridge

    def report(self, message: Any) -> None:
        counters = self.source.counters
        try:
            entries = message.msgdict["RO_ACCESS_REPORT"].get("TagReportData") or []
            reads, skipped = tag_reads(self.source.device, entries, self.source.clock())
        except Exception as exc:  # a report shape we do not know: count it, keep going
            counters.decode_errors += 1
            log.warning("rfid %s: cannot convert a report: %r", self.source.device, exc)
            return
        counters.tags_skipped += skipped
        if not reads:
            return
        counters.reports += 1
        counters.tags += len(reads)
        self.bridge.hand_off(reads, self._waited)

    def _waited(self) -> None:
        self.source.counters.handoff_waits += 1

    def keepalive(self) -> None:
        self.source.counters.keepalives += 1

    def event(self, message: Any) -> None:
        """A refused connection (another client holds the reader) is the reason to show."""
        data = message.msgdict["READER_EVENT_NOTIFICATION"].get("ReaderEventNotificationData")
        attempt = (data or {}).get("ConnectionAttemptEvent") or {}
        status = attempt.get("Status", "Success")
        if status != "Success":
            self.bridge.config_error = f"the reader refused the connection: {status}"

    def decode_error(self, frame: bytes, exc: BaseException) -> None:
        self.source.counters.decode_errors += 1
        if not _worth_logging(self.source.counters.decode_errors):
            return
        kind, _, _ = _HEADER.unpack_from(frame)
        log.warning(
            "rfid %s: skipped an LLRP frame sllurp cannot decode (type %d, %d bytes): %s: %s",
            self.source.device,
            kind & 0x3FF,
            len(frame),
            type(exc).__name__,
            exc,
        )

    def protocol_error(self, exc: BaseException) -> None:
        self.source.counters.protocol_errors += 1
        if not _worth_logging(self.source.counters.protocol_errors):
            return
        log.warning("rfid %s: sllurp failed on a message: %r", self.source.device, exc)


def _worth_logging(count: int) -> bool:
    """The first few of a kind of error, then one in LOG_EVERY (all of them are counted)."""
    return count <= LOG_FIRST or count % LOG_EVERY == 0


class _ReaderClient(LLRPReaderClient):  # type: ignore[misc]
    """sllurp's reader client with our framing (see the module docstring)."""

    _socket: socket.socket | None

    def __init__(
        self,
        host: str,
        port: int,
        profile: RfidReaderProfile,
        hooks: _Hooks,
        *,
        timeout_s: float,
        frame_bytes_max: int,
    ) -> None:
        super().__init__(host, port, config=reader_config(profile), timeout=timeout_s)
        self.llrp = _Client(
            profile.tx_power_dbm,
            config=self.config,
            transport_tx_write=self.send_data,
            state_change_callback=self._on_llrp_state_changed,
        )
        self._hooks = hooks
        self._frame_bytes_max = frame_bytes_max
        self._buffer = bytearray()
        self.add_message_callback("RO_ACCESS_REPORT", lambda _c, msg: hooks.report(msg))
        self.add_message_callback("KEEPALIVE", lambda _c, _m: hooks.keepalive())
        self.add_message_callback("READER_EVENT_NOTIFICATION", lambda _c, m: hooks.event(m))
        self.add_state_callback(LLRPReaderState.STATE_INVENTORYING, self._inventorying)

    def _inventorying(self, _client: Any, _state: int) -> None:
        self._hooks.bridge.post(_Inventorying(self.llrp.tx_power_chosen))

    def _connect_socket(self) -> bool:
        # sllurp's own leaves the socket of a refused connect unclosed (a ResourceWarning
        # per retry); create_connection closes it.
        if self._socket:
            raise ReaderConfigurationError("Already connected")
        sock = socket.create_connection((self._host, self._port), timeout=self._socktimeout)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socket = sock
        return True

    def main_loop(self) -> None:
        try:
            if not self._hooks.bridge.closing.is_set():  # else: closed while connecting
                super().main_loop()
        finally:
            self._hard_disconnect()
            self._hooks.bridge.post(_Ended())

    def raw_data_received(self, data: bytes) -> None:
        bridge = self._hooks.bridge
        bridge.busy = True
        try:
            self._receive(data)
        finally:
            bridge.busy = False
            bridge.heard()

    def _receive(self, data: bytes) -> None:
        self._buffer += data
        start = 0
        while len(self._buffer) - start >= _HEADER.size:
            _, length, _ = _HEADER.unpack_from(self._buffer, start)
            if not _HEADER.size <= length <= self._frame_bytes_max:
                self._buffer.clear()
                self._hooks.source.counters.decode_errors += 1
                reason = f"LLRP frame of {length} bytes (max {self._frame_bytes_max}): framing lost"
                self._hooks.bridge.config_error = reason
                raise ReaderConfigurationError(reason)
            if len(self._buffer) - start < length:
                break
            frame = bytes(self._buffer[start : start + length])
            start += length
            self._frame(frame)
        del self._buffer[:start]

    def _frame(self, frame: bytes) -> None:
        try:
            message = LLRPMessage(msgbytes=frame)
        except Exception as exc:  # sllurp raises LLRPError, struct.error, ...
            self._hooks.decode_error(frame, exc)
            return
        self._on_llrp_message_received(message)  # our callbacks: the report hand-off
        try:
            self.llrp.handleMessage(message)
        except ReaderConfigurationError as exc:
            self._hooks.bridge.config_error = str(exc)
            raise
        except OSError:
            raise  # a failed send: sllurp's main loop treats it as a lost connection
        except Exception as exc:  # sllurp's state machine on odd replies
            self._hooks.protocol_error(exc)

    def close(self) -> None:
        """Stop at once, from the loop: the reader thread closes its socket as it ends.

        A shutdown wakes sllurp's select with an end of file; closing the socket under it
        instead makes sllurp log a traceback (recv on a closed descriptor).
        """
        self._hooks.bridge.closing.set()
        self.disconnect_requested.set()
        self._stop_main_loop.set()
        sock = self._socket
        if self._socket_thread is None or sock is None:
            self._hard_disconnect()
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    def _hard_disconnect(self) -> None:
        # the loop and the reader thread may both get here; sllurp's check-then-close races
        with contextlib.suppress(OSError, AttributeError):
            self.hard_disconnect()


# --- the source ----------------------------------------------------------------------------


class RfidLlrpSource:
    """An LLRP reader at host:port, configured from its reader profile; reconnects forever."""

    kind = "rfid"

    def __init__(
        self,
        device: str,
        reader_profile: RfidReaderProfile,
        host: str,
        port: int,
        *,
        clock: Clock = utc_now,
        backoff: Backoff | None = None,
        reports_queued_max: int = REPORTS_QUEUED_MAX,
        frame_bytes_max: int = FRAME_BYTES_MAX,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        setup_timeout_s: float = SETUP_TIMEOUT_S,
    ) -> None:
        assert reports_queued_max >= 1
        self.device = device
        self.profile = reader_profile
        self.host = host
        self.port = port
        self.clock = clock
        self.counters = RfidCounters()
        self.reports_queued_max = reports_queued_max
        self.frame_bytes_max = frame_bytes_max
        self.connect_timeout_s = connect_timeout_s
        self.setup_timeout_s = setup_timeout_s
        self._backoff = backoff or Backoff(0.2, 10.0)
        self.report = OutageReport(log, f"rfid {device}")  # steady, not at every retry
        self._state = DeviceState.UNKNOWN
        self._problem: str | None = None
        self.tx_power: tuple[int, float] | None = None  # (table index, dBm) the reader runs at

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def keepalive_timeout_s(self) -> float:
        return self.profile.keepalive_s * self.profile.keepalive_missed_max

    def status(self) -> DeviceStatus:
        c = self.counters
        detail = (
            f"reports={c.reports} tags={c.tags} reconnects={c.reconnects} "
            f"decode_errors={c.decode_errors} protocol_errors={c.protocol_errors} "
            f"keepalive_timeouts={c.keepalive_timeouts} setup_timeouts={c.setup_timeouts} "
            f"handoff_waits={c.handoff_waits}"
        )
        if self.tx_power is not None:
            detail = f"{detail} tx_power={self.tx_power[1]}dBm(index {self.tx_power[0]})"
        if self._problem is not None:
            detail = f"{detail}; {self._problem}"
        return DeviceStatus(kind=self.kind, state=self._state, detail=detail[:DETAIL_CHARS_MAX])

    def health(self) -> SourceHealth:
        c = self.counters
        errors = c.failures + c.decode_errors + c.protocol_errors
        return SourceHealth(errors, latency_ms_sum=c.report_gap_ms_sum, latencies=c.report_gaps)

    async def batches(self) -> AsyncIterator[list[TagRead]]:
        while True:
            bridge = _Bridge(asyncio.get_running_loop(), self.reports_queued_max)
            client = self._client(bridge)
            try:
                await self._connect(client)
                async for reads in self._reports(bridge):
                    yield reads
                    bridge.accepted()
                reason = bridge.config_error or f"{self.endpoint}: connection lost"
            except SourceError as exc:
                reason = str(exc)
            finally:
                client.close()
            await self._pause(reason)

    def _client(self, bridge: _Bridge) -> _ReaderClient:
        return _ReaderClient(
            self.host,
            self.port,
            self.profile,
            _Hooks(self, bridge),
            timeout_s=self.connect_timeout_s,
            frame_bytes_max=self.frame_bytes_max,
        )

    async def _connect(self, client: _ReaderClient) -> None:
        try:
            await asyncio.to_thread(client.connect)
        except (OSError, ReaderConfigurationError) as exc:
            raise SourceError(f"cannot connect to {self.endpoint}: {exc}") from exc

    async def _reports(self, bridge: _Bridge) -> AsyncIterator[list[TagRead]]:
        """Reports of one connection until it ends; SourceError when it is found dead."""
        setup_deadline_s: float | None = time.monotonic() + self.setup_timeout_s
        last_report_s: float | None = None
        while True:
            try:
                async with asyncio.timeout(self._wait_s(setup_deadline_s)):
                    event = await bridge.events.get()
            except TimeoutError:
                self._check_alive(bridge, setup_deadline_s)
                continue
            if isinstance(event, _Ended):
                return
            if isinstance(event, _Inventorying):
                setup_deadline_s = None
                self._up(event.tx_power)
                continue
            last_report_s = self._report_gap(last_report_s)
            yield event.reads

    def _report_gap(self, last_report_s: float | None) -> float:
        now_s = time.monotonic()
        if last_report_s is not None:
            self.counters.report_gaps += 1
            self.counters.report_gap_ms_sum += (now_s - last_report_s) * 1000
        return now_s

    def _wait_s(self, setup_deadline_s: float | None) -> float:
        if setup_deadline_s is not None:
            return max(0.0, setup_deadline_s - time.monotonic())
        return self.profile.keepalive_s

    def _check_alive(self, bridge: _Bridge, setup_deadline_s: float | None) -> None:
        if setup_deadline_s is not None and time.monotonic() >= setup_deadline_s:
            self.counters.setup_timeouts += 1
            raise SourceError(
                f"{self.endpoint}: not inventorying {self.setup_timeout_s} s after connecting"
                + (f" ({bridge.config_error})" if bridge.config_error else "")
            )
        if setup_deadline_s is None and bridge.silent_s() > self.keepalive_timeout_s:
            self.counters.keepalive_timeouts += 1
            raise SourceError(
                f"{self.endpoint}: silent for {bridge.silent_s():.1f} s "
                f"({self.profile.keepalive_missed_max} keepalives of {self.profile.keepalive_s} s)"
            )

    def _up(self, tx_power: tuple[int, float] | None) -> None:
        self.counters.connects += 1
        self._backoff.reset()
        self._state, self._problem = DeviceState.UP, None
        self.tx_power = tx_power
        power = "" if tx_power is None else f" at {tx_power[1]} dBm (index {tx_power[0]})"
        back = self.report.recovered()
        log.info("rfid %s: inventorying on %s%s%s", self.device, self.endpoint, power, back)

    async def _pause(self, reason: str) -> None:
        self.counters.failures += 1
        self._state, self._problem = DeviceState.DOWN, reason[:DETAIL_CHARS_MAX]
        delay_s = self._backoff.next_s()
        self.report.failed(reason, delay_s)
        await asyncio.sleep(delay_s)
