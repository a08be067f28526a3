"""A device that stays away: one warning, then at most one line per interval, then 'back'."""

import logging

import pytest

from edge_agent.outage import OutageReport

log = logging.getLogger("test.outage")


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_long_outage_is_a_few_lines(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    report = OutageReport(log, "scanner bench-1", interval_s=300, monotonic=clock)
    caplog.set_level(logging.DEBUG, logger=log.name)
    for _ in range(100):  # a retry every ~2.9 s: the first 99 fall in the first interval
        report.failed("cannot open /dev/ttyUSB0: no such file", retry_s=2.9)
        clock.now_s += 2.9
    lines = warnings(caplog)
    assert len(lines) == 1
    assert lines[0].startswith("scanner bench-1: cannot open /dev/ttyUSB0: no such file;")
    assert "at most every 300 s" in lines[0]
    assert sum(r.levelno == logging.DEBUG for r in caplog.records) == 99  # each retry, quietly

    clock.now_s = 1000.0 + 300
    report.failed("cannot open /dev/ttyUSB0: no such file", retry_s=10)
    lines = warnings(caplog)
    assert len(lines) == 2
    assert lines[1] == (
        "scanner bench-1: still down after 300 s: 100 failed attempt(s) since the last report,"
        " 101 in all; last: cannot open /dev/ttyUSB0: no such file"
    )
    clock.now_s += 299
    report.failed("gone", retry_s=10)
    assert len(warnings(caplog)) == 2  # the next one is due an interval after the last

    clock.now_s += 1
    assert report.recovered() == " after 102 failed attempt(s) over 600 s"
    assert not report.down


def test_back_then_down_again_warns_again(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    report = OutageReport(log, "scanner s", interval_s=60, monotonic=clock)
    caplog.set_level(logging.DEBUG, logger=log.name)
    assert report.recovered() == ""  # never down: nothing to say
    report.failed("refused", retry_s=0.2)
    assert report.down
    assert report.recovered() == " after 1 failed attempt(s) over 0 s"
    report.failed("refused", retry_s=0.2)
    assert len(warnings(caplog)) == 2
