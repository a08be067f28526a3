"""A load-cell shelf: one Modbus bus (TCP, or RS-485 RTU) of weighing transmitters, polled.

The only edge module that imports pymodbus (3.16.x, pinned: its API changes in minor
releases). It stays a thin adapter: what to read and what the registers mean is
edge_agent/sources/modbus_map.py, when to poll a failing unit is modbus_units.py.

One poll cycle reads the units in turn (one request in flight on the bus, ever), each with the
fewest requests that cover its channels, and yields one batch: a WeightSample per lane whose
cells all read OK. The next cycle starts `poll_interval_ms` after this one started (at once,
counted as an overrun, when the cycle took longer); the batch is yielded before the wait, so a
slow journal holds the bus back rather than letting reads pile up.

pymodbus' two error channels (raised ModbusException / ConnectionException / timeouts, and
error responses with an exception code) become one ModbusReadError (a SourceError) naming the
unit, the function, the address and the reason. pymodbus' own retries and reconnects are off:
a unit that fails is tried again next cycle, after `failures_before_backoff_max` failures in a
row with a jittered backoff; a lost TCP connection (or one over which no unit has answered for
`silent_cycles_max` cycles: a peer gone without a FIN) is reopened with a jittered backoff.
A corrupt RTU frame (bad CRC) is dropped by pymodbus' framer and shows up as a timeout of that
request; bytes that arrived without making an answer are counted as a bad frame instead.
"""

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ModbusPDU

from device_profiles.serial import SerialSettings
from device_profiles.weighing import WeighingProfile
from edge_agent.backoff import Backoff
from edge_agent.outage import OutageReport
from edge_agent.readings import WeightSample
from edge_agent.recognizers.base import Clock
from edge_agent.settings import LaneConfig
from edge_agent.sources.base import SourceError, SourceHealth
from edge_agent.sources.modbus_map import (
    GAP_REGISTERS_MAX,
    Cell,
    CellError,
    CellValue,
    ReadRequest,
    RegisterKey,
    decode_cell,
    lane_samples,
    plan_reads,
    register_values,
)
from edge_agent.sources.modbus_units import FAILURES_BEFORE_BACKOFF_MAX, UnitHealth
from stockwire.errors import ConfigError
from stockwire.status import DeviceState, DeviceStatus

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0
SILENT_CYCLES_MAX = 3
DETAIL_CHARS_MAX = 500
NO_RESPONSES_MAX = 1_000_000  # pymodbus closes a TCP link after this many timeouts: never
EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


def _stopbits(stopbits: float) -> int:
    """pyserial takes 1, 1.5 or 2; pymodbus types it int."""
    return stopbits if stopbits == 1.5 else int(stopbits)  # type: ignore[return-value]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class ModbusTcp:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ModbusRtu:
    path: str
    serial: SerialSettings

    def __str__(self) -> str:
        return self.path


Transport = ModbusTcp | ModbusRtu


class ModbusReadError(SourceError):
    """One failed request; `kind` is timeout, bad_frame, exception, connection or modbus."""

    def __init__(self, request: ReadRequest, unit: int, kind: str, reason: str) -> None:
        self.request = request
        self.unit = unit
        self.kind = kind
        self.reason = reason
        super().__init__(f"{request.describe(unit)}: {reason}")


@dataclass(slots=True)
class ShelfCounters:
    connects: int = 0
    connect_failures: int = 0  # connections that failed to open or were lost
    polls: int = 0  # cycles
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)  # by kind (see ModbusReadError)
    cell_errors: int = 0  # channels that answered without a usable weight
    overruns: int = 0  # cycles longer than poll_interval_ms
    lanes_left_out: int = 0  # lane-polls without a sample
    unit_skips: int = 0  # unit-polls skipped while the unit backs off
    samples: int = 0
    polls_timed: int = 0  # polls that completed, with their round trips summed:
    poll_ms_sum: float = 0.0


