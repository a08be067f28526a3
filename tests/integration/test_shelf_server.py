"""The shelf's Modbus server simulator against a real pymodbus client: loopback TCP and RTU
over a socat pty pair. Register maps of three styles round-trip; exceptions; every fault."""

import asyncio
import math
import os
import random
import struct
import tty
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from device_profiles.registers import decode, register_count
from device_profiles.weighing import WeighingProfile
from simulators.shelf.cells import CellReading
from simulators.shelf.fault_plan import FaultError
from simulators.shelf.faults import ShelfFault as Fault
from simulators.shelf.lanes import CellSpec, LaneSpec, Pieces
from simulators.shelf.noise import ShelfNoise
from simulators.shelf.server import ShelfServer
from simulators.shelf.world import ShelfWorld
from tests.integration.shelf_support import Cells, FakeClock
from tests.integration.socat_pty import pty_pair

TIMEOUT_S = 1.0
SHORT_TIMEOUT_S = 0.15


def weighing(**fields: Any) -> WeighingProfile:
    base = {"kind": "weighing-transmitter", "vendor": "Test", "model": "T", "transports": ["tcp"]}
    return WeighingProfile.model_validate(base | fields)


# Laumas W100 style: UINT32 magnitude high word first at 40008, sign and STABLE in 40007.
LAUMAS = weighing(
    name="laumas-style",
    address_base=1,
    weight={"address": 8, "type": "UINT32", "scale": 0.5},
    status={"address": 7, "stable_bit": 11, "negative_bit": 7, "error_bits": [0, 1]},
    registers_per_read_max=32,
)
# Seneca Z-SG style: net weight FLOAT32 at 40064, low word first; status at 40078.
SENECA = weighing(
    name="seneca-style",
    address_base=1,
    weight={"address": 64, "type": "FLOAT32", "byte_order": "CDAB"},
    status={"address": 78, "stable_bit": 4},
)
# A generic 4-channel module: INT32 input registers in 0.1 g, a MOTION bit and a data-ok bit.
MODULE = weighing(
    name="module-style",
    channels=4,
    channel_stride=4,
    weight={"register": "input", "address": 0, "type": "INT32", "scale": 0.1, "offset": -2.0},
    status={
        "register": "input",
        "address": 2,
        "stable_bit": 0,
        "stable_when_set": False,
        "ok_bit": 15,
        "error_bits": [13],
    },
    registers_per_read_max=8,
)


def grams_of(profile: WeighingProfile, registers: list[int]) -> tuple[float, int]:
    """What an edge would read: (grams, status word) from the registers of one channel."""
    w = profile.weight
    raw = decode(registers[: register_count(w.type)], w.type, w.byte_order)
    status = registers[-1] if profile.status is not None else 0
    if profile.status is not None and profile.status.negative_bit is not None:
        raw = -raw if status >> profile.status.negative_bit & 1 else raw
    return raw * w.scale + w.offset, status


@asynccontextmanager
async def connected(client: Any, server: ShelfServer) -> AsyncIterator[Any]:
    """`client` connected to the started `server`; both closed at the end."""
    try:
        assert await client.connect()
        yield client
    finally:
        client.close()
        await server.close()


@asynccontextmanager
async def tcp(server: ShelfServer, timeout_s: float = TIMEOUT_S) -> AsyncIterator[Any]:
    port = await server.start_tcp()
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=timeout_s, retries=0)
    async with connected(client, server):
        yield client


@asynccontextmanager
async def rtu(server: ShelfServer, timeout_s: float = TIMEOUT_S) -> AsyncIterator[Any]:
    async with pty_pair() as line:
        await server.start_rtu(line.device_end)
        client = AsyncModbusSerialClient(line.edge_end, timeout=timeout_s, retries=0)
        async with connected(client, server):
            yield client


async def read_channel(client: Any, profile: WeighingProfile, unit: int, channel: int) -> list[int]:
    """The weight registers then the status register of one channel (two reads if apart)."""
    w = profile.weight
    fc = (
        client.read_input_registers if w.register_type == "input" else client.read_holding_registers
    )
    at = profile.wire_address(w.address, channel)
    weight = await fc(at, count=register_count(w.type), device_id=unit)
    assert not weight.isError(), weight
    status: list[int] = []
    if profile.status is not None:
        s = profile.status
        fs = (
            client.read_input_registers
            if s.register_type == "input"
            else client.read_holding_registers
        )
        got = await fs(profile.wire_address(s.address, channel), count=1, device_id=unit)
        assert not got.isError(), got
        status = list(got.registers)
    return list(weight.registers) + status


