"""A barcode scanner simulator: emits one scanner actor's reads from a scenario.

Over TCP it behaves like a network scanner base or a serial-device server: it listens, the edge
connects as a client, and lines are only sent while a client is connected. The schedule's
clock stops while nobody is connected, so the gaps between reads (which the edge's duplicate
suppression depends on) are kept after a reconnect. Over a pty it writes to the tty path.
"""

import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from device_profiles import ScannerProfile, load_profile
from simulators.line_port import HOST, LinePort
from simulators.plan import TimedScan, build
from simulators.scenario import ScenarioError

LINES_MAX = 1_000_000


@dataclass(frozen=True, slots=True)
class TimedLine:
    at_s: float
    data: bytes


def wire_for(profile: str) -> ScannerProfile:
    """The scanner profile (shipped name or path) that frames an actor's reads."""
    loaded = load_profile(profile)
    if not isinstance(loaded, ScannerProfile):
        raise ScenarioError(f"profile {profile!r} is a {loaded.kind} profile, not a scanner")
    return loaded


def encode(scans: Sequence[TimedScan], wire: ScannerProfile) -> list[TimedLine]:
    return [TimedLine(s.at_s, _frame(s, wire)) for s in scans]


def _frame(scan: TimedScan, wire: ScannerProfile) -> bytes:
    text = wire.prefix + scan.barcode.render(wire.symbology_ids) + wire.suffix + wire.terminator
    return text.encode(wire.encoding)


class ScannerSim:
    """Serve `lines` to one TCP client at a time; `done` is set once every line was written."""

    def __init__(
        self, lines: Sequence[TimedLine], host: str = HOST, port: int = 0, speed: float = 1.0
    ) -> None:
        assert speed > 0, speed
        assert len(lines) <= LINES_MAX, len(lines)
        self.speed = speed
        self.done = asyncio.Event()
        self.sent = 0
        self._lines = list(lines)
        self._port = LinePort(host, port)

    @property
    def host(self) -> str:
        return self._port.host

    @property
    def lines_total(self) -> int:
        return len(self._lines)

    @property
    def port(self) -> int:
        return self._port.port

    async def start(self) -> None:
        """Listen (port 0 = any free port; read `.port` after)."""
        await self._port.start()

    async def serve(self) -> None:
        """Send every line, set `done`, then keep the connection up until cancelled."""
        await self.start()
        try:
            await self._send_all()
            self.done.set()
            await asyncio.Event().wait()
        finally:
            await self._port.close()

    async def _send_all(self) -> None:
        clock_s = 0.0
        for line in self._lines:
            wait_s = line.at_s / self.speed - clock_s
            if wait_s > 0:
                await self._port.connected()
                await asyncio.sleep(wait_s)
                clock_s = line.at_s / self.speed
            await self._port.connected()
            while not await self._port.write(line.data):
                await self._port.connected()
            self.sent += 1


async def write_tty(path: Path, lines: Sequence[TimedLine], speed: float) -> None:
    """Write the lines to a tty (e.g. one end of a socat pty pair), on schedule."""
    fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_NOCTTY)
    try:
        clock_s = 0.0
        for line in lines:
            wait_s = line.at_s / speed - clock_s
            if wait_s > 0:
                await asyncio.sleep(wait_s)
                clock_s = line.at_s / speed
            await asyncio.to_thread(os.write, fd, line.data)
    finally:
        os.close(fd)


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ScenarioError(f"--tcp {text!r}: expected HOST:PORT")
    return host or HOST, int(port)


async def run(scenario: Path, scanner: str, tcp: str | None, pty: Path | None, speed: float) -> int:
    """`stockwire sim scanner`: emit one scanner's reads; 0 once all are sent, 1 on an I/O error."""
    if speed <= 0:
        raise ScenarioError(f"--speed {speed}: must be > 0")
    plan = build(scenario)
    actor = plan.scenario.scanner(scanner)
    lines = encode(plan.scans[actor.id], wire_for(actor.profile))
    try:
        if pty is not None:
            await write_tty(pty, lines, speed)
            print(f"scanner {scanner}: wrote {len(lines)} lines to {pty}", flush=True)
            return 0
        assert tcp is not None
        return await _serve_tcp(scanner, ScannerSim(lines, *_host_port(tcp), speed=speed))
    except OSError as e:
        print(f"stockwire sim scanner: {pty or tcp}: {e.strerror or e}", file=sys.stderr)
        return 1


async def _serve_tcp(scanner: str, sim: ScannerSim) -> int:
    await sim.start()
    print(f"scanner {scanner}: listening on {sim.host}:{sim.port}", flush=True)
    task = asyncio.create_task(sim.serve())
    await sim.done.wait()
    await asyncio.sleep(0.5)  # let the last line leave before the socket closes
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    print(f"scanner {scanner}: sent {sim.sent} lines", flush=True)
    return 0
