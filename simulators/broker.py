"""The demo's embedded broker: a real mosquitto when the binary is installed, else amqtt."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from simulators.mosquitto import Auth, Mosquitto, mosquitto_binary

BrokerKind = Literal["auto", "mosquitto", "amqtt"]

# Why amqtt stays anonymous: in amqtt 0.12 a CONNECT with another client's id replaces (clean
# session) or takes over that client's session *before* the login is checked, so even a refused
# client drops the victim's subscriptions and queued acks; and it reads argon2 password files.
AMQTT_ANONYMOUS = (
    "the embedded amqtt broker lets in ANYONE on 127.0.0.1 (amqtt 0.12 cannot keep a refused "
    "client off another's session); install mosquitto for per-edge logins and ACLs"
)


@dataclass(frozen=True, slots=True)
class EmbeddedBroker:
    host: str
    port: int
    kind: Literal["mosquitto", "amqtt"]
    anonymous: bool  # False: logins and the ACL are enforced


@asynccontextmanager
async def embedded_broker(
    workdir: Path, kind: BrokerKind = "auto", auth: Auth | None = None
) -> AsyncIterator[EmbeddedBroker]:
    """A broker listening on a free loopback port; mosquitto enforces `auth` when given.

    "auto" is mosquitto if its binary is found, else amqtt (MQTT 3.1.1, in this process,
    anonymous whatever `auth` says).
    """
    if kind == "amqtt" or (kind == "auto" and mosquitto_binary() is None):
        from simulators.amqtt_broker import amqtt_broker  # the demo extra's amqtt, only if needed

        async with amqtt_broker() as (host, port):
            yield EmbeddedBroker(host, port, "amqtt", anonymous=True)
        return
    broker = Mosquitto(workdir / "mosquitto", auth=auth)
    await asyncio.to_thread(broker.start)
    try:
        yield EmbeddedBroker(broker.host, broker.port, "mosquitto", anonymous=auth is None)
    finally:
        await asyncio.to_thread(broker.stop)