def bits(word: int) -> set[int]:
    return {b for b in range(16) if word >> b & 1}


# -- register maps round-trip -------------------------------------------------------------------

GRAMS = [0.0, 1234.5, -812.0, 4_999.5, 0.4]


@pytest.mark.parametrize("profile", [LAUMAS, SENECA], ids=lambda p: p.name)
async def test_single_channel_maps_round_trip_over_tcp(profile: WeighingProfile) -> None:
    cells = Cells({(1, 1): CellReading(0.0, stable=True)})
    async with tcp(ShelfServer(profile, cells)) as client:
        for grams in GRAMS:
            cells.readings[(1, 1)] = CellReading(grams, stable=grams > 0)
            got, status = grams_of(profile, await read_channel(client, profile, 1, 1))
            assert got == pytest.approx(grams, abs=profile.weight.scale / 2 + 1e-3)
            assert profile.status is not None
            assert (profile.status.stable_bit in bits(status)) == (grams > 0)


async def test_laumas_sign_and_stable_bits_at_one_based_addresses() -> None:
    cells = Cells({(1, 1): CellReading(-1234.0, stable=True)})
    async with tcp(ShelfServer(LAUMAS, cells)) as client:
        got = await client.read_holding_registers(6, count=3, device_id=1)  # 40007..40009
        assert got.registers == [1 << 11 | 1 << 7, 0, 2468]  # 1234 g / 0.5 g, sign in b7
        cells.readings[(1, 1)] = CellReading(0.2, stable=False, error=True)
        got = await client.read_holding_registers(6, count=3, device_id=1)
        assert got.registers == [1 << 0, 0, 0]  # rounds to 0: no "-0"; load-cell error b0


async def test_four_channel_input_module_with_stride_over_rtu() -> None:
    readings = {(3, ch): CellReading(100.0 * ch, stable=ch % 2 == 0) for ch in (1, 2, 4)}
    cells = Cells(readings)  # channel 3 has no cell wired
    async with rtu(ShelfServer(MODULE, cells)) as client:
        for ch in (1, 2, 4):
            grams, status = grams_of(MODULE, await read_channel(client, MODULE, 3, ch))
            assert grams == pytest.approx(100.0 * ch)
            assert bits(status) == ({15} if ch % 2 == 0 else {0, 15})  # MOTION when unstable
        whole = await client.read_input_registers(0, count=8, device_id=3)  # channels 1..2
        assert whole.registers[:3] == [0, 1020, 1 << 0 | 1 << 15]
        assert whole.registers[3] == 0  # inside the area, not in the map
        _, status = grams_of(MODULE, await read_channel(client, MODULE, 3, 3))
        assert bits(status) == {0, 13}  # no cell: error, not ok, in motion


async def test_two_units_on_one_rtu_bus_polled_in_turn() -> None:
    cells = Cells({(1, 1): CellReading(10.0, True), (2, 1): CellReading(-20.0, True)})
    async with rtu(ShelfServer(LAUMAS, cells)) as client:
        for _ in range(5):
            for unit, grams in ((1, 10.0), (2, -20.0)):
                got, _ = grams_of(LAUMAS, await read_channel(client, LAUMAS, unit, 1))
                assert got == grams
        client.comm_params.timeout_connect = SHORT_TIMEOUT_S
        with pytest.raises(ModbusException):  # no unit 9 on the bus: nobody answers
            await client.read_holding_registers(6, count=3, device_id=9)
        client.comm_params.timeout_connect = TIMEOUT_S
        got, _ = grams_of(LAUMAS, await read_channel(client, LAUMAS, 2, 1))
        assert got == -20.0


async def test_readings_are_taken_at_the_servers_clock() -> None:
    clock = FakeClock(12.5)
    cells = Cells({(1, 1): CellReading(1.0, True)})
    async with tcp(ShelfServer(SENECA, cells, clock_s=clock)) as client:
        await read_channel(client, SENECA, 1, 1)
        clock.t_s = 13.0
        await read_channel(client, SENECA, 1, 1)
    assert cells.asked == [12.5, 12.5, 13.0, 13.0]


# -- exception responses ------------------------------------------------------------------------


def exception_code(response: ModbusPDU) -> int:
    assert isinstance(response, ExceptionResponse), response
    return int(response.exception_code)


