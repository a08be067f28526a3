"""The demo's embedded broker: a real mosquitto when the binary is installed, else amqtt."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from simulators.mosquitto import Mosquitto, mosquitto_binary

BrokerKind = Literal["auto", "mosquitto", "amqtt"]


def resolve(kind: BrokerKind) -> Literal["mosquitto", "amqtt"]:
    """ "auto" is mosquitto if its binary is found, else amqtt (MQTT 3.1.1, in this process)."""
    if kind == "amqtt" or (kind == "auto" and mosquitto_binary() is None):
        return "amqtt"
    return "mosquitto"


log = logging.getLogger(__name__)


@asynccontextmanager
async def embedded_broker(
    workdir: Path, kind: BrokerKind = "auto"
) -> AsyncIterator[tuple[str, int]]:
    """Yield (host, port) of a broker listening on a free loopback port (see `resolve`)."""
    if resolve(kind) == "amqtt":
        from simulators.amqtt_broker import amqtt_broker  # the demo extra's amqtt, only if needed

        log.info("using the embedded amqtt broker")
        async with amqtt_broker() as address:
            yield address
        return
    broker = Mosquitto(workdir / "mosquitto")
    await asyncio.to_thread(broker.start)
    try:
        yield broker.host, broker.port
    finally:
        await asyncio.to_thread(broker.stop)
