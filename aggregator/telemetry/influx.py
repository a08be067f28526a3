"""The one adapter to influxdb-client: our points as line protocol, one blocking write.

The client's SYNCHRONOUS write API, run by the sink in a worker thread (asyncio.to_thread):
its asyncio client would need aiohttp, a dependency for one POST, and its batching mode keeps
its own unbounded buffer and retry thread, which is the sink's job here (bounded, counted).
The client does no retries of its own; `timeout_s` bounds each write.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point as InfluxPoint
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision

from aggregator.settings import TelemetrySinkSettings
from aggregator.telemetry.points import Point
from aggregator.telemetry.sink import SinkWriteError

NS: Any = WritePrecision.NS  # a str; the client's signature says WritePrecision
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# Answers that will not change on a retry: the batch is dropped (and counted), not retried.
_RETRY_STATUSES = frozenset({408, 429})


def epoch_ns(at: datetime) -> int:
    """Exact nanoseconds since the epoch (a float would round microseconds)."""
    return (at - _EPOCH) // _US * 1000


def line(one: Point) -> str:
    record = InfluxPoint(one.measurement)
    for name, value in one.tags:
        record.tag(name, value)
    for name, number in one.fields:
        record.field(name, number)
    record.time(epoch_ns(one.at), NS)
    text: str = record.to_line_protocol()
    return text


def body(points: Sequence[Point]) -> str:
    """The lines of a write. The client leaves out non-finite values (line protocol has no
    NaN or infinity; the wire lets an edge send them): a point with nothing else is left out."""
    return "\n".join(text for text in map(line, points) if text)


class InfluxWriter:
    def __init__(self, settings: TelemetrySinkSettings) -> None:
        assert settings.url is not None, "the sink is off without a url"
        self.bucket = settings.bucket
        self.org = settings.org
        self._client = InfluxDBClient(
            url=settings.url,
            token=settings.token_text() or "",  # VictoriaMetrics and open servers take none
            org=settings.org,
            timeout=int(settings.timeout_s * 1000),
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)

    def write(self, points: Sequence[Point]) -> None:
        """Blocking: one POST of the points as line protocol; SinkWriteError if it failed."""
        text = body(points)
        if not text:
            return
        try:
            self._api.write(self.bucket, self.org, text, NS)
        except InfluxDBError as e:
            status = e.response.status if e.response is not None else None
            retry = status is None or status >= 500 or status in _RETRY_STATUSES
            raise SinkWriteError(f"HTTP {status}: {e.message}", retry=retry) from None
        except Exception as e:
            # Connection refused, timeouts, TLS: urllib3's and the stdlib's exceptions, which
            # the client lets through. All mean "try again later".
            raise SinkWriteError(f"{type(e).__name__}: {e}", retry=True) from None

    def close(self) -> None:
        self._client.close()
