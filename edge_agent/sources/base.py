"""The source interface: device I/O adapted into typed readings.

A source owns its reconnects (jittered backoff) and never raises for device trouble: bad
device data becomes a logged, counted event, and the source keeps going.

A source yields one batch per device I/O read: all complete lines of one TCP read, all tags of
one LLRP report, all lanes of one Modbus poll. The agent journals each batch durably (one group
commit) before it asks for the next, so a source must not read its device ahead of the batch it
is asked for: what it has yielded is what the edge has accepted, and a slow journal holds the
device back.
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from edge_agent.readings import Journaled
from stockwire.status import DeviceStatus


class SourceError(Exception):
    """A device I/O failure, turned into one type at the adapter boundary."""


class Source(Protocol):
    device: str

    def batches(self) -> AsyncIterator[Sequence[Journaled]]:
        """Yield non-empty batches of readings (and of what could not be read), in device
        order, forever; reconnect on failure; return only when cancelled."""
        ...

    def status(self) -> DeviceStatus: ...


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """What a source counts about its device since start, for telemetry (device_health).

    `latency_ms_sum` over `latencies` measurements: a shelf's poll round trips, a reader's
    gaps between reports; telemetry turns the growth of both into an interval's mean.
    """

    errors_total: int
    latency_ms_sum: float = 0.0
    latencies: int = 0


@runtime_checkable
class ReportsHealth(Protocol):
    """Optional on a source: sources without it report up/degraded and readings only."""

    def health(self) -> SourceHealth: ...
