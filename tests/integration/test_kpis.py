"""GET /kpis on SQLite and PostgreSQL: counts and adjustments by event time, posting delay and
late movements by commit time (aggregator/ledger/kpis.py)."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.api.app import create_app
from aggregator.api.deps import ApiState
from aggregator.ledger import Ledger
from aggregator.roles import Role
from aggregator.schema import count_settlements, movements
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import api_client, api_key, batch, serving, txn
from tests.integration.test_api_access import assert_problem

# fixtures shared by the aggregator's tests
db_url = support.db_url
engine = support.engine
writer = support.writer
ledger = support.ledger

K = TxnKind
T = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)


def at(hours: float) -> dict[str, datetime]:
    when = T + timedelta(hours=hours)
    return {"occurred_at": when, "recorded_at": when}


def window(start: datetime, end: datetime, **more: Any) -> dict[str, Any]:
    return {"since": start.isoformat(), "until": end.isoformat(), **more}


async def delays(engine: AsyncEngine) -> list[float]:
    """committed_at - occurred_at of every movement but compensations, in seconds, sorted."""
    async with engine.connect() as conn:
        settled = sa.select(count_settlements.c.movement_id)
        query = sa.select(movements.c.occurred_at, movements.c.committed_at).where(
            movements.c.id.not_in(settled)
        )
        rows = await conn.execute(query)
        return sorted(
            (c.replace(tzinfo=UTC) - o.replace(tzinfo=UTC)).total_seconds() for o, c in rows
        )


async def post_history(ledger: Ledger) -> None:
    """A back-dated count a day before (+5 found); at T a count that agrees (10 of 10), then a
    pick back-dated before it (a late movement: a compensation of 3 settles the count); at T+1h
    a count 5 short; and one receipt that happens now (not late)."""
    await ledger.post(batch(txn(K.COUNT, 5, to_location="B-1", **at(-24))))
    await ledger.post(batch(txn(K.RECEIPT, 10, to_location="A-1", **at(-2))))
    await ledger.post(batch(txn(K.COUNT, 10, to_location="A-1", **at(0))))
    await ledger.post(batch(txn(K.PICK, 3, from_location="A-1", **at(-1))))
    await ledger.post(batch(txn(K.COUNT, 5, to_location="A-1", **at(1))))
    await ledger.post(batch(txn(K.RECEIPT, 1, to_location="C-1")))


async def test_kpis_use_event_time_for_counts_and_commit_time_for_delay(
    db_url: str, engine: AsyncEngine, ledger: Ledger
) -> None:
    posted_from = datetime.now(UTC) - timedelta(seconds=1)
    await post_history(ledger)
    posted_until = datetime.now(UTC) + timedelta(seconds=1)
    app = create_app(ApiState(engine, ledger))
    async with serving(app) as url, api_client(url, api_key(db_url, Role.VIEWER)) as http:
        around_t = await http.get(
            "/kpis", params=window(T - timedelta(hours=3), T + timedelta(hours=3))
        )
        day_before = await http.get(
            "/kpis", params=window(T - timedelta(hours=25), T - timedelta(hours=23))
        )
        posted = await http.get("/kpis", params=window(posted_from, posted_until))
        strict = await http.get(
            "/kpis", params=window(posted_from, posted_until, late_after_minutes=60 * 29)
        )
    for r in (around_t, day_before, posted, strict):
        assert r.status_code == 200, r.text
    near = around_t.json()
    # the two counts taken around T; the one a day before (posted with them) is not here
    assert near["accuracy"] == {
        "counts": 2,
        "exact": 1,
        "share": 0.5,
        "units_book": 20,
        "units_off": 5,
        "units_share": 0.75,
    }
    adjusted = {a["kind"]: a for a in near["adjustments"]}
    assert adjusted["count"] == {"kind": "count", "movements": 1, "units_found": 0, "units_lost": 5}
    assert adjusted["settlement"] == {
        "kind": "settlement",
        "movements": 1,
        "units_found": 3,
        "units_lost": 0,
    }
    assert len(adjusted) == 2
    assert near["settled"] == {"counts": 1, "movements": 1, "units": 3}
    # nothing was posted around T (all of it was posted just now)
    assert near["delay"]["movements"] == 0
    assert near["delay"]["p50_s"] is None
    assert near["delay"]["late"] == 0

    before = day_before.json()
    assert (before["accuracy"]["counts"], before["accuracy"]["exact"]) == (1, 0)
    assert before["accuracy"]["units_share"] is None  # a book of 0
    assert before["adjustments"] == [
        {"kind": "count", "movements": 1, "units_found": 5, "units_lost": 0}
    ]
    assert before["settled"]["counts"] == 0
    assert before["delay"]["movements"] == 0

    # by commit time: every movement but the compensation, each with its own delay
    seconds = await delays(engine)
    n = len(seconds)
    delay = posted.json()["delay"]
    assert delay["movements"] == n == 5  # not the compensation
    assert abs(delay["p50_s"] - seconds[(n * 50 + 99) // 100 - 1]) < 0.01
    assert abs(delay["p95_s"] - seconds[(n * 95 + 99) // 100 - 1]) < 0.01
    assert abs(delay["max_s"] - seconds[-1]) < 0.01
    assert delay["max_s"] > 30 * 3600 - 60  # the count a day before T
    assert delay["late"] == n - 1  # all but the receipt that happened now
    assert strict.json()["delay"]["late"] == 1  # only the count a day before T
    # counted by event time: nothing happened in the minute they were posted but one receipt
    assert posted.json()["accuracy"]["counts"] == 0


async def test_kpis_window_is_checked(db_url: str, engine: AsyncEngine, ledger: Ledger) -> None:
    app = create_app(ApiState(engine, ledger))
    now = datetime.now(UTC)
    async with serving(app) as url, api_client(url, api_key(db_url, Role.VIEWER)) as http:
        backwards = await http.get("/kpis", params=window(now, now - timedelta(hours=1)))
        missing = await http.get("/kpis", params={"since": now.isoformat()})
        naive = await http.get(
            "/kpis",
            params={**window(now - timedelta(hours=1), now), "since": "2026-01-01T00:00:00"},
        )
        unknown = await http.get("/kpis", params=window(now - timedelta(hours=1), now, site="x"))
        async with api_client(url) as nobody:
            anonymous: httpx.Response = await nobody.get(
                "/kpis", params=window(now - timedelta(hours=1), now)
            )
    assert "query.until" in str(assert_problem(backwards, 422)["detail"])
    assert "query.until" in str(assert_problem(missing, 422)["detail"])
    assert "query.since" in str(assert_problem(naive, 422)["detail"])
    assert "query.site" in str(assert_problem(unknown, 422)["detail"])
    assert_problem(anonymous, 401)
