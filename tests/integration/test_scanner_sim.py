"""The scanner simulator over TCP: a client receives exactly the scenario's lines."""

import asyncio
import contextlib
import os
import tty
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import pytest

from simulators.ground_truth import Balance
from simulators.ledger_check import differences
from simulators.plan import build
from simulators.ports import free_port
from simulators.scanner import ScannerSim, TimedLine, encode, run, wire_for, write_tty
from stockwire.errors import ConfigError

WAIT_S = 20.0
SMALL_SITE = Path(str(resources.files("simulators") / "scenarios" / "small-site.toml"))


@contextlib.asynccontextmanager
async def serving(sim: ScannerSim) -> AsyncIterator[ScannerSim]:
    await sim.start()
    task = asyncio.create_task(sim.serve())
    try:
        yield sim
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def read_until(reader: asyncio.StreamReader, expected_bytes: int) -> bytes:
    data = b""
    async with asyncio.timeout(WAIT_S):
        while len(data) < expected_bytes:
            chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
    return data


async def read_through(reader: asyncio.StreamReader, last: bytes) -> bytes:
    data = b""
    async with asyncio.timeout(WAIT_S):
        while not data.endswith(last):
            chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
    return data


async def test_client_receives_every_line_with_its_terminator() -> None:
    plan = build(SMALL_SITE)
    actor = plan.scenario.scanner("scan-a")
    lines = encode(plan.scans["scan-a"], wire_for(actor.profile))
    expected = b"".join(line.data for line in lines)
    async with serving(ScannerSim(lines, speed=50.0)) as sim:
        reader, writer = await asyncio.open_connection(sim.host, sim.port)
        data = await read_until(reader, len(expected))
        async with asyncio.timeout(WAIT_S):
            await sim.done.wait()
        writer.close()
    assert data == expected
    assert data.count(b"\r\n") == len(lines)
    assert data.startswith(b"]C0SW:MODE:PUTAWAY\r\n")  # scan-a uses the AIM profile
    assert sim.sent == len(lines)


async def test_lines_are_held_until_a_client_connects() -> None:
    lines = [TimedLine(0.0, b"SW:MODE:PICK\r\n"), TimedLine(0.01, b"4006381333931\r\n")]
    async with serving(ScannerSim(lines, speed=1.0)) as sim:
        await asyncio.sleep(0.3)  # lines are due now, but nobody listens
        assert sim.sent == 0
        assert not sim.done.is_set()
        reader, writer = await asyncio.open_connection(sim.host, sim.port)
        data = await read_until(reader, 29)
        writer.close()
    assert data == b"SW:MODE:PICK\r\n4006381333931\r\n"


async def test_a_reconnecting_client_gets_the_rest() -> None:
    lines = [TimedLine(float(n), f"L{n}\r\n".encode()) for n in range(6)]
    async with serving(ScannerSim(lines, speed=10.0)) as sim:
        reader, writer = await asyncio.open_connection(sim.host, sim.port)
        first = await read_until(reader, 4)
        writer.close()
        await writer.wait_closed()
        reader, writer = await asyncio.open_connection(sim.host, sim.port)
        rest = await read_through(reader, b"L5\r\n")
        writer.close()
    assert first.startswith(b"L0\r\n")
    assert rest.endswith(b"L5\r\n")
    received = (first + rest).split(b"\r\n")[:-1]
    assert received == sorted(set(received))  # in order, none twice


async def test_unknown_scanner_in_cli_run_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no scanner 'nope'"):
        await run(SMALL_SITE, "nope", "127.0.0.1:0", None, 1.0)


async def test_cli_run_over_tcp_sends_the_scanners_lines_and_returns_0() -> None:
    plan = build(SMALL_SITE)
    expected = b"".join(
        line.data for line in encode(plan.scans["scan-b"], wire_for("generic-tcp-scanner"))
    )
    port = free_port()
    task = asyncio.create_task(run(SMALL_SITE, "scan-b", f"127.0.0.1:{port}", None, 50.0))
    async with asyncio.timeout(WAIT_S):
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                break
            except OSError:
                await asyncio.sleep(0.05)
    data = await read_until(reader, len(expected))
    writer.close()
    async with asyncio.timeout(WAIT_S):
        assert await task == 0
    assert data == expected


async def test_pty_receives_every_line(tmp_path: Path) -> None:
    master, slave = os.openpty()
    tty.setraw(slave)  # no CR/LF translation by the line discipline
    lines = [TimedLine(0.0, b"SW:MODE:RECEIVE\r\n"), TimedLine(0.01, b"]C10104006381333931\r\n")]
    expected = b"".join(line.data for line in lines)
    try:
        await write_tty(Path(os.ttyname(slave)), lines, speed=1.0)
        data = b""
        while len(data) < len(expected):
            data += await asyncio.to_thread(os.read, master, 4096)
    finally:
        os.close(slave)
        os.close(master)
    assert data == expected


def test_differences_name_each_mismatch() -> None:
    truth = [Balance("A", "04006381333931", "S1", "L1", 3)]
    stock = [
        {
            "sku": None,
            "gtin": "04006381333931",
            "location": "S1",
            "virtual": False,
            "lot": "L1",
            "qty": 2,
        },
        {"sku": "B", "gtin": None, "location": "S2", "virtual": False, "lot": None, "qty": 1},
        {
            "sku": None,
            "gtin": "04006381333931",
            "location": "@loss",
            "virtual": True,
            "lot": "L1",
            "qty": 1,
        },
    ]
    assert differences(truth, stock, {"A": "04006381333931"}) == [
        "S1 A lot L1: ledger 2, ground truth 3",
        "S2 B lot -: ledger 1, ground truth 0",
    ]
    stock[0]["qty"] = 3
    assert differences(truth, stock[:1], {}) == []