def _channels_by_unit(
    device: str, profile: WeighingProfile, lanes: Sequence[LaneConfig]
) -> dict[int, set[int]]:
    """The channels the lanes use on each unit; a ConfigError for a cell the model lacks."""
    if not lanes:
        raise ConfigError(f"device {device!r}: lanes: a shelf needs at least one lane")
    channels: dict[int, set[int]] = {}
    for lane in lanes:
        for cell in lane.cells:
            if not 1 <= cell.channel <= profile.channels:
                raise ConfigError(
                    f"device {device!r}: lane {lane.id!r}: unit {cell.unit} channel "
                    f"{cell.channel}: profile {profile.name!r} has channels 1..{profile.channels}"
                )
            channels.setdefault(cell.unit, set()).add(cell.channel)
    return channels


class ModbusShelfSource:
    """The shelf's transmitters on one bus, all of `profile`'s model; reconnects forever."""

    kind = "shelf"

    def __init__(
        self,
        device: str,
        profile: WeighingProfile,
        lanes: Sequence[LaneConfig],
        transport: Transport,
        *,
        poll_interval_ms: int,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
        unit_backoff: Callable[[], Backoff] | None = None,
        failures_before_backoff_max: int = FAILURES_BEFORE_BACKOFF_MAX,
        silent_cycles_max: int = SILENT_CYCLES_MAX,
        gap_registers_max: int = GAP_REGISTERS_MAX,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        assert poll_interval_ms > 0
        assert silent_cycles_max >= 1
        self.device = device
        self.profile = profile
        self.lanes = tuple(lanes)
        self.transport = transport
        self.poll_interval_ms = poll_interval_ms
        self.clock = clock
        self.monotonic = monotonic
        self.silent_cycles_max = silent_cycles_max
        self.connect_timeout_s = connect_timeout_s
        self.counters = ShelfCounters()
        channels = _channels_by_unit(device, profile, self.lanes)
        self.plans = {
            unit: plan_reads(profile, sorted(chans), gap_registers_max=gap_registers_max)
            for unit, chans in sorted(channels.items())
        }
        self._channels = {unit: sorted(chans) for unit, chans in channels.items()}
        self.units = {
            unit: UnitHealth(
                unit,
                failures_before_backoff_max=failures_before_backoff_max,
                backoff=unit_backoff() if unit_backoff else None,
            )
            for unit in self.plans
        }
        self._backoff = backoff or Backoff(0.2, 10.0)
        self.report = OutageReport(log, f"shelf {device}")  # steady, not at every retry
        self._connected = False
        self._problem: str | None = None
        self._left_out: dict[str, str] = {}
        self._silent_cycles = 0
        self._rx_bytes = 0

    # --- status ------------------------------------------------------------------------------

    def status(self) -> DeviceStatus:
        return DeviceStatus(kind=self.kind, state=self.state(), detail=self._detail())

    def health(self) -> SourceHealth:
        c = self.counters
        errors = sum(c.errors.values()) + c.connect_failures
        return SourceHealth(errors, latency_ms_sum=c.poll_ms_sum, latencies=c.polls_timed)

    def state(self) -> DeviceState:
        if self.counters.polls == 0 and self._problem is None:
            return DeviceState.UNKNOWN
        if not self._connected or not any(u.answering for u in self.units.values()):
            return DeviceState.DOWN
        if self._left_out or not all(u.answering for u in self.units.values()):
            return DeviceState.DEGRADED
        return DeviceState.UP

    def _detail(self) -> str:
        c = self.counters
        errors = " ".join(f"{kind}={n}" for kind, n in sorted(c.errors.items()))
        parts = [
            f"{self.transport} polls={c.polls} requests={c.requests} overruns={c.overruns} "
            f"lanes_left_out={c.lanes_left_out} cell_errors={c.cell_errors} {errors}".rstrip()
        ]
        parts += [u.describe() for u in self.units.values() if not u.answering]
        parts += [f"lane {lane}: {why}" for lane, why in sorted(self._left_out.items())]
        if self._problem is not None:
            parts.append(self._problem)
        return "; ".join(parts)[:DETAIL_CHARS_MAX]

    # --- the loop ------------------------------------------------------------------------------

    async def batches(self) -> AsyncIterator[list[WeightSample]]:
        while True:
            client = self._client()
            try:
                await self._connect(client)
                async for batch in self._polls(client):
                    yield batch
                reason = "connection closed"  # pragma: no cover - _polls never returns
            except SourceError as exc:
                reason = str(exc)
            finally:
                self._connected = False
                client.close()
            await self._pause(reason)

    def _client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        timeout_s = self.profile.response_timeout_ms / 1000
        client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if isinstance(self.transport, ModbusTcp):
            client = AsyncModbusTcpClient(
                self.transport.host,
                port=self.transport.port,
                timeout=timeout_s,
                retries=0,
                reconnect_delay=0,
                trace_packet=self._traced,
            )
        else:
            line = self.transport.serial
            client = AsyncModbusSerialClient(
                self.transport.path,
                framer=FramerType.RTU,
                baudrate=line.baud,
                bytesize=line.bytesize,
                parity=line.parity,
                stopbits=_stopbits(line.stopbits),
                timeout=timeout_s,
                retries=0,
                reconnect_delay=0,
                trace_packet=self._traced,
            )
        client.set_max_no_responses(NO_RESPONSES_MAX)
        return client

    def _traced(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            self._rx_bytes += len(data)
        return data

    async def _connect(self, client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                ok = await client.connect()
        except TimeoutError:
            ok = False
        except (OSError, ModbusException) as exc:
            raise SourceError(f"cannot open {self.transport}: {exc}") from exc
        if not ok:
            raise SourceError(f"cannot open {self.transport}")
        self.counters.connects += 1
        self._connected = True
        self._problem = None
        self._silent_cycles = 0
        self._backoff.reset()
        log.info(
            "shelf %s: connected to %s%s", self.device, self.transport, self.report.recovered()
        )

    async def _polls(
        self, client: AsyncModbusTcpClient | AsyncModbusSerialClient
    ) -> AsyncIterator[list[WeightSample]]:
        interval_s = self.poll_interval_ms / 1000
        while True:
            started_s = self.monotonic()
            samples = await self._cycle(client)
            self.counters.polls_timed += 1
            self.counters.poll_ms_sum += (self.monotonic() - started_s) * 1000
            if samples:
                self.counters.samples += len(samples)
                yield samples
            wait_s = started_s + interval_s - self.monotonic()
            if wait_s < 0:
                self.counters.overruns += 1
            else:
                await asyncio.sleep(wait_s)

    async def _cycle(
        self, client: AsyncModbusTcpClient | AsyncModbusSerialClient
    ) -> list[WeightSample]:
        cells: dict[Cell, CellValue | CellError] = {}
        read_at: dict[int, datetime] = {}
        polled = answered = 0
        for unit, health in self.units.items():
            if not health.due(self.monotonic()):
                self.counters.unit_skips += 1
                self._fail_cells(cells, unit, f"unit {unit} backing off ({health.last_error})")
                continue
            polled += 1
            try:
                registers = await self._read_unit(client, unit)
            except ModbusReadError as exc:
                if exc.kind == "connection":
                    raise  # the bus, not the unit: reopened with the source's backoff
                if health.answering:
                    log.warning("shelf %s: %s", self.device, exc)
                health.failed(str(exc), self.monotonic())
                self._fail_cells(cells, unit, str(exc))
                continue
            answered += 1
            if not health.answering:
                log.info("shelf %s: unit %d answers again", self.device, unit)
            health.answered()
            read_at[unit] = self.clock()
            for channel in self._channels[unit]:
                cells[(unit, channel)] = self._decode(registers, unit, channel)
        self.counters.polls += 1
        self._check_silence(polled, answered)
        outcome = lane_samples(self.device, self.lanes, cells, read_at)
        self.counters.lanes_left_out += len(outcome.left_out)
        self._left_out = outcome.left_out
        return outcome.samples

    def _fail_cells(self, cells: dict[Cell, CellValue | CellError], unit: int, why: str) -> None:
        for channel in self._channels[unit]:
            cells[(unit, channel)] = CellError(why)

    def _decode(
        self, registers: dict[RegisterKey, int], unit: int, channel: int
    ) -> CellValue | CellError:
        try:
            return decode_cell(self.profile, registers, channel)
        except CellError as exc:
            self.counters.cell_errors += 1
            return CellError(f"unit {unit} {exc}")

    def _check_silence(self, polled: int, answered: int) -> None:
        """No unit has answered for a while over TCP: the peer may be gone without a FIN."""
        if answered:
            self._silent_cycles = 0
            return
        if not polled:  # every unit is backing off: nothing was asked
            return
        self._silent_cycles += 1
        if isinstance(self.transport, ModbusTcp) and self._silent_cycles >= self.silent_cycles_max:
            raise SourceError(f"{self.transport}: no unit answered in {self._silent_cycles} polls")

    async def _read_unit(
        self, client: AsyncModbusTcpClient | AsyncModbusSerialClient, unit: int
    ) -> dict[RegisterKey, int]:
        answers = []
        for request in self.plans[unit]:  # a failed request ends the unit's turn
            answers.append((request, await self._request(client, unit, request)))
        return register_values(answers)

    async def _request(
        self,
        client: AsyncModbusTcpClient | AsyncModbusSerialClient,
        unit: int,
        request: ReadRequest,
    ) -> list[int]:
        self.counters.requests += 1
        try:
            response = await self._send(client, unit, request)
        except ModbusReadError as exc:
            self.counters.errors[exc.kind] += 1
            raise
        registers = list(response.registers)
        if len(registers) != request.count:
            self.counters.errors["bad_frame"] += 1
            raise ModbusReadError(
                request, unit, "bad_frame", f"{len(registers)} registers in the answer"
            )
        return registers

    async def _send(
        self,
        client: AsyncModbusTcpClient | AsyncModbusSerialClient,
        unit: int,
        request: ReadRequest,
    ) -> ModbusPDU:
        if not client.connected:
            raise ModbusReadError(request, unit, "connection", f"{self.transport}: not connected")
        read = (
            client.read_holding_registers
            if request.register_type == "holding"
            else client.read_input_registers
        )
        self._rx_bytes = 0
        try:
            response = await read(request.address, count=request.count, device_id=unit)
            _reraise_lost_cancel()
        except ConnectionException as exc:
            raise ModbusReadError(request, unit, "connection", str(exc)) from exc
        except (ModbusIOException, TimeoutError) as exc:
            received = self._rx_bytes  # before a late answer can add to it
            await self._after_silence()
            if not client.connected:
                raise ModbusReadError(request, unit, "connection", "connection lost") from exc
            if received:
                reason = f"no valid answer ({received} bytes of a bad frame)"
                raise ModbusReadError(request, unit, "bad_frame", reason) from exc
            reason = f"no answer within {self.profile.response_timeout_ms} ms"
            raise ModbusReadError(request, unit, "timeout", reason) from exc
        except ModbusException as exc:
            raise ModbusReadError(request, unit, "modbus", str(exc)) from exc
        if response.isError():
            code = response.exception_code
            name = EXCEPTION_NAMES.get(code, "unknown")
            raise ModbusReadError(request, unit, "exception", f"exception {code} ({name})")
        return response

    async def _after_silence(self) -> None:
        """On RTU, let a late answer go by before the next request. pymodbus' RTU framer skips
        another unit's frame, but RTU has no transaction id: a late answer of this unit would
        be taken for its next request. Arriving now, it finds no request and is dropped."""
        if isinstance(self.transport, ModbusRtu):
            await asyncio.sleep(self.profile.response_timeout_ms / 1000)

    async def _pause(self, reason: str) -> None:
        self._problem = reason[:DETAIL_CHARS_MAX]
        self.counters.connect_failures += 1
        delay_s = self._backoff.next_s()
        self.report.failed(reason, delay_s)
        await asyncio.sleep(delay_s)


def _reraise_lost_cancel() -> None:
    """Python 3.11's asyncio.wait_for (inside pymodbus) returns the answer instead of raising
    when the task is cancelled just as the answer arrives: the cancel is lost, and a stopping
    edge would go on polling. The task still counts the request to cancel; honour it."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
