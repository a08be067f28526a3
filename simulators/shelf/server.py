"""Weighing transmitters on a Modbus bus, simulated: a pymodbus 3.16 server over TCP or RTU.

Every unit of the CellSource answers; each read is computed when it arrives (RegisterImage).
pymodbus' own request handler is replaced by `_Handler` for two reasons: its datastore hook
(SimDevice.action) runs after pymodbus' own range check, so quantity errors could not come
first, and its handler reads the pending request again after an await, so a late answer (a
slow fault) would take the unit id of the next request on the bus. `_Handler` keeps each
request with its answer and lets faults drop, delay or corrupt the answer.

Absence: on RTU an absent unit is silent. On TCP a server with one unit is a transmitter on
the network: while absent its listener is closed (connections refused) and open connections
are dropped; with several units it is a gateway, which answers 0x0B (GATEWAY TARGET DEVICE
FAILED TO RESPOND) for the absent unit.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
)
from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType as SimDataType
from pymodbus.simulator import SimData, SimDevice
from pymodbus.transaction import TransactionManager

from device_profiles.weighing import RegisterType, WeighingProfile
from simulators.shelf.cells import CellSource
from simulators.shelf.fault_plan import FaultPlan
from simulators.shelf.faults import ShelfFault
from simulators.shelf.registers_image import RegisterImage

log = logging.getLogger(__name__)

Link = Literal["tcp", "rtu"]
READ_TYPES: dict[int, RegisterType] = {3: "holding", 4: "input"}
ILLEGAL_FUNCTION = 0x01
SERVER_DEVICE_FAILURE = 0x04
GATEWAY_TARGET_FAILED = 0x0B
TCP_UNIT_ANY = (0, 255)  # unit ids a single transmitter on TCP answers as itself
ABSENCE_CHECK_MS = 20
MBAP_SIZE = 7
MBAP_LENGTH_MIN, MBAP_LENGTH_MAX = 2, 254  # unit id + a PDU of 1..253 bytes
RTU_CHARS_GAP = 3.5  # the Modbus RTU frame gap, in characters of 11 bits
RTU_GAP_MS_MIN = 10  # a pty has no baud rate; below this, scheduling jitter would split frames
PENDING_ANSWERS_MAX = 64  # per connection: more in flight and new requests go unanswered


@dataclass
class ShelfServerStats:
    """What the server did, for the bench's figures next to the edge's."""

    requests: int = 0  # decoded requests
    answers: int = 0  # frames sent (exception responses included)
    exceptions: int = 0  # exception responses sent
    unanswered: int = 0  # requests left without an answer (faults, unknown units)
    malformed: int = 0  # undecodable frames
    faults: dict[str, int] = field(default_factory=dict)  # kind -> requests it changed
    cpu_s: float = 0.0  # CPU time spent computing answers (thread time)

    def fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1


@dataclass(frozen=True, slots=True)
class Answer:
    response: ModbusPDU | None  # None: no answer
    delay_s: float = 0.0
    corrupt: bool = False
    drop: bool = False  # close the connection instead of answering


def exception(pdu: ModbusPDU, code: int) -> ExceptionResponse:
    return ExceptionResponse(pdu.function_code, code, pdu.dev_id, pdu.transaction_id)


def corrupt_frame(frame: bytes, link: Link) -> bytes:
    """RTU: the CRC inverted. TCP: the MBAP length one more than the bytes that follow."""
    if link == "rtu":
        return frame[:-2] + bytes(b ^ 0xFF for b in frame[-2:])
    length = int.from_bytes(frame[4:6], "big") + 1
    return frame[:4] + length.to_bytes(2, "big") + frame[6:]


def mbap_plausible(data: bytes) -> bool:
    """False when a Modbus TCP stream cannot start with an MBAP header here (protocol id not
    0, or a length no PDU has); True when it may, or too few bytes have come to tell."""
    if len(data) < MBAP_SIZE:
        return True
    protocol, length = int.from_bytes(data[2:4], "big"), int.from_bytes(data[4:6], "big")
    return protocol == 0 and MBAP_LENGTH_MIN <= length <= MBAP_LENGTH_MAX


class ShelfServer:
    """Weighing transmitters of one `profile` model, one per unit of `cells`, on one bus.

    `clock_s`: seconds since the run started (default: monotonic time since this object was
    made); readings and faults follow it.
    """

    def __init__(
        self,
        profile: WeighingProfile,
        cells: CellSource,
        *,
        faults: Sequence[ShelfFault] = (),
        clock_s: Callable[[], float] | None = None,
    ) -> None:
        self.profile = profile
        self.image = RegisterImage(profile, cells)
        self.faults = FaultPlan(self.image.units, faults)
        self.stats = ShelfServerStats()
        start = time.monotonic()
        self.clock_s = clock_s or (lambda: time.monotonic() - start)
        self._tcp: list[_TcpListener] = []
        self._serial: list[ModbusSerialServer] = []

    @property
    def units(self) -> list[int]:
        return self.image.units

    def inject(self, fault: ShelfFault) -> None:
        """Add a fault while running (active in [at_s, at_s + for_s) of `clock_s`)."""
        self.faults.add(fault)

    def clear(self, fault: ShelfFault) -> bool:
        """End a fault now; False if it was not there."""
        return self.faults.remove(fault)

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port (0: any free port); returns the bound port."""
        listener = _TcpListener(self, host, port)
        await listener.start()
        self._tcp.append(listener)
        return listener.port

    async def start_rtu(self, path: str) -> None:
        """Serve RTU frames on a serial device (e.g. one end of a socat pty pair)."""
        s = self.profile.serial
        server = _SerialServer(
            _context(self.units),
            port=path,
            baudrate=s.baud,
            bytesize=s.bytesize,
            parity=s.parity,
            stopbits=int(s.stopbits),
        )
        server.shelf = self
        await _serve(server, path)
        self._serial.append(server)

    async def close(self) -> None:
        for listener in self._tcp:
            await listener.close()
        for server in self._serial:
            await _shutdown(server)
        self._tcp, self._serial = [], []

    def decide(self, pdu: ModbusPDU, link: Link) -> Answer:
        """What the bus answers to `pdu` now (no I/O; the handler sends it)."""
        started = time.thread_time()
        try:
            return self._decide(pdu, link, self.clock_s())
        finally:
            self.stats.cpu_s += time.thread_time() - started

    def _decide(self, pdu: ModbusPDU, link: Link, t_s: float) -> Answer:
        self.stats.requests += 1
        unit = self._unit(pdu.dev_id, link)
        if unit is None:
            gateway = link == "tcp"
            return Answer(exception(pdu, GATEWAY_TARGET_FAILED) if gateway else None)
        fault = self.faults.active(unit, t_s)
        kind = fault.kind if fault else None
        if fault is not None:
            self.stats.fault(fault.kind)
        if kind == "absent":
            if link == "tcp" and len(self.units) == 1:
                return Answer(None, drop=True)
            return Answer(exception(pdu, GATEWAY_TARGET_FAILED) if link == "tcp" else None)
        if kind == "silent":
            return Answer(None)
        if fault is not None and kind == "exception":
            return Answer(exception(pdu, fault.exception_code))
        delay_s = fault.delay_ms / 1000 if fault is not None and kind == "slow" else 0.0
        return Answer(self._read(pdu, unit, t_s), delay_s, corrupt=kind == "bad-crc")

    def _unit(self, dev_id: int, link: Link) -> int | None:
        if dev_id in self.units:
            return dev_id
        if link == "tcp" and len(self.units) == 1 and dev_id in TCP_UNIT_ANY:
            return self.units[0]
        return None

    def _read(self, pdu: ModbusPDU, unit: int, t_s: float) -> ModbusPDU:
        register_type = READ_TYPES.get(pdu.function_code)
        if register_type is None:
            return exception(pdu, ILLEGAL_FUNCTION)
        try:
            result = self.image.read(unit, register_type, pdu.address, pdu.count, t_s)
        except Exception:  # a broken CellSource: the device fails, the server stays up
            log.exception("shelf server: unit %d: reading the cells failed", unit)
            return exception(pdu, SERVER_DEVICE_FAILURE)
        if result.exception_code is not None:
            return exception(pdu, result.exception_code)
        kind = (
            ReadHoldingRegistersResponse
            if register_type == "holding"
            else ReadInputRegistersResponse
        )
        return kind(
            registers=result.registers, dev_id=pdu.dev_id, transaction_id=pdu.transaction_id
        )

    def absent_now(self) -> bool:
        """True while the only unit of this server is absent (a TCP transmitter goes away)."""
        return len(self.units) == 1 and bool(self.faults.absent(self.clock_s()))


