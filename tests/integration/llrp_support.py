"""An unmodified sllurp client against our LLRP reader simulator, on loopback.

sllurp runs its own thread; what its callbacks see is collected under a lock and tests wait
for it with bounded polls (`until`), never with a sleep that is itself the assertion.
"""

import asyncio
import contextlib
import struct
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sllurp.llrp import LLRPMessage, LLRPReaderClient, LLRPReaderConfig, LLRPReaderState

from simulators.llrp import frames
from simulators.llrp.frames import MessageType as M
from simulators.llrp.reader import LLRPReader

WAIT_S = 5.0
POLL_S = 0.01

IMPINJ_SELECTOR = {
    "EnableRFPhaseAngle": True,
    "EnablePeakRSSI": True,
    "EnableRFDopplerFrequency": False,
}
CONTENT = {
    "EnableROSpecID": True,
    "EnableAntennaID": True,
    "EnablePeakRSSI": True,
    "EnableFirstSeenTimestamp": True,
    "EnableLastSeenTimestamp": True,
    "EnableTagSeenCount": True,
}


async def until(what: Callable[[], bool], timeout_s: float = WAIT_S, why: str = "") -> None:
    """Poll (bounded) until `what()` holds; AssertionError naming `why` after `timeout_s`."""
    for _ in range(int(timeout_s / POLL_S)):
        if what():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"gave up after {timeout_s} s waiting: {why or what}")


def reader_config(impinj: bool = False, **overrides: Any) -> LLRPReaderConfig:
    settings: dict[str, Any] = {
        "antennas": [1, 2, 3, 4],
        "tx_power": 0,
        "report_every_n_tags": 20,
        "report_timeout_ms": 100,
        "start_inventory": True,
        "keepalive_interval": 0,
        "tag_content_selector": CONTENT,
    }
    if impinj:
        settings["impinj_tag_content_selector"] = IMPINJ_SELECTOR
    settings.update(overrides)
    return LLRPReaderConfig(settings)


class Sllurp:
    """One sllurp LLRPReaderClient and what it saw."""

    def __init__(self, port: int, config: LLRPReaderConfig) -> None:
        self.client = LLRPReaderClient("127.0.0.1", port, config)
        self._lock = threading.Lock()
        self.tags: list[dict[str, Any]] = []
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.states: list[int] = []
        self.disconnected = threading.Event()
        self.client.add_tag_report_callback(self._on_tags)
        self.client.add_disconnected_callback(lambda *_: self.disconnected.set())
        for _, state in LLRPReaderState.getStates():
            self.client.add_state_callback(state, self._on_state)
        for name in (
            "READER_EVENT_NOTIFICATION",
            "ENABLE_ROSPEC_RESPONSE",
            "ADD_ROSPEC_RESPONSE",
            "DELETE_ROSPEC_RESPONSE",
            "CLOSE_CONNECTION_RESPONSE",
            "ERROR_MESSAGE",
            "KEEPALIVE",
            "GET_ROSPECS_RESPONSE",
            "DELETE_ACCESSSPEC_RESPONSE",
        ):
            self.client.add_message_callback(name, self._on_message)

    def _on_tags(self, _reader: object, tags: list[dict[str, Any]]) -> None:
        with self._lock:
            self.tags.extend(tags)

    def _on_state(self, _reader: object, state: int) -> None:
        with self._lock:
            self.states.append(state)

    def _on_message(self, _reader: object, msg: Any) -> None:
        name = msg.getName()
        with self._lock:
            self.messages.append((name, dict(msg.msgdict[name])))

    def seen(self, name: str) -> list[dict[str, Any]]:
        with self._lock:
            return [body for n, body in self.messages if n == name]

    @property
    def inventorying(self) -> bool:
        with self._lock:
            return LLRPReaderState.STATE_INVENTORYING in self.states

    def send(self, msg: dict[str, Any]) -> int:
        """A request through sllurp's own encoder; returns its message id."""
        [(_, msg_id)] = self.client.llrp.sendMessage(msg)
        return int(msg_id)

    def reply(self, name: str, msg_id: int) -> list[dict[str, Any]]:
        return [body for body in self.seen(name) if body["ID"] == msg_id]

    async def connect(self) -> None:
        await asyncio.to_thread(self.client.connect)

    async def stop(self) -> None:
        # also when sllurp's thread died and left its socket; AttributeError: sllurp's thread
        # may clear the socket between hard_disconnect's check and its close
        with contextlib.suppress(AttributeError):
            self.client.hard_disconnect()
        await asyncio.to_thread(self.client.join, WAIT_S)


@asynccontextmanager
async def running(reader: LLRPReader) -> AsyncIterator[LLRPReader]:
    await reader.start()
    try:
        yield reader
    finally:
        await reader.close()


@asynccontextmanager
async def sllurp(port: int, config: LLRPReaderConfig) -> AsyncIterator[Sllurp]:
    client = Sllurp(port, config)
    await client.connect()
    try:
        yield client
    finally:
        await client.stop()


def sllurp_breaking_notification(testdata: Path) -> bytes:
    """A vendor-custom READER_EVENT_NOTIFICATION of dx101_e that sllurp fails on (struct.error)."""
    stream = (testdata / "llrp/ltk-dx101/dx101_e.bin").read_bytes()
    for msg in frames.split(stream):
        frame = frames.encode(msg.type, msg.id, msg.body)
        if msg.type == M.READER_EVENT_NOTIFICATION:
            try:
                LLRPMessage(msgbytes=frame)
            except struct.error:
                return frame
    raise AssertionError("dx101_e has no frame that sllurp fails on")
