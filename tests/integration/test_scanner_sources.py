"""Scanner line sources for real: TCP against a local asyncio server, serial over socat ptys."""

import asyncio
import contextlib
import os
import random
import tty
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from device_profiles import ScannerProfile, load_profile_of
from edge_agent.backoff import Backoff
from edge_agent.devices.scanner import build_scanner
from edge_agent.readings import Scan, Unreadable
from edge_agent.settings import DeviceConfig
from edge_agent.sources.lines import LineFramer, LineSource, decode_line
from edge_agent.sources.scanner_serial import ScannerSerialSource
from edge_agent.sources.scanner_tcp import ScannerTcpSource
from simulators.ports import free_port
from stockwire.errors import ConfigError
from stockwire.status import DeviceState
from tests.integration.socat_pty import PtyPair, pty_pair

HOST = "127.0.0.1"
WAIT_S = 20.0
POLL_S = 0.01


def now() -> datetime:
    return datetime.now(UTC)


def fast_backoff() -> Backoff:
    return Backoff(0.02, 0.2)


def small(profile_name: str, **changes: object) -> ScannerProfile:
    profile = load_profile_of(profile_name, ScannerProfile)
    return ScannerProfile.model_validate({**profile.model_dump(), "max_line_bytes": 32, **changes})


async def until(condition: Callable[[], bool], what: str) -> None:
    """Poll (bounded) for a condition; never a timing assertion."""
    for _ in range(int(WAIT_S / POLL_S)):
        if condition():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"gave up after {WAIT_S} s waiting for {what}")