async def _serve(server: ModbusBaseServer, where: str) -> None:
    try:
        await server.serve_forever(background=True)
    except RuntimeError:  # pymodbus logged why (a warning): port taken, no such tty
        raise OSError(f"cannot serve on {where}") from None


async def _shutdown(server: ModbusBaseServer) -> None:
    await server.shutdown()  # type: ignore[no-untyped-call]


def _context(units: Sequence[int]) -> list[SimDevice]:
    """pymodbus wants a datastore; `_Handler` answers without it."""
    return [SimDevice(unit, simdata=[SimData(0, datatype=SimDataType.REGISTERS)]) for unit in units]


class _Handler(ServerRequestHandler):
    """One connection (TCP) or the serial line (RTU): each request keeps its own answer."""

    def __init__(self, owner: ModbusBaseServer, shelf: ShelfServer, link: Link) -> None:
        super().__init__(owner, None, None, None)  # type: ignore[no-untyped-call]
        self.shelf, self.link = shelf, link
        self.pending: set[asyncio.Task[None]] = set()
        self.frame_gap_s = max(
            RTU_CHARS_GAP * 11 / shelf.profile.serial.baud, RTU_GAP_MS_MIN / 1000
        )
        self.last_rx_s = 0.0

    def data_received(self, data: bytes) -> None:
        """RTU: a silence longer than a frame gap ends a frame, as on a real bus, so garbage
        (a partial frame, line noise) is dropped instead of stalling the frames after it."""
        if self.link == "rtu":
            now_s = time.monotonic()
            if self.recv_buffer and now_s - self.last_rx_s > self.frame_gap_s:
                self.shelf.stats.malformed += 1
                self.recv_buffer = b""
            self.last_rx_s = now_s
        super().data_received(data)

    def callback_data(self, data: bytes, addr: tuple[Any, ...] | None = None) -> int:
        """Take every complete request in `data` (a client may send several at once)."""
        used = 0
        while used < len(data):
            if self.link == "tcp" and not mbap_plausible(data[used:]):
                self.shelf.stats.malformed += 1
                self.close()  # framing is lost on this stream: drop it, as devices do
                return len(data)
            taken = self._take(data[used:], addr)
            if not taken:
                break
            used += taken
        return used

    def _take(self, data: bytes, addr: tuple[Any, ...] | None) -> int:
        try:
            used: int = TransactionManager.callback_data(self, data, addr)
        except ModbusIOException:  # a frame whose PDU does not decode
            self.shelf.stats.malformed += 1
            self._answer_undecodable(data, addr)
            return len(data)
        except Exception:  # garbage must never take the server down
            self.shelf.stats.malformed += 1
            log.debug("shelf server: dropped %d undecodable bytes", len(data), exc_info=True)
            return len(data)
        if (pdu := self.last_pdu) is not None:
            self.last_pdu = None
            self._spawn(pdu, self.last_addr)
        elif used:
            self.shelf.stats.malformed += 1  # bytes the framer threw away (an RTU CRC error)
        return used

    def _answer_undecodable(self, data: bytes, addr: tuple[Any, ...] | None) -> None:
        """A read of a bad quantity answers 03, any other function 01 (as `decide` does)."""
        try:
            _, dev_id, tid, frame = self.framer.decode(data)
        except Exception:
            return
        if frame:
            stub = ModbusPDU(dev_id=dev_id, transaction_id=tid)
            stub.function_code = frame[0] & 0x7F
            self._spawn(stub, addr)

    def _spawn(self, pdu: ModbusPDU, addr: tuple[Any, ...] | None) -> None:
        if len(self.pending) >= PENDING_ANSWERS_MAX:
            self.shelf.stats.unanswered += 1
            return
        task = asyncio.get_running_loop().create_task(self._answer(pdu, addr))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _answer(self, pdu: ModbusPDU, addr: tuple[Any, ...] | None) -> None:
        stats = self.shelf.stats
        try:
            answer = self.shelf.decide(pdu, self.link)
            if answer.drop:
                self.close()
            if answer.response is None or answer.drop:
                stats.unanswered += 1
                return
            if answer.delay_s:
                await asyncio.sleep(answer.delay_s)
            frame = self.framer.buildFrame(answer.response)
            if answer.corrupt:
                frame = corrupt_frame(frame, self.link)
            if not self.transport:
                stats.unanswered += 1
                return
            self.send(frame, addr)
            stats.answers += 1
            stats.exceptions += isinstance(answer.response, ExceptionResponse)
        except Exception:
            log.exception("shelf server: answering %s failed", pdu)

    def callback_disconnected(self, exc: Exception | None) -> None:
        for task in self.pending:
            task.cancel()
        super().callback_disconnected(exc)