async def test_exception_responses() -> None:
    cells = Cells({(1, 1): CellReading(1.0, True), (2, 1): CellReading(2.0, True)})
    async with tcp(ShelfServer(LAUMAS, cells)) as client:
        assert exception_code(await client.read_holding_registers(6, count=4, device_id=1)) == 2
        assert exception_code(await client.read_holding_registers(0, count=33, device_id=1)) == 3
        assert exception_code(await client.read_input_registers(6, count=1, device_id=1)) == 2
        assert exception_code(await client.read_coils(0, count=1, device_id=1)) == 1
        assert exception_code(await client.write_register(5, 130, device_id=1)) == 1
        assert exception_code(await client.read_holding_registers(6, count=1, device_id=5)) == 11
        zeros = await client.read_holding_registers(0, count=6, device_id=2)
        assert zeros.registers == [0] * 6  # the device's other registers exist and read 0


async def test_a_single_tcp_transmitter_answers_unit_0_and_255_as_itself() -> None:
    cells = Cells({(4, 1): CellReading(3.0, True)})
    async with tcp(ShelfServer(SENECA, cells)) as client:
        for unit in (0, 255, 4):
            got = await client.read_holding_registers(63, count=2, device_id=unit)
            assert decode(got.registers, "FLOAT32", "CDAB") == 3.0


def test_bad_cells_and_faults_are_refused_with_what_and_where() -> None:
    with pytest.raises(ValueError, match=r"cell 1:2: profile 'laumas-style' has channels 1..1"):
        ShelfServer(LAUMAS, Cells({(1, 2): CellReading(0.0, True)}))
    with pytest.raises(ValueError, match=r"cell 300:1: unit must be 1..247"):
        ShelfServer(LAUMAS, Cells({(300, 1): CellReading(0.0, True)}))
    # the profile itself refuses overlapping channels now (device_profiles/weighing.py)
    with pytest.raises(ValueError, match=r"weight of channel 2 and weight of channel 1 share"):
        weighing(
            name="overlap", channels=2, channel_stride=1, weight={"address": 0, "type": "INT32"}
        )
    server = ShelfServer(LAUMAS, Cells({(1, 1): CellReading(0.0, True)}))
    with pytest.raises(FaultError, match=r"fault 'melt' on unit 1 at 0 s: kind must be one of"):
        server.inject(Fault(0, "melt", 1, 1))  # type: ignore[arg-type]
    with pytest.raises(FaultError, match=r"unit: no such unit"):
        server.inject(Fault(0, "silent", 2, 1))
    with pytest.raises(FaultError, match=r"delay_ms must be > 0 for a slow fault"):
        server.inject(Fault(0, "slow", 1, 1))


# -- faults -------------------------------------------------------------------------------------


async def test_faults_follow_the_clock_window() -> None:
    clock = FakeClock(9.0)
    cells = Cells({(1, 1): CellReading(1.0, True)})
    fault = Fault(at_s=10.0, kind="exception", unit=1, for_s=5.0, exception_code=6)
    async with tcp(ShelfServer(LAUMAS, cells, faults=[fault], clock_s=clock)) as client:
        for t_s, failing in ((9.0, False), (10.0, True), (14.9, True), (15.0, False)):
            clock.t_s = t_s
            got = await client.read_holding_registers(6, count=3, device_id=1)
            assert got.isError() == failing, t_s
            assert not failing or exception_code(got) == 6


async def test_slow_and_silent_units() -> None:
    clock = FakeClock(0.0)
    cells = Cells({(1, 1): CellReading(1.0, True), (2, 1): CellReading(2.0, True)})
    server = ShelfServer(LAUMAS, cells, clock_s=clock)
    async with tcp(server, timeout_s=SHORT_TIMEOUT_S) as client:
        slow = Fault(0.0, "slow", 1, math.inf, delay_ms=600)
        server.inject(slow)
        with pytest.raises(ModbusException):
            await client.read_holding_registers(6, count=3, device_id=1)
        assert server.clear(slow)
        server.inject(Fault(0.0, "slow", 1, math.inf, delay_ms=20))
        client.comm_params.timeout_connect = TIMEOUT_S
        got = await client.read_holding_registers(6, count=3, device_id=1)
        assert got.registers == [1 << 11, 0, 2]
        server.inject(Fault(0.0, "silent", 2, math.inf))
        client.comm_params.timeout_connect = SHORT_TIMEOUT_S
        with pytest.raises(ModbusException):
            await client.read_holding_registers(6, count=3, device_id=2)
    assert server.stats.faults == {"slow": 2, "silent": 1}


