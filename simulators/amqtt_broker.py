"""An in-process amqtt broker (MQTT 3.1.1) on a free loopback port, for the demo when no
mosquitto binary is installed."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from amqtt.broker import Broker

from simulators.ports import free_port

HOST = "127.0.0.1"


@asynccontextmanager
async def amqtt_broker(host: str = HOST) -> AsyncIterator[tuple[str, int]]:
    port = free_port(host)
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()  # listening once this returns
    try:
        yield host, port
    finally:
        await broker.shutdown()
