"""`stockwire sim shelf` as a process: it prints where it serves and pymodbus reads its lanes."""

import asyncio
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.pdu import ExceptionResponse

from device_profiles.registers import decode
from simulators.shelf.faults import ShelfFault
from simulators.shelf.run import parse_fault, parse_static
from stockwire.errors import ConfigError
from tests.conftest import ROOT
from tests.integration.socat_pty import pty_pair

PROFILE = """
kind = "weighing-transmitter"
name = "laumas-like"
vendor = "Test"
model = "W100-like"
transports = ["tcp", "rtu"]
address_base = 1
weight = { address = 8, type = "UINT32" }
status = { address = 7, stable_bit = 11, negative_bit = 7 }
"""


async def serving_port(proc: asyncio.subprocess.Process, timeout_s: float = 10.0) -> int:
    assert proc.stdout is not None
    async with asyncio.timeout(timeout_s):
        while line := await proc.stdout.readline():
            if found := re.search(rb"serving on tcp 127.0.0.1:(\d+)", line):
                return int(found.group(1))
    raise AssertionError(f"exited without 'serving on' ({proc.returncode})")


async def test_cli_serves_static_lanes_and_prints_its_figures(tmp_path: Path) -> None:
    profile = tmp_path / "laumas-like.toml"
    profile.write_text(PROFILE)
    cmd = [sys.executable, "-m", "stockwire.cli", "sim", "shelf", "--profile", str(profile)]
    cmd += ["--tcp", "0", "--static", "1:1=1200, 2:1=-35,3:1=5", "--duration", "30"]
    cmd += ["--fault", "exception@3:0:1000:4"]
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    try:
        port = await serving_port(proc)
        client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
        assert await client.connect()
        for unit, grams in ((1, 1200), (2, 35)):
            got = await client.read_holding_registers(6, count=3, device_id=unit)
            assert decode(got.registers[1:], "UINT32", "ABCD") == grams
            assert got.registers[0] >> 7 & 1 == (unit == 2)
        failing = await client.read_holding_registers(6, count=3, device_id=3)
        assert isinstance(failing, ExceptionResponse)
        assert failing.exception_code == 4
        client.close()
    finally:
        proc.terminate()  # SIGTERM: the simulator stops and prints its figures
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert proc.returncode == 0
    assert b"requests=3 answers=3 exceptions=1 unanswered=0 malformed=0 faults: exception=1" in out


async def test_cli_serves_a_scenario_shelf_over_rtu() -> None:
    scenario = ROOT / "simulators" / "scenarios" / "shelf.toml"
    async with pty_pair() as line:
        cmd = [sys.executable, "-m", "stockwire.cli", "sim", "shelf", "--scenario", str(scenario)]
        cmd += ["--shelf", "shelf-a10", "--rtu", line.device_end, "--duration", "30"]
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None
            first = await asyncio.wait_for(proc.stdout.readline(), timeout=10)
            assert b"shelf 'shelf-a10': 13 changes, 1 faults" in first
            served = await asyncio.wait_for(proc.stdout.readline(), timeout=10)
            assert f"units 1, 2, 3, 4, 5 serving on rtu {line.device_end}".encode() in served
            client = AsyncModbusSerialClient(line.edge_end, timeout=2, retries=0)
            assert await client.connect()
            for unit in (1, 2, 3, 4, 5):  # laumas-w100: status 40007, gross 40008/9
                got = await client.read_holding_registers(6, count=3, device_id=unit)
                assert not got.isError(), (unit, got)
                assert got.registers[0] & 0b11111 == 0  # no error bits: every cell is wired
            client.close()
        finally:
            proc.terminate()
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=10)
    assert b"requests=5 answers=5" in out


def test_static_lanes_are_parsed_or_refused() -> None:
    cells = parse_static("1:1=1200, 1:2=-3.5,2:1=0")
    assert cells.cells() == [(1, 1), (1, 2), (2, 1)]
    assert cells.reading(1, 2, 0.0).grams == -3.5
    for bad in ("", "1:1", "1=5", "a:1=3", "1:1=x", "1:1=1,1:1=2"):
        with pytest.raises(ConfigError, match="--static"):
            parse_static(bad)


def test_faults_are_parsed_or_refused() -> None:
    assert parse_fault("slow@1:10:5:300") == ShelfFault(10.0, "slow", 1, 5.0, delay_ms=300)
    assert parse_fault("exception@2:0:1.5:11") == ShelfFault(0, "exception", 2, 1.5, 0, 11)
    assert parse_fault("exception@2:0:1.5") == ShelfFault(0.0, "exception", 2, 1.5)
    assert parse_fault("absent@7:3:inf") == ShelfFault(3.0, "absent", 7, math.inf)
    for bad in ("melt@1:0:1", "slow@1:0", "silent@1:0:1:5", "bad-crc@x:0:1", "slow@1:0:1:2.5"):
        with pytest.raises(ConfigError, match="--fault"):
            parse_fault(bad)


def test_cli_refuses_a_bad_profile_with_its_file_and_field(tmp_path: Path) -> None:
    profile = tmp_path / "laumas-like.toml"
    profile.write_text(PROFILE.replace('type = "UINT32"', 'type = "UINT33"'))
    cmd = [sys.executable, "-m", "stockwire.cli", "sim", "shelf", "--profile", str(profile)]
    done = subprocess.run(
        [*cmd, "--tcp", "0", "--static", "1:1=1"], capture_output=True, timeout=30, check=False
    )
    assert done.returncode == 2
    assert f"{profile}: weight.type:" in done.stderr.decode()
