"""The demo's embedded brokers carry a QoS 1 message from a publisher to a subscriber."""

from pathlib import Path

import aiomqtt
import pytest

from simulators.amqtt_broker import amqtt_broker
from simulators.broker import embedded_broker
from simulators.mosquitto import mosquitto_binary


async def roundtrip(host: str, port: int) -> bytes:
    async with aiomqtt.Client(host, port, identifier="sub") as sub:
        await sub.subscribe("demo/#", qos=1)
        async with aiomqtt.Client(host, port, identifier="pub") as pub:
            await pub.publish("demo/x", b"hello", qos=1)
        async for message in sub.messages:
            assert isinstance(message.payload, bytes)
            return message.payload
    raise AssertionError("no message")


async def test_amqtt_broker_on_a_free_loopback_port() -> None:
    async with amqtt_broker() as (host, port):
        assert host == "127.0.0.1"
        assert await roundtrip(host, port) == b"hello"


async def test_embedded_broker_prefers_mosquitto(tmp_path: Path) -> None:
    if mosquitto_binary() is None:
        pytest.skip("no mosquitto binary")
    async with embedded_broker(tmp_path) as broker:
        assert (broker.kind, broker.anonymous) == ("mosquitto", True)
        assert await roundtrip(broker.host, broker.port) == b"hello"
    assert (tmp_path / "mosquitto" / "mosquitto.conf").exists()
