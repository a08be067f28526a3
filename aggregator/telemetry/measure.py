"""The aggregator's own points, from what ingest and the ledger did (pure functions).

Names, tags and fields are the catalog's (stockwire.measurements); `point` refuses others.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from aggregator.ledger.apply import StockLevel
from aggregator.telemetry.points import Point, point
from stockwire.ack import AckStatus
from stockwire.events import Alert, Movement
from stockwire.status import DeviceState, EdgeState, EdgeStatus
from stockwire.txn import StockTransaction

API_EDGE = "api"  # the `edge` tag of movements a person committed through the API


@dataclass(frozen=True, slots=True)
class Received:
    """One TxnBatch of a commit group, as ingest saw it."""

    edge: str
    txns: int
    statuses: Sequence[AckStatus]
    lag_s: float  # received - sent_at


def stock_levels(site: str, levels: Iterable[StockLevel], at: datetime) -> list[Point]:
    return [
        point(
            "stock_level",
            {"site": site, "item": lv.item, "location": lv.location},
            {"qty": lv.qty},
            at,
        )
        for lv in levels
    ]


def movements(
    site: str,
    moved: Iterable[Movement],
    pending: Iterable[StockTransaction],
    at: datetime,
    *,
    edge: str | None = None,
) -> list[Point]:
    """Counts and units per (edge, kind, status); `edge` overrides the movements' own."""
    sums: defaultdict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for m in moved:
        one = sums[(edge or m.edge, m.kind.value, "posted")]
        one[0] += 1
        one[1] += m.qty
    for t in pending:
        one = sums[(edge or t.edge, t.kind.value, "pending")]
        one[0] += 1
        one[1] += t.qty
    return [
        point(
            "movements",
            {"site": site, "edge": e, "kind": kind, "status": status},
            {"count": count, "units": units},
            at,
        )
        for (e, kind, status), (count, units) in sorted(sums.items())
    ]


def posting_delays(site: str, moved: Iterable[Movement], at: datetime) -> list[Point]:
    """Per edge: event time -> commit time of each transaction that moved stock."""
    delays: defaultdict[str, dict[object, float]] = defaultdict(dict)
    for m in moved:
        delays[m.edge][m.txn_id] = (m.committed_at - m.occurred_at).total_seconds()
    points = []
    for edge, by_txn in sorted(delays.items()):
        ordered = sorted(by_txn.values())
        fields = {
            "count": len(ordered),
            "p50_s": percentile(ordered, 0.50),
            "p95_s": percentile(ordered, 0.95),
            "max_s": ordered[-1],
        }
        points.append(point("posting_delay", {"site": site, "edge": edge}, fields, at))
    return points


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of them at or below it."""
    assert ordered, "a percentile of nothing"
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def ingest(site: str, received: Iterable[Received], at: datetime) -> list[Point]:
    per_edge: dict[str, dict[str, float]] = {}
    for r in received:
        sums = per_edge.setdefault(r.edge, {"batches": 0, "txns": 0, "duplicates": 0})
        sums["batches"] += 1
        sums["txns"] += r.txns
        sums["duplicates"] += sum(1 for s in r.statuses if s is AckStatus.DUPLICATE)
        sums["lag_s"] = max(sums.get("lag_s", r.lag_s), r.lag_s)
    return [
        point("ingest", {"site": site, "edge": edge}, fields, at)
        for edge, fields in sorted(per_edge.items())
    ]


def edge_status(site: str, edge: str, status: EdgeStatus, at: datetime) -> Point:
    """At `at`, when it arrived: a last will's own time is when it was registered."""
    down = sum(1 for d in status.devices.values() if d.state is DeviceState.DOWN)
    fields: dict[str, float] = {
        "online": float(status.state is EdgeState.ONLINE),
        "outbox_full": float(status.outbox_full),
        "devices_down": down,
    }
    if status.outbox_rows is not None:
        fields["outbox_rows"] = status.outbox_rows
    return point("edge_status", {"site": site, "edge": edge}, fields, at)


def dead_letter(site: str, edge: str, topic: str, at: datetime) -> Point:
    channel = topic.rsplit("/", 1)[-1]
    return point("dead_letters", {"site": site, "edge": edge, "channel": channel}, {"count": 1}, at)


def alert(site: str, sent: Alert) -> Point:
    tags = {"site": site, "kind": sent.kind.value, "severity": sent.severity.value}
    return point("alerts", tags, {"count": 1}, sent.at)
