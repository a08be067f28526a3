"""Does our broker let in clients without credentials? Then anyone who reaches it can post as any
edge and forge acks (an edge deletes what it believes posted). DESIGN §9 allows that for loopback
demos only, so the aggregator says so loudly at start and in /health."""

import asyncio
import logging
from uuid import uuid4

import aiomqtt

from aggregator.settings import MqttSettings

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 10.0
# CONNACK codes of a refused login: MQTT 3.1.1 (4, 5) and as paho 2 reports them (MQTT 5).
REFUSED_CODES = frozenset({4, 5, 134, 135})


async def accepts_anonymous(settings: MqttSettings) -> bool | None:
    """Connect once without credentials: True if let in, False if refused, None if unknown."""
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        identifier=f"stockwire-probe-{uuid4().hex[:12]}",
        clean_session=True,
        tls_context=settings.tls_context(),
        timeout=PROBE_TIMEOUT_S,
    )
    try:
        async with client:
            return True
    except aiomqtt.MqttCodeError as e:
        if getattr(e.rc, "value", e.rc) in REFUSED_CODES:
            return False
        log.warning("could not tell whether %s accepts anonymous clients: %s", _broker(settings), e)
    except aiomqtt.MqttError as e:
        log.warning("could not tell whether %s accepts anonymous clients: %s", _broker(settings), e)
    return None


class AnonymousCheck:
    """Probes once the aggregator is on the broker; `anonymous` is None until it knows."""

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        self.anonymous: bool | None = None

    async def run(self, connected: asyncio.Event) -> None:
        await connected.wait()
        self.anonymous = await accepts_anonymous(self.settings)
        if self.anonymous:
            log.warning(warning_text(self.settings))


def warning_text(settings: MqttSettings) -> str:
    bar = "*" * 78
    return "\n".join(
        [
            f"the MQTT broker {_broker(settings)} accepts clients WITHOUT credentials.",
            bar,
            "  Anyone who can reach it can publish transactions as any edge and forge acks,",
            "  and an edge deletes the transactions a forged ack names: they are lost.",
            "  Give every edge and the aggregator its own login and pin them with the ACLs",
            "  (`stockwire broker conf|acl|passwd`, README: MQTT credentials and ACLs).",
            "  An anonymous broker is for a loopback demo only.",
            bar,
        ]
    )


def _broker(settings: MqttSettings) -> str:
    return f"{'mqtts' if settings.tls else 'mqtt'}://{settings.host}:{settings.port}"
