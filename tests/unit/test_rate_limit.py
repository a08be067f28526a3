from aggregator.rate_limit import OTHER_EDGES, AlertThrottle, EdgeRateLimit
from aggregator.settings import RateLimitSettings


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_refills_it_and_refusals_count_by_edge() -> None:
    clock = Clock()
    limits = EdgeRateLimit(RateLimitSettings(messages_per_s=10, burst_messages=5), clock)
    assert [limits.allow("e1") for _ in range(7)] == [True] * 5 + [False] * 2
    assert limits.allow("e2")  # another edge has its own bucket
    clock.now = 0.3  # 3 tokens back
    assert [limits.allow("e1") for _ in range(4)] == [True] * 3 + [False]
    assert limits.refused == {"e1": 3}


def test_names_beyond_edges_max_share_one_bucket_until_full_ones_are_forgotten() -> None:
    clock = Clock()
    limits = EdgeRateLimit(
        RateLimitSettings(messages_per_s=1, burst_messages=1, edges_max=2), clock
    )
    assert limits.allow("a")
    assert limits.allow("b")
    assert limits.allow("c")  # the shared bucket's first token
    assert not limits.allow("d")  # same shared bucket
    assert limits.refused == {OTHER_EDGES: 1}
    clock.now = 10.0  # a and b have refilled: as good as gone
    assert limits.key("e") == "e"


def test_the_throttle_lets_one_alert_through_per_interval_and_counts_the_rest() -> None:
    clock = Clock()
    throttle = AlertThrottle(60.0, keys_max=100, clock=clock)
    assert throttle.due("dead_letter", "e1") == 0
    assert throttle.due("dead_letter", "e1") is None
    assert throttle.due("dead_letter", "e1") is None
    assert throttle.due("dead_letter", "e2") == 0  # per edge
    assert throttle.due("refused", "e1") == 0  # per kind
    clock.now = 61.0
    assert throttle.due("dead_letter", "e1") == 2  # two held back since the last
