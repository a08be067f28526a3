"""`stockwire sim llrp` as a process: sllurp connects and receives the demo loads' tags."""

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.ports import free_port
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