async def test_a_late_answer_keeps_its_own_unit_on_rtu() -> None:
    cells = Cells({(1, 1): CellReading(1.0, True), (2, 1): CellReading(2.0, True)})
    server = ShelfServer(LAUMAS, cells)
    server.inject(Fault(0.0, "slow", 1, math.inf, delay_ms=300))
    async with rtu(server, timeout_s=SHORT_TIMEOUT_S) as client:
        with pytest.raises(ModbusException):  # unit 1 answers after the client gave up ...
            await client.read_holding_registers(6, count=3, device_id=1)
        client.comm_params.timeout_connect = TIMEOUT_S
        for _ in range(3):  # ... and its late frame is never taken for unit 2's
            got, _ = grams_of(LAUMAS, await read_channel(client, LAUMAS, 2, 1))
            assert got == 2.0


@pytest.mark.parametrize("link", ["tcp", "rtu"])
async def test_bad_crc_and_malformed_mbap_are_not_taken_as_answers(link: str) -> None:
    cells = Cells({(1, 1): CellReading(1.0, True)})
    server = ShelfServer(LAUMAS, cells)
    fault = Fault(0.0, "bad-crc", 1, math.inf)
    server.inject(fault)
    serve = tcp if link == "tcp" else rtu
    async with serve(server, timeout_s=SHORT_TIMEOUT_S) as client:
        for _ in range(2):
            with pytest.raises(ModbusException):
                await client.read_holding_registers(6, count=3, device_id=1)
        server.clear(fault)
        client.comm_params.timeout_connect = TIMEOUT_S
        got = await client.read_holding_registers(6, count=3, device_id=1)
        assert got.registers == [1 << 11, 0, 2]
    assert server.stats.faults == {"bad-crc": 2}


async def test_absent_unit_on_rtu_is_silent_and_comes_back() -> None:
    clock = FakeClock(0.0)
    cells = Cells({(1, 1): CellReading(1.0, True), (2, 1): CellReading(2.0, True)})
    server = ShelfServer(LAUMAS, cells, clock_s=clock, faults=[Fault(1.0, "absent", 1, 2.0)])
    async with rtu(server, timeout_s=SHORT_TIMEOUT_S) as client:
        clock.t_s = 1.5
        with pytest.raises(ModbusException):
            await client.read_holding_registers(6, count=3, device_id=1)
        assert not (await client.read_holding_registers(6, count=3, device_id=2)).isError()
        clock.t_s = 3.0
        assert not (await client.read_holding_registers(6, count=3, device_id=1)).isError()


async def test_absent_unit_behind_a_tcp_gateway_answers_0x0b() -> None:
    cells = Cells({(1, 1): CellReading(1.0, True), (2, 1): CellReading(2.0, True)})
    server = ShelfServer(LAUMAS, cells, faults=[Fault(0.0, "absent", 2, math.inf)])
    async with tcp(server) as client:
        assert exception_code(await client.read_holding_registers(6, count=3, device_id=2)) == 11
        assert not (await client.read_holding_registers(6, count=3, device_id=1)).isError()


async def test_an_absent_tcp_transmitter_refuses_connections_then_returns() -> None:
    clock = FakeClock(0.0)
    cells = Cells({(1, 1): CellReading(1.0, True)})
    server = ShelfServer(LAUMAS, cells, clock_s=clock, faults=[Fault(5.0, "absent", 1, 10.0)])
    port = await server.start_tcp()
    try:
        clock.t_s = 5.0
        await until_connect(port, refused=True)
        clock.t_s = 15.0
        await until_connect(port, refused=False)
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=TIMEOUT_S, retries=0)
        assert await client.connect()
        assert not (await client.read_holding_registers(6, count=3, device_id=1)).isError()
        client.close()
    finally:
        await server.close()


async def until_connect(port: int, *, refused: bool) -> None:
    """Poll until connecting to `port` is refused (or accepted) - the server checks every 20 ms."""
    async with asyncio.timeout(5.0):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except ConnectionRefusedError:
                if refused:
                    return
            else:
                writer.close()
                if not refused:
                    return
            await asyncio.sleep(0.02)


# -- robustness ---------------------------------------------------------------------------------


