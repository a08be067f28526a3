import pytest

from stockwire import topics
from stockwire.topics import EdgeChannel, SiteChannel, TopicError


def test_build_and_parse_round_trip() -> None:
    for channel in EdgeChannel:
        topic = topics.edge_topic("site-a", "dock-1", channel)
        assert topic == f"stockwire/v1/site-a/dock-1/{channel.value}"
        parsed = topics.parse_edge_topic(topic)
        assert (parsed.site, parsed.edge, parsed.channel) == ("site-a", "dock-1", channel)


def test_site_topics_and_filters() -> None:
    assert topics.site_topic("s", SiteChannel.LEDGER) == "stockwire/v1/s/ledger"
    assert topics.site_topic("s", SiteChannel.ALERTS) == "stockwire/v1/s/alerts"
    assert topics.edge_filter(EdgeChannel.TXN, "s") == "stockwire/v1/s/+/txn"
    assert topics.edge_filter(EdgeChannel.TXN) == "stockwire/v1/+/+/txn"
    assert (
        topics.edge_filter(EdgeChannel.TXN, "s", shared=True)
        == "$share/aggregator/stockwire/v1/s/+/txn"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "stockwire/v1/s/e",
        "stockwire/v2/s/e/txn",
        "stockwire/v1/s/e/nope",
        "stockwire/v1/s/e/txn/extra",
        "stockwire/v1/+/e/txn",
        "other/v1/s/e/txn",
    ],
)
def test_parse_refuses_foreign_topics(bad: str) -> None:
    with pytest.raises(TopicError):
        topics.parse_edge_topic(bad)


@pytest.mark.parametrize("bad", ["a/b", "+", "#", "", "with space"])
def test_builders_refuse_unsafe_levels(bad: str) -> None:
    with pytest.raises(TopicError):
        topics.edge_topic(bad, "e", EdgeChannel.TXN)
    with pytest.raises(TopicError):
        topics.edge_topic("s", bad, EdgeChannel.ACK)
