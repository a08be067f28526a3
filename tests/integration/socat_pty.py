"""A pty pair from socat: a serial line between two processes or tasks, for RTU and scanner tests.

    async with pty_pair() as line:
        await server.start_rtu(line.device_end)
        client = AsyncModbusSerialClient(line.edge_end, ...)
        await line.stop()  # the cable is pulled: both ends go away

Skips the test when socat is not installed.
"""

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

OPEN_TIMEOUT_S = 10.0


class PtyPair:
    def __init__(self, process: asyncio.subprocess.Process, ends: list[str]) -> None:
        self.process = process
        self.edge_end, self.device_end = ends

    async def stop(self) -> None:
        """Pull the cable: socat exits and both pty paths disappear."""
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


@asynccontextmanager
async def pty_pair() -> AsyncIterator[PtyPair]:
    socat = shutil.which("socat")
    if socat is None:
        pytest.skip("socat not installed")
    process = await asyncio.create_subprocess_exec(
        socat, "-d", "-d", "pty,raw,echo=0", "pty,raw,echo=0", stderr=asyncio.subprocess.PIPE
    )
    try:
        yield PtyPair(process, await _ends(process))
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def _ends(process: asyncio.subprocess.Process) -> list[str]:
    assert process.stderr is not None
    ends: list[str] = []
    async with asyncio.timeout(OPEN_TIMEOUT_S):
        while len(ends) < 2:
            line = (await process.stderr.readline()).decode()
            if not line:
                raise RuntimeError("socat exited before opening both ptys")
            if match := re.search(r"PTY is (\S+)", line):
                ends.append(match.group(1))
    return ends
