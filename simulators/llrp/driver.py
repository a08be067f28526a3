"""Plays timed sightings (and scripted faults) into a reader at their times, as
simulators/scanner.py plays scans: `at_s` is seconds from the start at speed 1."""

import asyncio
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from simulators.llrp.reader import LLRPReader
from simulators.sightings import Sighting

SIGHTINGS_MAX = 10_000_000


@dataclass(frozen=True, slots=True)
class Fault:
    """A scripted fault: `kind` is "reboot" (down for `down_s`), "hang" (silent for `down_s`),
    "drop" or "inject" (`data`)."""

    at_s: float
    kind: str
    down_s: float = 0.0
    data: bytes = b""

    def __post_init__(self) -> None:
        assert self.kind in ("reboot", "hang", "drop", "inject"), self.kind


class SightingDriver:
    """Feed `sightings` to `reader` on schedule; `done` is set when the last one was fed."""

    def __init__(
        self,
        reader: LLRPReader,
        sightings: Sequence[Sighting],
        speed: float = 1.0,
        start_s: float = 0.0,
        faults: Sequence[Fault] = (),
        hold_until_inventory: bool = False,
    ) -> None:
        assert speed > 0, speed
        assert len(sightings) <= SIGHTINGS_MAX, len(sightings)
        self.reader = reader
        self.speed = speed
        self.start_s = start_s  # skip what happened before this point of the timeline
        self.hold_until_inventory = hold_until_inventory  # the clock starts with the first ROSpec
        self.done = asyncio.Event()
        self.fed = 0
        self._sightings = sorted((s for s in sightings if s.at_s >= start_s), key=_at)
        self._faults = sorted((f for f in faults if f.at_s >= start_s), key=lambda f: f.at_s)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def total(self) -> int:
        """Sightings this driver plays."""
        return len(self._sightings)

    def start(self) -> None:
        """Run in a background task (see `stop`)."""
        self._spawn(self.run())

    async def stop(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        if self.hold_until_inventory:
            await self.reader.inventory_started.wait()
        t0 = time.monotonic()
        faults = list(self._faults)
        for at_s, group in groupby(self._sightings, key=_at):
            while faults and faults[0].at_s <= at_s:
                await self._sleep_until(t0, faults[0].at_s)
                self._fault(faults.pop(0))
            await self._sleep_until(t0, at_s)
            batch = list(group)
            self.reader.sight(batch)
            self.fed += len(batch)
        for fault in faults:
            await self._sleep_until(t0, fault.at_s)
            self._fault(fault)
        self.done.set()

    async def _sleep_until(self, t0: float, at_s: float) -> None:
        wait_s = t0 + (at_s - self.start_s) / self.speed - time.monotonic()
        if wait_s > 0:
            await asyncio.sleep(wait_s)

    def _fault(self, fault: Fault) -> None:
        """Takes effect now, before the next sighting; only recoveries are left to tasks."""
        if fault.kind == "drop":
            self.reader.drop()
        elif fault.kind == "inject":
            self.reader.inject_now(fault.data)
        elif fault.kind == "reboot":
            self.reader.power_off()
            self._spawn(self.reader.power_on(after_s=fault.down_s / self.speed))
        else:
            self.reader.freeze()
            self._spawn(self._thaw_after(fault.down_s / self.speed))

    async def _thaw_after(self, delay_s: float) -> None:
        try:
            await asyncio.sleep(delay_s)
        finally:
            self.reader.thaw()


def _at(s: Sighting) -> float:
    return s.at_s