class _TcpServer(ModbusTcpServer):
    shelf: ShelfServer

    def callback_new_connection(self) -> _Handler:
        return _Handler(self, self.shelf, "tcp")


class _SerialServer(ModbusSerialServer):
    shelf: ShelfServer

    def callback_new_connection(self) -> _Handler:
        return _Handler(self, self.shelf, "rtu")


class _TcpListener:
    """A TCP listener that a single-unit server closes while its unit is absent."""

    def __init__(self, shelf: ShelfServer, host: str, port: int) -> None:
        self.shelf, self.host, self.port = shelf, host, port
        self.server: _TcpServer | None = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._listen()
        if len(self.shelf.units) == 1:
            self._watch = asyncio.get_running_loop().create_task(self._follow_absence())

    async def _listen(self) -> None:
        server = _TcpServer(_context(self.shelf.units), address=(self.host, self.port))
        server.shelf = self.shelf
        await _serve(server, f"{self.host}:{self.port}")
        self.port = int(server.transport.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
        self.server = server

    async def _follow_absence(self) -> None:
        while True:
            await asyncio.sleep(ABSENCE_CHECK_MS / 1000)
            absent = self.shelf.absent_now()
            if absent and self.server is not None:
                await _shutdown(self.server)
                self.server = None
            elif not absent and self.server is None:
                try:
                    await self._listen()
                except OSError as e:  # the port is taken meanwhile: try again next tick
                    log.warning("shelf server: %s", e)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        if self.server is not None:
            await _shutdown(self.server)
            self.server = None
