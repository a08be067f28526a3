"""The edge's Modbus shelf source (pymodbus client) against the shelf simulator server: loopback
TCP and RTU over a socat pty pair. Lanes read right; every fault becomes the right device state
and the source keeps going."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from device_profiles import load_profile_of
from device_profiles.weighing import WeighingProfile
from edge_agent.backoff import Backoff
from edge_agent.readings import WeightSample
from edge_agent.settings import LaneConfig
from edge_agent.sources.modbus_shelf import ModbusRtu, ModbusShelfSource, ModbusTcp, Transport
from simulators.shelf.cells import CellReading
from simulators.shelf.faults import ShelfFault
from simulators.shelf.server import ShelfServer
from stockwire.errors import ConfigError
from stockwire.status import DeviceState
from tests.integration.shelf_support import Cells, FakeClock
from tests.integration.socat_pty import pty_pair
from tests.unit.test_modbus_map import lane

POLL_MS = 20
TIMEOUT_MS = 150
WAIT_S = 10.0


def profile(name: str, **changes: object) -> WeighingProfile:
    shipped = load_profile_of(name, WeighingProfile)
    return shipped.model_copy(update={"response_timeout_ms": TIMEOUT_MS, **changes})


@dataclass
class Run:
    """A source running in a task; the test waits for what it expects (with a deadline)."""

    source: ModbusShelfSource
    batches: list[list[WeightSample]] = field(default_factory=list)

    async def consume(self) -> None:
        async for batch in self.source.batches():
            self.batches.append(batch)

    def latest(self) -> dict[str, WeightSample]:
        return {s.lane: s for s in self.batches[-1]} if self.batches else {}

    def lanes_in_last(self) -> set[str]:
        return set(self.latest())

    async def until(self, what: str, predicate: Callable[[], bool]) -> None:
        try:
            async with asyncio.timeout(WAIT_S):
                while True:
                    if predicate():
                        return
                    await asyncio.sleep(0.01)  # the source runs meanwhile
        except TimeoutError:
            status = self.source.status()
            raise AssertionError(f"not {what}: {status.state} {status.detail}") from None

    async def state(self, state: DeviceState) -> None:
        await self.until(str(state), lambda: self.source.state() == state)

    async def more_batches(self, count: int = 3) -> None:
        seen = len(self.batches)
        await self.until(f"{count} more batches", lambda: len(self.batches) >= seen + count)


@asynccontextmanager
async def running(source: ModbusShelfSource) -> AsyncIterator[Run]:
    run = Run(source)
    task = asyncio.create_task(run.consume())
    try:
        yield run
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def source(
    prof: WeighingProfile, lanes: list[LaneConfig], transport: Transport
) -> ModbusShelfSource:
    return ModbusShelfSource(
        "shelf-1",
        prof,
        lanes,
        transport,
        poll_interval_ms=POLL_MS,
        backoff=Backoff(0.02, 0.1),
        unit_backoff=lambda: Backoff(0.05, 0.1),
        failures_before_backoff_max=2,
    )


@asynccontextmanager
async def tcp_shelf(
    server: ShelfServer, prof: WeighingProfile, lanes: list[LaneConfig]
) -> AsyncIterator[Run]:
    port = await server.start_tcp()
    try:
        async with running(source(prof, lanes, ModbusTcp("127.0.0.1", port))) as run:
            yield run
    finally:
        await server.close()


@asynccontextmanager
async def rtu_shelf(
    server: ShelfServer, prof: WeighingProfile, lanes: list[LaneConfig]
) -> AsyncIterator[Run]:
    async with pty_pair() as line:
        await server.start_rtu(line.device_end)
        transport = ModbusRtu(line.edge_end, prof.serial)
        try:
            async with running(source(prof, lanes, transport)) as run:
                yield run
        finally:
            await server.close()


# -- lanes read right ---------------------------------------------------------------------------


async def test_laumas_units_behind_a_tcp_gateway_read_as_lanes() -> None:
    laumas = profile("laumas-w100")
    cells = Cells(
        {
            (1, 1): CellReading(-1234.0, stable=True),
            (2, 1): CellReading(500.0, stable=True),
            (3, 1): CellReading(250.0, stable=False),
        }
    )
    lanes = [lane("a", (1, 1)), lane("plate", (2, 1), (3, 1))]
    shelf = source(laumas, lanes, ModbusTcp("127.0.0.1", 1))
    assert shelf.status().state == DeviceState.UNKNOWN
    async with tcp_shelf(ShelfServer(laumas, cells), laumas, lanes) as run:
        await run.more_batches()
        a, plate = run.latest()["a"], run.latest()["plate"]
        assert (a.device, a.grams, a.stable) == ("shelf-1", -1234.0, True)
        assert (plate.grams, plate.stable) == (750.0, False)  # summed; stable only if all are
        assert plate.at >= a.at
        assert run.source.status().state == DeviceState.UP
        counters = run.source.counters
        assert counters.requests == 3 * counters.polls  # one read per unit per poll
        assert counters.errors == {}
        health = run.source.health()  # telemetry's device_health
        assert health.errors_total == 0
        assert health.latencies >= 1
        assert health.latency_ms_sum > 0


async def test_seneca_float_with_swapped_words_over_tcp() -> None:
    seneca = profile("seneca-z-sg")
    cdab = seneca.model_copy(
        update={"weight": seneca.weight.model_copy(update={"byte_order": "CDAB"})}
    )
    cells = Cells({(1, 1): CellReading(2345.5, stable=True)})
    async with tcp_shelf(ShelfServer(cdab, cells), cdab, [lane("a", (1, 1))]) as run:
        await run.more_batches()
        sample = run.latest()["a"]
        assert sample.grams == pytest.approx(2345.5, abs=1e-3)  # FLOAT32 kg -> g
        assert sample.stable is True
        assert run.source.counters.requests == 2 * run.source.counters.polls  # 12 apart


async def test_two_units_on_one_rtu_bus_with_four_channels_each() -> None:
    generic = profile("generic-rs485-4ch")
    readings = {
        (u, ch): CellReading(100.0 * u + ch, stable=True) for u in (1, 2) for ch in (1, 2, 3, 4)
    }
    lanes = [lane("u1-left", (1, 1), (1, 2)), lane("u1-right", (1, 4)), lane("u2", (2, 3))]
    async with rtu_shelf(ShelfServer(generic, Cells(readings)), generic, lanes) as run:
        await run.more_batches()
        latest = run.latest()
        assert {k: v.grams for k, v in latest.items()} == {
            "u1-left": 203.0,
            "u1-right": 104.0,
            "u2": 203.0,
        }
        assert {v.stable for v in latest.values()} == {None}  # the module has no STABLE bit
        assert run.source.status().state == DeviceState.UP
        counters = run.source.counters
        assert counters.requests == 2 * counters.polls  # one read per unit, in turn


async def test_pt113_over_rtu_reads_gross_and_motion() -> None:
    pt113 = profile("pt113")
    cells = Cells({(5, 1): CellReading(-1500.0, stable=False)})
    async with rtu_shelf(ShelfServer(pt113, cells), pt113, [lane("a", (5, 1))]) as run:
        await run.more_batches()
        assert (run.latest()["a"].grams, run.latest()["a"].stable) == (-1500.0, False)


# -- faults -------------------------------------------------------------------------------------


def two_unit_laumas(clock: FakeClock) -> tuple[WeighingProfile, ShelfServer, list[LaneConfig]]:
    laumas = profile("laumas-w100")
    cells = Cells({(1, 1): CellReading(10.0, True), (2, 1): CellReading(20.0, True)})
    return laumas, ShelfServer(laumas, cells, clock_s=clock), [lane("a", (1, 1)), lane("b", (2, 1))]


def fault(kind: str, unit: int, **extra: int) -> ShelfFault:
    return ShelfFault(at_s=1.0, kind=kind, unit=unit, for_s=1.0, **extra)  # type: ignore[arg-type]


async def test_an_exception_response_leaves_the_lane_out_and_the_unit_comes_back() -> None:
    clock = FakeClock()
    laumas, server, lanes = two_unit_laumas(clock)
    server.inject(fault("exception", 2, exception_code=6))
    async with tcp_shelf(server, laumas, lanes) as run:
        await run.state(DeviceState.UP)
        clock.t_s = 1.5
        await run.state(DeviceState.DEGRADED)
        await run.until("lane b left out", lambda: run.lanes_in_last() == {"a"})
        detail = run.source.status().detail or ""
        assert "unit 2 FC03 at 6 x3: exception 6 (server device busy)" in detail
        assert "lane b: unit 2 FC03" in detail
        assert run.source.counters.errors["exception"] >= 1
        assert run.source.health().errors_total >= 1
        clock.t_s = 2.5
        await run.state(DeviceState.UP)
        await run.until("lane b back", lambda: run.lanes_in_last() == {"a", "b"})
        assert run.source.counters.lanes_left_out >= 1


@pytest.mark.parametrize("link", ["tcp", "rtu"])
async def test_a_silent_unit_times_out_backs_off_and_returns(link: str) -> None:
    clock = FakeClock()
    laumas, server, lanes = two_unit_laumas(clock)
    server.inject(fault("silent", 2))
    shelf = tcp_shelf if link == "tcp" else rtu_shelf
    async with shelf(server, laumas, lanes) as run:
        await run.state(DeviceState.UP)
        clock.t_s = 1.5
        await run.until("backing off unit 2", lambda: run.source.counters.unit_skips > 0)
        assert run.source.state() == DeviceState.DEGRADED
        assert "unit 2 failing" in (run.source.status().detail or "")
        assert run.source.counters.errors["timeout"] >= 2
        await run.more_batches()
        assert run.lanes_in_last() == {"a"}  # unit 1 keeps being read
        clock.t_s = 2.5
        await run.until("lane b back", lambda: run.lanes_in_last() == {"a", "b"})
        assert run.source.state() == DeviceState.UP


async def test_a_slow_unit_within_the_timeout_only_overruns_the_poll() -> None:
    clock = FakeClock()
    laumas, server, lanes = two_unit_laumas(clock)
    server.inject(fault("slow", 1, delay_ms=2 * POLL_MS))
    async with tcp_shelf(server, laumas, lanes) as run:
        clock.t_s = 1.5
        await run.until("overruns", lambda: run.source.counters.overruns >= 2)
        assert run.source.state() == DeviceState.UP
        assert run.lanes_in_last() == {"a", "b"}


async def test_answers_later_than_the_timeout_never_land_on_another_request() -> None:
    clock = FakeClock()
    laumas, server, lanes = two_unit_laumas(clock)
    server.inject(fault("slow", 1, delay_ms=TIMEOUT_MS * 3 // 2))
    async with rtu_shelf(server, laumas, lanes) as run:
        await run.state(DeviceState.UP)
        clock.t_s = 1.5
        await run.until("timeouts", lambda: run.source.counters.errors["timeout"] >= 3)
        seen = len(run.batches)
        await run.more_batches(5)
        during = [sample for batch in run.batches[seen:] for sample in batch]
        assert {(s.lane, s.grams) for s in during} == {("b", 20.0)}
        assert run.source.state() == DeviceState.DEGRADED


async def test_a_bad_crc_costs_that_request_only() -> None:
    clock = FakeClock()
    laumas, server, lanes = two_unit_laumas(clock)
    server.inject(fault("bad-crc", 1))
    async with rtu_shelf(server, laumas, lanes) as run:
        await run.state(DeviceState.UP)
        clock.t_s = 1.5
        await run.until("a bad frame", lambda: run.source.counters.errors["bad_frame"] >= 1)
        await run.until("lane a left out", lambda: run.lanes_in_last() == {"b"})
        assert run.source.state() == DeviceState.DEGRADED
        assert "bad frame" in (run.source.status().detail or "")
        clock.t_s = 2.5
        await run.state(DeviceState.UP)


async def test_every_unit_silent_on_rtu_is_down_then_up() -> None:
    clock = FakeClock()
    laumas, server, lanes = two_unit_laumas(clock)
    server.inject(fault("absent", 1))
    server.inject(fault("absent", 2))
    async with rtu_shelf(server, laumas, lanes) as run:
        await run.state(DeviceState.UP)
        clock.t_s = 1.5
        await run.state(DeviceState.DOWN)
        clock.t_s = 2.5
        await run.state(DeviceState.UP)
        await run.more_batches()
        assert run.lanes_in_last() == {"a", "b"}


async def test_a_tcp_transmitter_that_disappears_is_down_and_reconnected() -> None:
    clock = FakeClock()
    laumas = profile("laumas-tlb4")
    server = ShelfServer(laumas, Cells({(1, 1): CellReading(42.0, True)}), clock_s=clock)
    server.inject(ShelfFault(at_s=1.0, kind="absent", unit=1, for_s=1.0))
    async with tcp_shelf(server, laumas, [lane("a", (1, 1))]) as run:
        await run.state(DeviceState.UP)
        clock.t_s = 1.5  # the listener closes, the connection drops
        await run.state(DeviceState.DOWN)
        await run.until("a failed reconnect", lambda: run.source.counters.connect_failures >= 2)
        clock.t_s = 2.5
        await run.state(DeviceState.UP)
        await run.more_batches()
        assert run.latest()["a"].grams == 42.0
        assert run.source.counters.connects >= 2


async def test_a_gateway_whose_units_all_go_silent_is_reopened(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    laumas, server, lanes = two_unit_laumas(clock)
    server.inject(fault("silent", 1))
    server.inject(fault("silent", 2))
    async with tcp_shelf(server, laumas, lanes) as run:
        await run.state(DeviceState.UP)
        clock.t_s = 1.5
        await run.until("a reconnect", lambda: run.source.counters.connects >= 2)
        assert "no unit answered in 3 polls" in caplog.text
        clock.t_s = 2.5
        await run.state(DeviceState.UP)


async def test_a_pulled_rtu_cable_is_down() -> None:
    laumas = profile("laumas-w100")
    server = ShelfServer(laumas, Cells({(1, 1): CellReading(1.0, True)}))
    async with pty_pair() as line:
        await server.start_rtu(line.device_end)
        transport = ModbusRtu(line.edge_end, laumas.serial)
        try:
            async with running(source(laumas, [lane("a", (1, 1))], transport)) as run:
                await run.state(DeviceState.UP)
                await line.stop()
                await run.state(DeviceState.DOWN)
                await run.until("reopen fails", lambda: run.source.counters.connect_failures >= 2)
                assert line.edge_end in (run.source.status().detail or "")
        finally:
            await server.close()


async def test_nothing_listening_is_down_with_the_reason() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    laumas = profile("laumas-w100")
    async with running(source(laumas, [lane("a", (1, 1))], ModbusTcp("127.0.0.1", port))) as run:
        await run.until("a failed connect", lambda: run.source.counters.connect_failures >= 1)
        status = run.source.status()
        assert status.state == DeviceState.DOWN
        assert f"cannot open 127.0.0.1:{port}" in (status.detail or "")


def test_a_lane_on_a_channel_the_model_lacks_is_a_config_error() -> None:
    laumas = profile("laumas-w100")
    tcp = ModbusTcp("127.0.0.1", 1)
    with pytest.raises(
        ConfigError,
        match=r"device 'shelf-1': lane 'a': unit 1 channel 2: profile 'laumas-w100' has "
        r"channels 1\.\.1",
    ):
        source(laumas, [lane("a", (1, 2))], tcp)
    with pytest.raises(ConfigError, match="device 'shelf-1': lanes: a shelf needs at least one"):
        source(laumas, [], tcp)
