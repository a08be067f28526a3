"""`stockwire sim llrp`: one simulated reader on a TCP port, fed with sightings."""

import asyncio
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from simulators.llrp import demo
from simulators.llrp.driver import Fault, SightingDriver
from simulators.llrp.reader import LLRPReader
from simulators.plan import Plan, build
from simulators.sightings import Sighting
from stockwire.errors import ConfigError

DEMO_LOADS = 100


async def serve(
    reader: LLRPReader,
    sightings: Sequence[Sighting],
    speed: float = 1.0,
    faults: Sequence[Fault] = (),
    hold_until_inventory: bool = False,
) -> SightingDriver:
    """Start `reader` and play `sightings` into it in a background task; the driver's `done`
    is set once they all were fed (`driver.stop()` ends it early). The reader keeps serving
    until `reader.close()`. `hold_until_inventory`: the timeline starts when a client's
    ROSpec first becomes active, not now."""
    await reader.start()
    driver = SightingDriver(
        reader, sightings, speed, faults=faults, hold_until_inventory=hold_until_inventory
    )
    driver.start()
    return driver


# Reader profiles (device_profiles) -> the recorded reader model the simulator answers as.
MODEL_OF_PROFILE = {
    "impinj-speedway-r420": "impinj-r420",
    "impinj-r700": "impinj-r420",  # no R700 recording: the Speedway answers in its place
    "zebra-fx9600": "zebra-fx9600",
}


@dataclass(frozen=True, slots=True)
class PortalRun:
    """What one scenario portal's reader does: its sightings, faults and absence at start."""

    model: str
    sightings: tuple[Sighting, ...]
    faults: tuple[Fault, ...]
    absent_s: float


def portal_run(plan: Plan, portal: str) -> PortalRun:
    actors = {a.id: a for a in plan.scenario.portals}
    if portal not in actors:
        known = ", ".join(sorted(actors)) or "none"
        raise ConfigError(f"no portal {portal!r} in the scenario (portals: {known})")
    actor = actors[portal]
    model = MODEL_OF_PROFILE.get(actor.profile)
    if model is None:
        raise ConfigError(f"portal {portal!r}: no simulated reader for profile {actor.profile!r}")
    faults = tuple(Fault(f.at_s, f.fault, down_s=f.down_s) for f in plan.faults.get(portal, ()))
    return PortalRun(model, plan.sightings.get(portal, ()), faults, actor.absent_until_s)


def scenario_portal(scenario: Path, portal: str) -> PortalRun:
    return portal_run(build(scenario), portal)


@dataclass(frozen=True, slots=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 5084
    model: str = "impinj-r420"
    speed: float = 1.0
    duration_s: float | None = None  # None: until interrupted
    hold_until_inventory: bool = False
    absent_s: float = 0.0  # not listening for this long at start
    faults: tuple[Fault, ...] = ()


def parse_fault(text: str) -> Fault:
    """`reboot@AT_S:DOWN_S`, `hang@AT_S:DOWN_S` or `drop@AT_S` (seconds of the timeline)."""
    kind, sep, when = text.partition("@")
    at, _, down = when.partition(":")
    bad = ConfigError(f"--fault {text!r}: expected reboot|hang@AT_S:DOWN_S or drop@AT_S")
    if not sep or kind not in ("reboot", "hang", "drop") or (kind == "drop" and down):
        raise bad
    try:
        return Fault(float(at), kind, down_s=float(down) if down else 0.0)
    except ValueError:
        raise bad from None


async def run(options: Options, sightings: Sequence[Sighting]) -> int:
    """Serve until interrupted (or `duration_s`); 0, or 1 if the port cannot be had."""
    o = options
    if o.speed <= 0:
        raise ConfigError(f"--speed {o.speed}: must be > 0")
    try:
        reader = LLRPReader(o.model, o.host, o.port, absent_until_s=o.absent_s)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    try:
        driver = await serve(reader, sightings, o.speed, o.faults, o.hold_until_inventory)
    except OSError as e:
        print(f"stockwire sim llrp: {o.host}:{o.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(o.duration_s):
                if o.absent_s:
                    print(f"llrp reader {o.model}: absent for {o.absent_s} s", flush=True)
                await reader.up.wait()
                print(
                    f"llrp reader {o.model}: listening on {reader.host}:{reader.port}", flush=True
                )
                await asyncio.Event().wait()
    finally:
        done = "all" if driver.done.is_set() else f"{driver.fed} of {len(sightings)}"
        print(f"llrp reader {o.model}: fed {done} sightings; {reader.stats}", flush=True)
        await driver.stop()
        await reader.close()
    return 0


def demo_sightings(loads: int = DEMO_LOADS) -> list[Sighting]:
    return demo.crossings(loads)