class Collector:
    """Runs a source's batches() in a task and keeps what it yields."""

    def __init__(self, source: LineSource) -> None:
        self.source = source
        self.scans: list[Scan] = []
        self.unreadable: list[Unreadable] = []
        self.batches: list[list[Scan | Unreadable]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "Collector":
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        assert self._task.cancelled(), "batches() ended by itself"

    async def _run(self) -> None:
        async for batch in self.source.batches():
            assert batch, "a batch is never empty"
            self.batches.append(batch)
            self.scans.extend(r for r in batch if isinstance(r, Scan))
            self.unreadable.extend(r for r in batch if isinstance(r, Unreadable))

    @property
    def raws(self) -> list[str]:
        return [s.raw for s in self.scans]

    async def wait_raws(self, count: int) -> list[str]:
        await until(lambda: len(self.scans) >= count, f"{count} scans")
        return self.raws


# -- framing (pure) -----------------------------------------------------------------------------


def test_framer_joins_split_reads_and_split_terminators() -> None:
    framer = LineFramer(b"\r\n", 32)
    assert framer.feed(b"AB") == []
    assert framer.feed(b"C\r") == []
    assert framer.feed(b"\nDEF\r\nGH") == [b"ABC", b"DEF"]
    assert framer.feed(b"\r\n") == [b"GH"]


def test_framer_drops_an_overlong_line_and_resyncs() -> None:
    framer = LineFramer(b"\r", 8)
    assert framer.feed(b"123456789\rOK\r") == [b"OK"]  # too long within one read
    assert framer.feed(b"x" * 20) == []  # too long before any terminator
    assert framer.feed(b"y" * 50) == []  # still the same line: counted once
    assert framer.feed(b"tail\rNEXT\r") == [b"NEXT"]
    assert framer.overlong == 2
    assert framer.feed(b"12345678\r") == [b"12345678"]  # exactly the max is fine


def test_framer_hands_over_overlong_lines_with_prefix_and_size() -> None:
    framer = LineFramer(b"\r\n", 16)
    assert framer.feed(b"A" * 5000 + b"\r\nOK\r\n") == [b"OK"]
    assert framer.feed(b"B" * 20) == []
    assert framer.feed(b"B" * 30 + b"\r") == []
    assert framer.feed(b"\nC" * 10) == []  # cut short by a reconnect
    framer.reset()
    got = framer.take_overlong()
    assert [(len(o.prefix), o.size_bytes, o.ended) for o in got] == [
        (256, 5000, True),
        (20, 50, True),
        (19, 19, False),
    ]
    assert got[0].prefix == b"A" * 256
    assert got[0].reason(16) == (
        "line of 5000 bytes is over max_line_bytes 16; the first 256 bytes kept"
    )
    assert "connection ended" in got[2].reason(16)
    assert framer.take_overlong() == []


def test_decode_strips_prefix_and_suffix_and_replaces_bad_bytes() -> None:
    profile = small("generic-tcp-scanner", prefix="@@", suffix="\t")
    assert decode_line(b"@@WIDGET-42\t", profile) == "WIDGET-42"
    assert decode_line(b"\xff\xfeAB", profile) == "\ufffd\ufffdAB"


# -- device builder -----------------------------------------------------------------------------


def test_build_scanner_chooses_the_transport_from_the_device() -> None:
    profile = load_profile_of("generic-serial-scanner", ScannerProfile)
    tcp = DeviceConfig(id="dock-1", profile="generic-serial-scanner", tcp="127.0.0.1:4001")
    source, recognizer = build_scanner(tcp, profile, now)
    assert isinstance(source, ScannerTcpSource)
    assert (source.host, source.port, source.device) == ("127.0.0.1", 4001, "dock-1")
    assert recognizer.device == "dock-1"

    serial = DeviceConfig(
        id="dock-2",
        profile="generic-serial-scanner",
        serial="/dev/ttyUSB0",
        location="DOCK-2",
        duplicate_window_ms=250,
    )
    source, recognizer = build_scanner(serial, profile, now)
    assert isinstance(source, ScannerSerialSource)
    assert source.path == "/dev/ttyUSB0"
    assert recognizer.profile.duplicate_window_ms == 250
    assert source.status().state is DeviceState.UNKNOWN


def test_build_scanner_refuses_a_bad_tcp_address() -> None:
    device = DeviceConfig(id="d", profile="generic-tcp-scanner", tcp="host:99999")
    with pytest.raises(ConfigError, match="is not host:port"):
        build_scanner(device, load_profile_of("generic-tcp-scanner", ScannerProfile), now)


# -- TCP ----------------------------------------------------------------------------------------


class LineServer:
    """A scanner-like TCP server on a fixed loopback port that the test can stop and restart."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.clients: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, HOST, self.port, reuse_address=True)

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def client(self) -> asyncio.StreamWriter:
        async with asyncio.timeout(WAIT_S):
            return await self.clients.get()

    async def _accept(self, _: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        await self.clients.put(writer)


@pytest.fixture
async def server() -> AsyncIterator[LineServer]:
    server = LineServer(free_port())
    await server.start()
    yield server
    with contextlib.suppress(AssertionError):
        await server.stop()


async def send(writer: asyncio.StreamWriter, *chunks: bytes) -> None:
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()


async def test_tcp_lines_split_packets_overlong_and_bad_bytes(server: LineServer) -> None:
    profile = small("generic-tcp-scanner")
    source = ScannerTcpSource("dock-1", profile, HOST, server.port, backoff=fast_backoff())
    async with Collector(source) as got:
        client = await server.client()
        await send(client, b"SW:MODE:PICK\r\nWID", b"GET-", b"42\r", b"\n")
        await send(client, b"X" * 40, b"still the long line\r\nAFTER\r\n")
        await send(client, b"\xff\xfe\x00AB\r\n\r\n", b"]C10109501101020917\x1d10L1\r\n")
        raws = await got.wait_raws(5)
    assert raws == [
        "SW:MODE:PICK",
        "WIDGET-42",
        "AFTER",
        "\ufffd\ufffd\x00AB",
        "]C10109501101020917\x1d10L1",
    ]
    assert all(s.device == "dock-1" and s.at.tzinfo is not None for s in got.scans)
    assert source.counters.overlong == 1
    assert [(u.device, u.raw[:40]) for u in got.unreadable] == [("dock-1", "X" * 40)]
    assert "line of 59 bytes is over max_line_bytes 32" in got.unreadable[0].reason
    assert source.counters.empty == 1
    assert source.status().state is DeviceState.UP
    assert source.status().detail == "1 over-long line(s) rejected"


async def test_tcp_lines_of_one_read_come_as_one_batch(server: LineServer) -> None:
    source = ScannerTcpSource(
        "dock-1",
        load_profile_of("generic-tcp-scanner", ScannerProfile),
        HOST,
        server.port,
        backoff=fast_backoff(),
    )
    async with Collector(source) as got:
        await send(await server.client(), b"A-1\r\nB-2\r\nC-3\r\n")  # one write, one read
        await got.wait_raws(3)
    assert [[s.raw for s in batch] for batch in got.batches] == [["A-1", "B-2", "C-3"]]


async def test_tcp_reconnects_after_server_restart(server: LineServer) -> None:
    source = ScannerTcpSource(
        "dock-1",
        load_profile_of("generic-tcp-scanner", ScannerProfile),
        HOST,
        server.port,
        backoff=fast_backoff(),
    )
    async with Collector(source) as got:
        await send(await server.client(), b"FIRST-1\r\n")
        await got.wait_raws(1)
        await server.stop()
        await until(lambda: source.status().state is DeviceState.DOWN, "source noticed")
        assert "closed the connection" in (source.status().detail or "")
        await until(lambda: source.counters.failures >= 2, "retries while the server is down")
        await server.start()
        await send(await server.client(), b"SECOND-2\r\n")
        raws = await got.wait_raws(2)
    assert raws == ["FIRST-1", "SECOND-2"]
    assert source.counters.connects == 2


async def test_tcp_source_waits_for_a_device_that_is_not_there_yet() -> None:
    port = free_port()
    source = ScannerTcpSource(
        "dock-1",
        load_profile_of("generic-tcp-scanner", ScannerProfile),
        HOST,
        port,
        backoff=fast_backoff(),
    )
    async with Collector(source) as got:
        await until(lambda: source.counters.failures >= 3, "several failed connects")
        assert source.health().errors_total >= 3
        status = source.status()
        assert status.state is DeviceState.DOWN
        assert f"cannot open {HOST}:{port}" in (status.detail or "")
        server = LineServer(port)
        await server.start()
        await send(await server.client(), b"HELLO-1\r\n")
        assert await got.wait_raws(1) == ["HELLO-1"]
        await server.stop()


# -- serial over a socat pty pair ---------------------------------------------------------------


@pytest.fixture
async def ptys() -> AsyncIterator[PtyPair]:
    async with pty_pair() as pair:
        yield pair


def open_device_end(path: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    return fd


async def test_serial_lines_overlong_bad_bytes_and_port_loss(ptys: PtyPair) -> None:
    profile = small("generic-serial-scanner")
    source = ScannerSerialSource("bench-1", profile, ptys.edge_end, backoff=fast_backoff())
    fd = open_device_end(ptys.device_end)
    try:
        async with Collector(source) as got:
            await until(lambda: source.status().state is DeviceState.UP, "port open")
            os.write(fd, b"SW:MODE:COUNT\rWIDGET")
            os.write(fd, b"-42\r" + b"Z" * 40 + b"\rAFTER\r\xc3\x28OK\r")
            raws = await got.wait_raws(4)
            assert raws == ["SW:MODE:COUNT", "WIDGET-42", "AFTER", "\ufffd(OK"]
            assert source.counters.overlong == 1
            await ptys.stop()
            await until(lambda: source.status().state is DeviceState.DOWN, "port loss noticed")
            await until(lambda: source.counters.failures >= 2, "retries after port loss")
            assert "cannot open" in (source.status().detail or "")
    finally:
        os.close(fd)


async def test_serial_source_survives_a_missing_port(tmp_path: Path) -> None:
    source = ScannerSerialSource(
        "bench-1",
        load_profile_of("generic-serial-scanner", ScannerProfile),
        str(tmp_path / "ttyNOPE"),
        backoff=fast_backoff(),
    )
    async with Collector(source):
        await until(lambda: source.counters.failures >= 3, "several failed opens")
    assert source.status().state is DeviceState.DOWN
    assert "ttyNOPE" in (source.status().detail or "")


@pytest.mark.parametrize("terminator", [b"\r\n", b"\r", b"\n"])
def test_framer_matches_a_plain_split_for_any_chunking(terminator: bytes) -> None:
    """Seeded random streams cut at random places frame exactly like split-and-drop-long."""
    rng = random.Random(42)
    for _ in range(200):
        lines = [bytes(rng.choices(b"AB\r\n\x1d", k=rng.randint(0, 20))) for _ in range(20)]
        stream = terminator.join(lines) + terminator
        framer = LineFramer(terminator, 8)
        got: list[bytes] = []
        at = 0
        while at < len(stream):
            step = rng.randint(1, 12)
            got += framer.feed(stream[at : at + step])
            at += step
        expected = stream.split(terminator)[:-1]
        assert got == [line for line in expected if len(line) <= 8]
        assert framer.overlong == sum(len(line) > 8 for line in expected)
