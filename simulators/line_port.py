"""A TCP server for one client at a time, as a network scanner base or a serial-device server is.

The edge connects as the client; bytes are written to whoever is connected now. A newer client
replaces the older one. What the client sends is read and ignored.
"""

import asyncio
import contextlib
import logging

HOST = "127.0.0.1"
CLOSE_WAIT_S = 5.0

log = logging.getLogger(__name__)


class LinePort:
    def __init__(self, host: str = HOST, port: int = 0) -> None:
        self.host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._client: asyncio.StreamWriter | None = None
        self._connected = asyncio.Event()
        self.accepted = 0  # clients accepted so far

    @property
    def port(self) -> int:
        if self._server is None:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Listen (port 0 = any free port; read `.port` after)."""
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, self.host, self._port)

    async def connected(self) -> None:
        """Return once a client is connected."""
        await self._connected.wait()

    async def write(self, data: bytes) -> bool:
        """Write to the client connected now; False if there is none or the write failed."""
        writer = self._client
        if writer is None or writer.is_closing():
            self._drop(writer)
            return False
        try:
            writer.write(data)
            await writer.drain()
        except ConnectionError:
            self._drop(writer)
            return False
        return True

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_WAIT_S):
                    await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        log.info("line port %s:%s: client %s connected", self.host, self.port, _peer(writer))
        if self._client is not None:
            self._client.close()
        self._client = writer
        self.accepted += 1
        self._connected.set()
        try:
            while await reader.read(4096):
                pass  # a scanner ignores what the host sends
        except ConnectionError:
            pass
        finally:
            self._drop(writer)
            writer.close()

    def _drop(self, writer: asyncio.StreamWriter | None) -> None:
        if self._client is writer:
            self._client = None
            self._connected.clear()


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if peer else "?"
