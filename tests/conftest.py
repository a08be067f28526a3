import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.mosquitto import Mosquitto
from simulators.victoria_metrics import VictoriaMetrics

ROOT = Path(__file__).resolve().parents[1]
TESTDATA = ROOT.parent / "shared" / "testdata"
CASES = Path(__file__).parent / "cases"


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real mosquitto on a free loopback port; tests may stop(), kill() and start() it."""
    broker = Mosquitto(tmp_path / "mosquitto").start()
    try:
        yield broker
    finally:
        broker.kill()


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A real VictoriaMetrics (InfluxDB v2 write API) on a free loopback port, tmp storage."""
    server = VictoriaMetrics(tmp_path / "victoria-metrics").start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def pg_dsn() -> str:
    dsn = os.environ.get("STOCKWIRE_TEST_PG_DSN")
    if not dsn:
        pytest.skip("STOCKWIRE_TEST_PG_DSN is not set (make test sets it)")
    return dsn


@pytest.fixture
def testdata() -> Path:
    if not TESTDATA.is_dir():
        pytest.skip(f"shared test data not found at {TESTDATA}")
    return TESTDATA