def random_frames(rng: random.Random, n: int) -> Iterator[bytes]:
    """Random bytes, and MBAP-shaped frames with random function codes, lengths and bodies."""
    for i in range(n):
        if i % 3 == 0:
            yield rng.randbytes(rng.randint(1, 40))
        else:
            body = rng.randbytes(rng.randint(0, 12))
            length = rng.choice([len(body) + 2, rng.randint(0, 300)])
            head = struct.pack(
                ">HHHBB", i, rng.choice([0, 0, 1]), length, rng.randint(0, 255), rng.randint(0, 255)
            )
            yield head + body


async def test_random_frames_over_tcp_never_take_the_server_down() -> None:
    cells = Cells({(1, 1): CellReading(1.0, True), (2, 1): CellReading(2.0, True)})
    server = ShelfServer(LAUMAS, cells)
    port = await server.start_tcp()
    try:
        for frame in random_frames(random.Random(9), 300):  # a connection each: no stalls
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(frame)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=TIMEOUT_S, retries=0)
        assert await client.connect()
        got = await client.read_holding_registers(6, count=3, device_id=2)
        assert got.registers == [1 << 11, 0, 4]
        client.close()
    finally:
        await server.close()
    assert server.stats.malformed > 0


async def test_line_noise_on_rtu_is_dropped_at_the_next_silence() -> None:
    cells = Cells({(1, 1): CellReading(1.0, True), (2, 1): CellReading(2.0, True)})
    server = ShelfServer(LAUMAS, cells)
    async with pty_pair() as line:
        await server.start_rtu(line.device_end)
        fd = os.open(line.edge_end, os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(fd)
            rng = random.Random(1)
            for _ in range(300):
                os.write(fd, rng.randbytes(rng.randint(1, 30)))
                await asyncio.sleep(0.001)
        finally:
            os.close(fd)
        await asyncio.sleep(0.05)  # the silence that ends a frame on a real bus
        client = AsyncModbusSerialClient(line.edge_end, timeout=TIMEOUT_S, retries=0)
        async with connected(client, server):
            got, _ = grams_of(LAUMAS, await read_channel(client, LAUMAS, 2, 1))
            assert got == 2.0
    assert server.stats.malformed >= 1


def read_request(tid: int, unit: int, address: int, count: int) -> bytes:
    return struct.pack(">HHHBBHH", tid, 0, 6, unit, 3, address, count)


async def test_requests_sent_together_are_all_answered_and_a_bad_mbap_drops_the_stream() -> None:
    cells = Cells({(1, 1): CellReading(1.0, True), (2, 1): CellReading(2.0, True)})
    server = ShelfServer(LAUMAS, cells)
    port = await server.start_tcp()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(read_request(7, 1, 8, 1) + read_request(8, 2, 8, 1))
        answers = [await reader.readexactly(11) for _ in range(2)]
        assert sorted(answers) == [
            struct.pack(">HHHBBBH", 7, 0, 5, 1, 3, 2, 2),  # 1 g / 0.5 g
            struct.pack(">HHHBBBH", 8, 0, 5, 2, 3, 2, 4),
        ]
        writer.write(struct.pack(">HHHBB", 9, 1, 2, 1, 3))  # protocol id 1: not Modbus
        async with asyncio.timeout(TIMEOUT_S):
            assert await reader.read() == b""  # the server closed the connection
        writer.close()
    finally:
        await server.close()
    assert server.stats.malformed == 1


async def test_a_shelf_world_is_served_as_the_edge_will_read_it() -> None:
    lanes = [
        LaneSpec("a", "SKU-A", 250.0, (CellSpec(1, 1, 0.5), CellSpec(2, 1, 0.5)), initial_pieces=8),
        LaneSpec("b", "SKU-B", 40.0, (CellSpec(2, 2),), initial_pieces=3),
    ]
    world = ShelfWorld(lanes, [Pieces(5.0, "a", -2)], seed=3, noise=ShelfNoise.clean())
    module = MODULE.model_copy(update={"weight": MODULE.weight.model_copy(update={"offset": 0})})
    clock = FakeClock(1.0)
    async with rtu(ShelfServer(module, world, clock_s=clock)) as client:
        for t_s, pieces_a in ((1.0, 8), (20.0, 6)):
            clock.t_s = t_s
            plate = [grams_of(module, await read_channel(client, module, u, 1)) for u in (1, 2)]
            lane_b, _ = grams_of(module, await read_channel(client, module, 2, 2))
            assert sum(g for g, _ in plate) == pytest.approx(pieces_a * 250.0, abs=0.2)
            assert lane_b == pytest.approx(120.0, abs=0.1)
            assert all(status >> 0 & 1 == 0 for _, status in plate)  # settled: no MOTION bit
