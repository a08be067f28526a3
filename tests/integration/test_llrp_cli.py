"""`stockwire sim llrp` as a process: sllurp connects and receives the demo loads' tags."""

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.llrp.driver import Fault
from simulators.llrp.run import parse_fault
from simulators.ports import free_port
from stockwire.errors import ConfigError
from tests.integration.llrp_support import reader_config, sllurp, until


@pytest.fixture
def sim_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    cmd = [sys.executable, "-m", "stockwire.cli", "sim", "llrp", "--port", str(port)]
    cmd += ["--sightings-demo", "2", "--speed", "4", "--duration", "30", "--hold-until-inventory"]
    with (
        (tmp_path / "sim.log").open("wb") as log,
        subprocess.Popen(cmd, stdout=log, stderr=log) as proc,
    ):
        try:
            # not wait_port: a probe connection would hold the reader's one client slot
            listening(tmp_path / "sim.log", proc)
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def listening(log: Path, proc: "subprocess.Popen[bytes]", timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while b"listening on" not in log.read_bytes():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"no 'listening on' in {timeout_s} s"
        time.sleep(0.02)


async def test_cli_reader_serves_sllurp_the_demo_tags(sim_port: int) -> None:
    async with sllurp(sim_port, reader_config(impinj=True)) as client:
        # the clock waits for the inventory: nothing of the first load is missed
        await until(lambda: len({t["EPC"] for t in client.tags}) == 24, why="both loads")
        assert {t["AntennaID"] for t in client.tags} == {1, 2, 3, 4}
        first = min(client.tags, key=lambda t: t["FirstSeenTimestampUTC"])
        assert first["AntennaID"] in (1, 2)  # the first load is inbound: outside antennas first


def test_cli_faults_are_parsed_or_refused() -> None:
    assert parse_fault("reboot@12.5:3") == Fault(12.5, "reboot", down_s=3.0)
    assert parse_fault("drop@4") == Fault(4.0, "drop")
    assert parse_fault("hang@1:20") == Fault(1.0, "hang", down_s=20.0)
    for bad in ("reboot", "explode@3", "drop@4:2", "reboot@x:1"):
        with pytest.raises(ConfigError):
            parse_fault(bad)


def test_cli_absent_reader_listens_later(tmp_path: Path) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "stockwire.cli", "sim", "llrp", "--port", str(port)]
    cmd += ["--sightings-demo", "1", "--absent", "0.5", "--duration", "20"]
    with (
        (tmp_path / "sim.log").open("wb") as log,
        subprocess.Popen(cmd, stdout=log, stderr=log) as proc,
    ):
        try:
            listening(tmp_path / "sim.log", proc)
            assert b"absent for 0.5 s" in (tmp_path / "sim.log").read_bytes()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
