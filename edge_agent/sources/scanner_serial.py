"""A scanner on a serial port (RS-232, or a USB-CDC virtual COM port) via pyserial-asyncio."""

import asyncio
from typing import cast

import serial_asyncio

from device_profiles.schema import ScannerProfile
from edge_agent.backoff import Backoff
from edge_agent.recognizers.base import Clock
from edge_agent.sources.base import SourceError
from edge_agent.sources.lines import LineSource, utc_now

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class ScannerSerialSource(LineSource):
    def __init__(
        self,
        device: str,
        profile: ScannerProfile,
        path: str,
        *,
        clock: Clock = utc_now,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(device, profile, clock=clock, backoff=backoff)
        self.path = path

    @property
    def endpoint(self) -> str:
        return self.path

    async def _open(self) -> Stream:
        settings = self.profile.serial
        try:
            opened = await serial_asyncio.open_serial_connection(
                url=self.path,
                baudrate=settings.baud,
                bytesize=settings.bytesize,
                parity=settings.parity,
                stopbits=settings.stopbits,
                rtscts=settings.rtscts,
                xonxoff=settings.xonxoff,
            )
        except (OSError, ValueError) as exc:  # serial.SerialException is an OSError
            raise SourceError(str(exc) or type(exc).__name__) from exc
        return cast(Stream, opened)
