"""The MQTT trust boundary with a real mosquitto set up as deploy/mosquitto is (DESIGN §9).

Each test is one hole of issue 5 that an anonymous broker (the demo and example configs before)
leaves open. Forged messages are followed by a genuine one from the same or a later publisher:
mosquitto keeps each client's messages in order, so once the genuine one has arrived, a forged
one that got through would have arrived before it.
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import aiomqtt
import httpx
import pytest

from aggregator.anonymous_probe import accepts_anonymous
from aggregator.roles import Role
from aggregator.settings import AggregatorSettings, MqttSettings
from edge_agent.outbox import Outbox
from edge_agent.publisher import Publisher
from edge_agent.settings import EdgeSettings
from simulators.mosquitto import Mosquitto
from stockwire.ack import Ack, AckResult, AckStatus
from stockwire.broker_config import AGGREGATOR_USER
from stockwire.ids import uuid7
from stockwire.topics import EdgeChannel, edge_filter, edge_topic
from stockwire.txn import TxnBatch, TxnKind
from tests.integration import secured_support
from tests.integration.aggregator_support import (
    EDGE,
    SITE,
    api_client,
    api_key,
    batch,
    recording,
    running_aggregator,
    txn,
    wait_ack,
    wait_for,
)
from tests.integration.edge_support import _retrieve_disconnect, draft, running, wait_until
from tests.integration.secured_support import EDGE_B, SPY, Secured

secured = secured_support.secured
ANONYMOUS_WARNING = "accepts clients WITHOUT credentials"


def ack_for(edge: str, ids: list[UUID]) -> str:
    results = tuple(AckResult(id=i, status=AckStatus.ACCEPTED) for i in ids)
    return Ack(edge=edge, acked_at=datetime.now(UTC), results=results).model_dump_json()


def receipt(edge: str) -> TxnBatch:
    return batch(txn(TxnKind.RECEIPT, edge=edge, to_location="A-1"), edge=edge)


async def test_clients_without_a_valid_login_are_refused(secured: Secured) -> None:
    for username, password in [(None, None), (EDGE, "not-its-password"), ("nobody", "x")]:
        with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
            async with secured.client(username, password=password):
                pass
    async with secured.client(EDGE):  # the password file we wrote is one mosquitto reads
        pass
    assert await accepts_anonymous(MqttSettings(**secured.mqtt(EDGE))) is False


@pytest.mark.parametrize("shared", [False, True], ids=["subscription", "shared-subscription"])
async def test_the_aggregator_posts_and_acks_with_its_login_and_does_not_warn(
    secured: Secured, tmp_path: Path, shared: bool, caplog: pytest.LogCaptureFixture
) -> None:
    settings = secured.aggregator(tmp_path, shared_subscription=shared)
    edge = EdgeSettings(
        site=SITE,
        edge=EDGE,
        mqtt={**secured.mqtt(EDGE), "username": None},  # a password alone: username = edge id
        outbox={"path": tmp_path / "outbox.sqlite"},
    )
    assert (edge.mqtt.username, edge.client_id) == (EDGE, EDGE)
    outbox = await Outbox.open(edge.outbox.path, EDGE, 100)
    publisher = Publisher(edge, outbox)
    try:
        async with running_aggregator(settings) as url, running(publisher.run()):
            await outbox.add([draft(f"S{i}") for i in range(5)])
            publisher.wake()
            await wait_until(lambda: outbox.count() == 0, "the edge's rows acked")
            async with httpx.AsyncClient(base_url=url) as http:
                await wait_for(_probed(http), "the anonymous probe")
                health = (await http.get("/health")).json()
            publisher.request_stop()
    finally:
        await outbox.close()
    assert publisher.stats.acks >= 1
    assert health["mqtt_anonymous"] is False
    assert ANONYMOUS_WARNING not in caplog.text


async def test_the_aggregator_warns_loudly_when_its_broker_accepts_anonymous_clients(
    mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = AggregatorSettings(
        site=SITE,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        mqtt={"host": mosquitto.host, "port": mosquitto.port},
        api={"port": 0},
    )
    with caplog.at_level(logging.WARNING, logger="aggregator"):
        async with running_aggregator(settings) as url, httpx.AsyncClient(base_url=url) as http:
            await wait_for(_probed(http), "the anonymous probe")
            health = (await http.get("/health")).json()
    assert health["mqtt_anonymous"] is True
    warnings = [r for r in caplog.records if ANONYMOUS_WARNING in r.getMessage()]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert f"mqtt://{mosquitto.host}:{mosquitto.port}" in message
    assert "as any edge" in message
    assert message.count("\n") >= 5  # a block that stands out in a log, not one more line


async def test_an_edge_cannot_post_as_another_edge(secured: Secured, tmp_path: Path) -> None:
    settings = secured.aggregator(tmp_path)
    forged, genuine = receipt(EDGE_B), receipt(EDGE)
    forged_topic = edge_topic(SITE, EDGE_B, EdgeChannel.TXN)
    genuine_topic = edge_topic(SITE, EDGE, EdgeChannel.TXN)
    edge = secured.client(EDGE)
    async with (
        running_aggregator(settings) as url,
        recording(secured.client(SPY), "#") as spied,
    ):
        assert await forge(secured, EDGE, forged_topic, forged.model_dump_json())
        async with recording(edge, edge_topic(SITE, EDGE, EdgeChannel.ACK)) as inbox:
            await edge.publish(genuine_topic, genuine.model_dump_json(), qos=1)
            await wait_ack(inbox, {t.id for t in genuine.txns})
        await spied.next(genuine_topic, "the genuine batch at the spy")
        viewer = api_key(settings.database_url, Role.VIEWER)
        async with api_client(url, viewer) as http:
            assert (await http.get(f"/transactions/{forged.txns[0].id}")).status_code == 404
            assert (await http.get("/dead-letters")).json()["items"] == []
    assert forged_topic not in {t for t, _ in spied.messages}


async def test_an_edge_cannot_post_on_another_site(secured: Secured) -> None:
    own = edge_topic(SITE, EDGE, EdgeChannel.TELEMETRY)
    channels = (EdgeChannel.TXN, EdgeChannel.STATUS, EdgeChannel.TELEMETRY)
    async with recording(secured.client(SPY), "#") as spied:
        for channel in channels:
            assert await forge(secured, EDGE, edge_topic("other-site", EDGE, channel), "{}")
        async with secured.client(EDGE) as client:
            await client.publish(own, b"{}", qos=1)
        await spied.next(own, "the edge's own telemetry")
    assert [t for t, _ in spied.messages] == [own]


async def test_a_forged_ack_never_reaches_the_edge_whose_rows_stay(
    secured: Secured, tmp_path: Path
) -> None:
    victim = EdgeSettings(
        site=SITE,
        edge=EDGE_B,
        mqtt=secured.mqtt(EDGE_B),
        outbox={"path": tmp_path / "outbox.sqlite"},
        publisher={"ack_timeout_s": 600},
    )
    outbox = await Outbox.open(victim.outbox.path, EDGE_B, 100)
    publisher = Publisher(victim, outbox)
    ids = [t.id for t in await outbox.add([draft(f"S{i}") for i in range(20)])]
    ack_topic = edge_topic(SITE, EDGE_B, EdgeChannel.ACK)
    try:
        async with running(publisher.run()):
            await wait_until(lambda: publisher.stats.txns_sent == 20, "20 txns sent")
            assert await forge(secured, EDGE, ack_topic, ack_for(EDGE_B, ids))
            async with secured.client(AGGREGATOR_USER) as aggregator:
                await aggregator.publish(ack_topic, ack_for(EDGE_B, ids[:1]), qos=1)
            await wait_until(lambda: publisher.stats.acks >= 1, "the genuine ack")
            rows = outbox.count()
            acks = publisher.stats.acks
            publisher.request_stop()
    finally:
        await outbox.close()
    assert (acks, rows) == (1, 19)


async def test_an_edge_cannot_read_another_edges_acks(secured: Secured) -> None:
    own, other = (edge_topic(SITE, e, EdgeChannel.ACK) for e in (EDGE, EDGE_B))
    wildcard = edge_filter(EdgeChannel.ACK, SITE)
    async with (
        recording(secured.client(EDGE), other, wildcard) as snooped,
        recording(secured.client(EDGE_B), other) as delivered,
        secured.client(AGGREGATOR_USER) as aggregator,
    ):
        await aggregator.publish(other, ack_for(EDGE_B, [uuid7()]), qos=1)
        await delivered.next(other, "the ack at its own edge")
        await aggregator.publish(own, ack_for(EDGE, [uuid7()]), qos=1)
        # not subscribed to its own acks: only the wildcard can bring them
        await snooped.next(own, "edge1's own ack through the wildcard")
    assert [t for t, _ in snooped.messages] == [own]


async def test_a_borrowed_client_id_neither_kicks_the_owner_off_nor_takes_its_acks(
    secured: Secured,
) -> None:
    ack_topic = edge_topic(SITE, EDGE_B, EdgeChannel.ACK)
    first, queued = ack_for(EDGE_B, [uuid7()]), ack_for(EDGE_B, [uuid7()])
    async with secured.client(AGGREGATOR_USER) as aggregator:
        victim = secured.client(EDGE_B, identifier=EDGE_B, clean_session=False)
        async with recording(victim, ack_topic) as inbox:
            await _borrow_client_id(secured)
            await aggregator.publish(ack_topic, first, qos=1)
            await inbox.next(ack_topic, "an ack on the victim's first connection")
        # The victim is away; its session (subscription, queued acks) waits at the broker.
        await _borrow_client_id(secured)
        await aggregator.publish(ack_topic, queued, qos=1)
        await _borrow_client_id(secured)
        back = secured.client(EDGE_B, identifier=EDGE_B, clean_session=False)
        async with recording(back) as inbox:  # no new subscription: the session kept it
            _, payload = await inbox.next(ack_topic, "the ack queued while the victim was away")
    assert payload.decode() == queued


async def forge(secured: Secured, username: str, topic: str, payload: str) -> bool:
    """Publish at QoS 1 on a connection of its own; True if it got connected.

    A broker that refuses a publish either acks it anyway or ends the connection
    (MQTT-3.3.5-2); mosquitto 2.0.11 does the latter to MQTT 3.1.1 clients."""
    client = secured.client(username)
    connected = False
    try:
        async with client:
            connected = True  # so the publish reaches the broker, which answers or hangs up
            await client.publish(topic, payload, qos=1)
    except aiomqtt.MqttError:
        pass
    finally:
        _retrieve_disconnect(client)
    return connected


async def _borrow_client_id(secured: Secured) -> None:
    """Connect as edge1 with edge2's client id and a clean session, and with edge2's name but
    not its password."""
    async with secured.client(EDGE, identifier=EDGE_B, clean_session=True):
        pass
    with pytest.raises(aiomqtt.MqttCodeError):
        async with secured.client(EDGE_B, password="guess", identifier=EDGE_B, clean_session=True):
            pass


def _probed(http: httpx.AsyncClient) -> Callable[[], Awaitable[bool]]:
    async def probed() -> bool:
        return (await http.get("/health")).json()["mqtt_anonymous"] is not None

    return probed
