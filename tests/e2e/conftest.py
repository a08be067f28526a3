from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from simulators.mosquitto import Mosquitto
from tests.e2e.support import Chain


@pytest.fixture
async def chain(tmp_path: Path, mosquitto: Mosquitto) -> AsyncIterator[Chain]:
    """Scanner, edge and aggregator around the `mosquitto` fixture, in their own folder."""
    workdir = tmp_path / "chain"
    workdir.mkdir()
    chain = Chain(workdir, mosquitto)
    try:
        await chain.open()
        yield chain
    finally:
        chain.close()  # kills every process still running, prints the log tails
        await chain.scanner.close()
