"""The source interface: device I/O adapted into typed readings.

A source owns its reconnects (jittered backoff) and never raises for device trouble: bad
device data becomes a logged, counted event, and the source keeps going.
"""

from collections.abc import AsyncIterator
from typing import Protocol

from edge_agent.readings import Reading
from stockwire.status import DeviceStatus


class SourceError(Exception):
    """A device I/O failure, turned into one type at the adapter boundary."""


class Source(Protocol):
    device: str

    def readings(self) -> AsyncIterator[Reading]:
        """Yield readings forever; reconnect on failure; return only when cancelled."""
        ...

    def status(self) -> DeviceStatus: ...
