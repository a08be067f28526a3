"""The sink's buffer, batches, thinning and retries, with a writer that stands in for the server.

The writer here is ours (the sink's PointWriter protocol), not a mock of influxdb-client: the
real client against a real server is tested in tests/integration/test_telemetry.py.
"""

import asyncio
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.settings import TelemetrySinkSettings
from aggregator.telemetry.points import Point, point
from aggregator.telemetry.sink import SinkWriteError, TelemetrySink, retry_delay_s

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def edge_point(n: int) -> Point:
    tags = {"site": "s", "edge": "e1", "device": "d1"}
    return point("scans", tags, {"scans": n}, T0 + timedelta(seconds=n))


def agg_point(n: int) -> Point:
    return point("alerts", {"site": "s", "kind": "k", "severity": "info"}, {"count": n}, T0)


def numbers(points: Sequence[Point]) -> list[tuple[str, float]]:
    return [(p.measurement, p.fields[0][1]) for p in points]


class Server:
    """Takes writes, or fails them as told."""

    def __init__(self) -> None:
        self.batches: list[list[Point]] = []
        self.failures: list[SinkWriteError] = []  # the next writes fail with these, in order
        self.closed = False

    def write(self, points: Sequence[Point]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.batches.append(list(points))

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def sink(server: Server, clock: Clock | None = None, **limits: float) -> TelemetrySink:
    settings = TelemetrySinkSettings.model_validate(
        {"url": "http://127.0.0.1:1", "batch_points_max": 2, "buffer_points_max": 5, **limits}
    )
    return TelemetrySink(settings, server, clock=clock or Clock(), jitter=lambda: 0.5)


def test_a_full_buffer_drops_the_oldest_edge_points_first_then_the_oldest_aggregator_ones() -> None:
    telemetry = sink(Server())
    telemetry.offer([edge_point(1), agg_point(1), edge_point(2), agg_point(2), edge_point(3)])
    assert telemetry.buffered == 5
    telemetry.offer([agg_point(3)])  # one too many: the oldest edge point goes
    assert (telemetry.stats.thinned_edge, telemetry.stats.thinned_aggregator) == (1, 0)
    telemetry.offer([agg_point(4), agg_point(5), agg_point(6)])  # 3 over: 2 edge, then 1 agg
    assert (telemetry.stats.thinned_edge, telemetry.stats.thinned_aggregator) == (3, 1)
    assert telemetry.buffered == 5
    assert telemetry.stats.offered == 9


async def test_flush_writes_batches_of_batch_points_max_aggregator_points_first() -> None:
    server = Server()
    telemetry = sink(server)
    telemetry.offer([edge_point(1), agg_point(1), edge_point(2)])
    assert await telemetry.flush()
    assert [numbers(b) for b in server.batches] == [
        [("alerts", 1.0), ("scans", 1.0)],
        [("scans", 2.0)],
    ]
    assert (telemetry.buffered, telemetry.stats.written, telemetry.stats.writes) == (0, 3, 2)


async def test_a_failed_write_keeps_its_points_for_the_next_try() -> None:
    server = Server()
    server.failures = [SinkWriteError("down", retry=True)]
    telemetry = sink(server)
    telemetry.offer([agg_point(1), edge_point(1), edge_point(2)])
    assert not await telemetry.flush()
    assert (telemetry.buffered, telemetry.stats.write_failures) == (3, 1)
    assert await telemetry.flush()
    assert [numbers(b) for b in server.batches] == [
        [("alerts", 1.0), ("scans", 1.0)],
        [("scans", 2.0)],
    ]


async def test_a_batch_the_server_refuses_is_dropped_and_counted_and_the_rest_written() -> None:
    server = Server()
    server.failures = [SinkWriteError("HTTP 400: bad line", retry=False)]
    telemetry = sink(server)
    telemetry.offer([agg_point(1), agg_point(2), agg_point(3)])
    assert await telemetry.flush()
    assert telemetry.stats.rejected == 2
    assert [numbers(b) for b in server.batches] == [[("alerts", 3.0)]]


async def test_points_offered_while_a_batch_is_written_count_it_against_the_buffer() -> None:
    entered, release = threading.Event(), threading.Event()

    class Slow(Server):
        def write(self, points: Sequence[Point]) -> None:
            entered.set()
            release.wait(10)
            super().write(points)

    server = Slow()
    telemetry = sink(server)
    telemetry.offer([agg_point(1), agg_point(2)])
    flushing = asyncio.create_task(telemetry.flush())
    assert await asyncio.to_thread(entered.wait, 10)
    telemetry.offer([edge_point(n) for n in range(1, 5)])  # 2 writing + 4 > 5
    assert (telemetry.buffered, telemetry.stats.thinned_edge) == (3, 1)
    release.set()
    assert await flushing
    assert telemetry.stats.written == 5


async def test_a_bug_in_the_writer_drops_its_batch_not_the_sink() -> None:
    class Broken(Server):
        def write(self, points: Sequence[Point]) -> None:
            raise ValueError("a bug")

    telemetry = sink(Broken())
    telemetry.offer([agg_point(1), agg_point(2), agg_point(3)])
    assert await telemetry.flush()
    assert (telemetry.buffered, telemetry.stats.rejected) == (0, 3)


def test_retry_delays_grow_from_retry_min_to_retry_max_with_jitter() -> None:
    assert [retry_delay_s(n, 1.0, 10.0, 1.0) for n in (1, 2, 3, 4, 5, 60)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        10.0,
        10.0,
    ]
    assert retry_delay_s(1, 1.0, 10.0, 0.0) == 0.5  # jitter spreads retries over [half, full]


def test_thinning_is_logged_at_most_once_per_interval_and_counts_what_it_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="aggregator.telemetry")
    clock = Clock()
    telemetry = sink(Server(), clock)
    telemetry.offer([edge_point(n) for n in range(7)])
    telemetry.offer([edge_point(n) for n in range(3)])
    clock.now = 61.0
    telemetry.offer([edge_point(1)])
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2, warnings
    assert "2 dropped since the last warning" in warnings[0]
    assert "4 dropped since the last warning" in warnings[1]  # 3 held back + this one


async def test_close_writes_what_is_left_and_closes_the_client() -> None:
    server = Server()
    telemetry = sink(server)
    telemetry.offer([agg_point(1)])
    await telemetry.close()
    assert [numbers(b) for b in server.batches] == [[("alerts", 1.0)]]
    assert server.closed


def test_settings_refuse_a_buffer_smaller_than_a_batch() -> None:
    with pytest.raises(ValueError, match="buffer_points_max"):
        TelemetrySinkSettings(url="http://x", batch_points_max=10, buffer_points_max=5)


def test_settings_refuse_a_url_that_is_not_http() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        TelemetrySinkSettings(url="influxdb:8086")
