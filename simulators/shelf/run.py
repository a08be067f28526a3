"""`stockwire sim shelf`: one shelf bus of simulated weighing transmitters over TCP or RTU."""

import asyncio
import contextlib
import resource
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from device_profiles.loader import load_profile_of
from device_profiles.weighing import WeighingProfile
from simulators.plan import build, shelf_faults, shelf_world
from simulators.shelf.cells import CellReading, CellSource
from simulators.shelf.fault_plan import FAULT_KINDS, FaultError
from simulators.shelf.faults import FaultKind, ShelfFault
from simulators.shelf.registers_image import RegisterMapError
from simulators.shelf.server import ShelfServer
from simulators.shelf.world import ShelfWorld
from stockwire.errors import ConfigError

STATIC_CELLS_MAX = 247 * 64


@dataclass(frozen=True, slots=True)
class Options:
    host: str = "127.0.0.1"
    tcp_port: int | None = None  # one of tcp_port / rtu_path
    rtu_path: str | None = None
    duration_s: float | None = None  # None: until interrupted


class StaticCells:
    """Lanes that never change: each cell shows its grams, stable."""

    def __init__(self, grams: dict[tuple[int, int], float]) -> None:
        self._readings = {cell: CellReading(g, stable=True) for cell, g in grams.items()}

    def reading(self, unit: int, channel: int, t_s: float) -> CellReading:
        return self._readings[(unit, channel)]

    def cells(self) -> list[tuple[int, int]]:
        return sorted(self._readings)


def parse_static(text: str) -> StaticCells:
    """`UNIT:CHANNEL=GRAMS,...`, e.g. `1:1=1200,1:2=350.5,2:1=0`."""
    grams: dict[tuple[int, int], float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, g = _static_cell(item)
        if key in grams:
            raise ConfigError(f"--static {item!r}: cell {key[0]}:{key[1]} given twice")
        grams[key] = g
    if not grams or len(grams) > STATIC_CELLS_MAX:
        raise ConfigError(f"--static: 1..{STATIC_CELLS_MAX} cells needed, got {len(grams)}")
    return StaticCells(grams)


def _static_cell(item: str) -> tuple[tuple[int, int], float]:
    cell, sep, value = item.partition("=")
    unit, colon, channel = cell.partition(":")
    with contextlib.suppress(ValueError):
        if sep and colon:
            return (int(unit), int(channel)), float(value)
    raise ConfigError(f"--static {item!r}: expected UNIT:CHANNEL=GRAMS")


FAULT_SYNTAX = "KIND@UNIT:AT_S:FOR_S[:ARG] (ARG: delay_ms of slow, exception_code of exception)"


def parse_fault(text: str) -> ShelfFault:
    """`slow@1:10:5:300` = unit 1 answers 300 ms late from 10 s for 5 s; ARG is also the
    exception code of `exception` (default 6); other kinds take none."""
    kind, _, rest = text.partition("@")
    parts = rest.split(":")
    bad = ConfigError(f"--fault {text!r}: expected {FAULT_SYNTAX}")
    if kind not in FAULT_KINDS or len(parts) not in (3, 4):
        raise bad
    arg = parts[3] if len(parts) == 4 else None
    if arg is not None and kind not in ("slow", "exception"):
        raise bad
    try:
        unit, at_s, for_s = int(parts[0]), float(parts[1]), float(parts[2])
        number = int(arg) if arg is not None else None
    except ValueError:
        raise bad from None
    if kind == "slow":
        return ShelfFault(at_s, "slow", unit, for_s, delay_ms=number or 0)
    if kind == "exception" and number is not None:
        return ShelfFault(at_s, "exception", unit, for_s, exception_code=number)
    return ShelfFault(at_s, cast(FaultKind, kind), unit, for_s)


@dataclass(frozen=True, slots=True)
class ScenarioShelf:
    """One scenario shelf as its simulator serves it."""

    profile: str
    world: ShelfWorld  # time 0 = the simulator's start
    faults: list[ShelfFault]
    end_s: float  # every change settled and every fault over

    @property
    def summary(self) -> str:
        return (
            f"{len(self.world.changes)} changes, {len(self.faults)} faults, "
            f"all settled by {self.end_s:.1f} s"
        )


def scenario_shelf(scenario: Path, shelf_id: str) -> ScenarioShelf:
    plan = build(scenario)
    world = shelf_world(plan, shelf_id)  # a ScenarioError naming the shelf if there is none
    run = plan.shelves[shelf_id]
    return ScenarioShelf(run.profile, world, list(shelf_faults(plan, shelf_id)), run.end_s)


class FirstRequestClock:
    """Scenario time that starts at the first request (the edge's first poll), as a scenario's
    scanners start when the edge connects: a slow-starting edge misses no change."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._start: float | None = None

    @property
    def started(self) -> bool:
        return self._start is not None

    def __call__(self) -> float:
        now = self._monotonic()
        if self._start is None:
            self._start = now
        return now - self._start


def shelf_server(
    profile_name: str,
    cells: CellSource,
    faults: Sequence[ShelfFault] = (),
    clock_s: Callable[[], float] | None = None,
) -> ShelfServer:
    """A server for a profile by name or path; ConfigError naming what is wrong."""
    profile = load_profile_of(profile_name, WeighingProfile)
    try:
        return ShelfServer(profile, cells, faults=faults, clock_s=clock_s)
    except (RegisterMapError, FaultError) as e:
        raise ConfigError(str(e)) from None


async def run(options: Options, server: ShelfServer) -> int:
    """Serve until interrupted (or `duration_s`); 0, or 1 if the port/path cannot be had."""
    o, name = options, server.profile.name
    if o.rtu_path is not None and "rtu" not in server.profile.transports:
        raise ConfigError(
            f"profile {name!r} speaks {', '.join(server.profile.transports)}, not rtu"
        )
    try:
        if o.rtu_path is not None:
            await server.start_rtu(o.rtu_path)
            where = f"rtu {o.rtu_path}"
        else:
            where = f"tcp {o.host}:{await server.start_tcp(o.host, o.tcp_port or 0)}"
    except OSError as e:
        print(f"stockwire sim shelf: {e.strerror or e}", file=sys.stderr)
        await server.close()
        return 1
    units = ", ".join(map(str, server.units))
    print(f"shelf sim {name}: units {units} serving on {where}", flush=True)
    stop = asyncio.Event()  # SIGTERM ends the run like the end of --duration: figures printed
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(o.duration_s):
                await stop.wait()
    finally:
        await server.close()
        print(f"shelf sim {name}: {figures(server)}", flush=True)
    return 0


def figures(server: ShelfServer) -> str:
    """The server's counters and this process' CPU time and peak RSS (for bench/modbus_poll)."""
    s = server.stats
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    faults = ", ".join(f"{k}={v}" for k, v in sorted(s.faults.items())) or "none"
    return (
        f"requests={s.requests} answers={s.answers} exceptions={s.exceptions} "
        f"unanswered={s.unanswered} malformed={s.malformed} faults: {faults}; "
        f"answer cpu {s.cpu_s:.3f} s, process cpu {time.process_time():.3f} s, "
        f"max rss {rss_mb:.1f} MB"
    )
