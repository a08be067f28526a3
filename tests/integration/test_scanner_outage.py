"""A serial scanner that is not plugged in: retried with backoff, reported steadily, not at each
retry; when its port appears, one line says it is back and after how many attempts."""

import logging
import os
from pathlib import Path

import pytest

from device_profiles import ScannerProfile, load_profile_of
from edge_agent.outage import OutageReport
from edge_agent.sources.scanner_serial import ScannerSerialSource
from stockwire.status import DeviceState
from tests.integration.socat_pty import pty_pair
from tests.integration.test_scanner_sources import Collector, fast_backoff, open_device_end, until

LINES_LOGGER = "edge_agent.sources.lines"


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 0.0

    def __call__(self) -> float:
        return self.now_s


async def test_a_missing_serial_port_is_reported_steadily(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LINES_LOGGER)
    port = tmp_path / "ttyUSB-scanner"
    source = ScannerSerialSource(
        "bench-1",
        load_profile_of("generic-serial-scanner", ScannerProfile),
        str(port),
        backoff=fast_backoff(),
    )
    clock = FakeClock()
    source.report = OutageReport(logging.getLogger(LINES_LOGGER), "scanner bench-1", 300, clock)

    def lines(level: int) -> list[str]:
        return [r.getMessage() for r in caplog.records if r.levelno == level]

    async with pty_pair() as ptys, Collector(source) as got:
        await until(lambda: source.counters.failures >= 10, "ten failed opens")
        assert len(lines(logging.WARNING)) == 1
        assert str(port) in lines(logging.WARNING)[0]
        clock.now_s = 300.0
        await until(lambda: len(lines(logging.WARNING)) == 2, "the report of the interval")
        assert "still down after 300 s" in lines(logging.WARNING)[1]

        os.symlink(ptys.edge_end, port)  # the scanner is plugged in
        await until(lambda: source.status().state is DeviceState.UP, "port open")
        back = [line for line in lines(logging.INFO) if "connected to" in line]
        assert len(back) == 1
        assert f"connected to {port} after {source.counters.failures} failed attempt(s)" in back[0]
        fd = open_device_end(ptys.device_end)
        try:
            os.write(fd, b"WIDGET-42\r")
            assert await got.wait_raws(1) == ["WIDGET-42"]
        finally:
            os.close(fd)
    assert len(lines(logging.WARNING)) == 2
