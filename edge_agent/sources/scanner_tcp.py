"""A scanner reached over TCP: the edge connects as a client (network scanner bases,
serial-device servers in TCP server mode)."""

import asyncio
import socket

from device_profiles.schema import ScannerProfile
from edge_agent.backoff import Backoff
from edge_agent.recognizers.base import Clock
from edge_agent.sources.base import SourceError
from edge_agent.sources.lines import LineSource, utc_now

CONNECT_TIMEOUT_S = 5.0
# A scanner may be silent for hours; keepalive notices a peer that vanished without a FIN.
KEEPALIVE_IDLE_S = 60
KEEPALIVE_INTERVAL_S = 10
KEEPALIVE_PROBES_MAX = 3


class ScannerTcpSource(LineSource):
    def __init__(
        self,
        device: str,
        profile: ScannerProfile,
        host: str,
        port: int,
        *,
        clock: Clock = utc_now,
        backoff: Backoff | None = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        super().__init__(device, profile, clock=clock, backoff=backoff)
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError:
            raise SourceError(f"no connection within {self.connect_timeout_s} s") from None
        except OSError as exc:
            raise SourceError(str(exc) or type(exc).__name__) from exc
        _keepalive(writer.get_extra_info("socket"))
        return reader, writer


def _keepalive(sock: socket.socket | None) -> None:
    if sock is None:
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE_S),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL_S),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES_MAX),
    ):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)
