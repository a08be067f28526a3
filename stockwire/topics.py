"""The only place MQTT topic strings are built and parsed.

stockwire/v1/{site}/{edge}/txn        edge -> aggregator   QoS 1
stockwire/v1/{site}/{edge}/ack        aggregator -> edge   QoS 1
stockwire/v1/{site}/{edge}/telemetry  edge -> aggregator   QoS 0
stockwire/v1/{site}/{edge}/status     edge, retained + last will
stockwire/v1/{site}/ledger            aggregator -> anyone QoS 1
stockwire/v1/{site}/alerts            aggregator -> anyone QoS 1
"""

import re
from dataclasses import dataclass
from enum import StrEnum

ROOT = "stockwire/v1"
SHARE_GROUP = "aggregator"
ACL_USERNAME = "%u"  # Mosquitto ACL patterns put the client's username here
_IDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TopicError(ValueError):
    pass


class EdgeChannel(StrEnum):
    TXN = "txn"
    ACK = "ack"
    TELEMETRY = "telemetry"
    STATUS = "status"


class SiteChannel(StrEnum):
    LEDGER = "ledger"
    ALERTS = "alerts"


@dataclass(frozen=True, slots=True)
class EdgeTopic:
    site: str
    edge: str
    channel: EdgeChannel


def topic_level(value: str, what: str) -> str:
    """`value` if it can be one level of a topic (a site, an edge, an MQTT username)."""
    if not _IDENT.match(value):
        raise TopicError(f"{what} {value!r} is not a valid topic level")
    return value


def edge_topic(site: str, edge: str, channel: EdgeChannel) -> str:
    return f"{ROOT}/{topic_level(site, 'site')}/{topic_level(edge, 'edge')}/{channel.value}"


def site_topic(site: str, channel: SiteChannel) -> str:
    return f"{ROOT}/{topic_level(site, 'site')}/{channel.value}"


def edge_filter(channel: EdgeChannel, site: str | None = None, shared: bool = False) -> str:
    """Subscription filter for one channel of every edge (of one site, or of all sites)."""
    site_level = "+" if site is None else topic_level(site, "site")
    topic = f"{ROOT}/{site_level}/+/{channel.value}"
    return f"$share/{SHARE_GROUP}/{topic}" if shared else topic


def edge_acl_pattern(site: str, channel: EdgeChannel) -> str:
    """One channel of "the edge that is logged in" on a site, for a Mosquitto ACL `pattern`."""
    return f"{ROOT}/{topic_level(site, 'site')}/{ACL_USERNAME}/{channel.value}"


def parse_edge_topic(topic: str) -> EdgeTopic:
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != ROOT:
        raise TopicError(f"topic {topic!r} is not {ROOT}/{{site}}/{{edge}}/{{channel}}")
    try:
        channel = EdgeChannel(parts[4])
    except ValueError:
        raise TopicError(f"topic {topic!r} has unknown channel {parts[4]!r}") from None
    return EdgeTopic(topic_level(parts[2], "site"), topic_level(parts[3], "edge"), channel)
