"""GET /stock?as_of=...&known_at=...: balances at a past event time and as known at a past commit
time, summed from the movements, on SQLite and PostgreSQL, over real HTTP."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.api.app import create_app
from aggregator.api.deps import ApiState
from aggregator.database import create_engine
from aggregator.ledger import Ledger
from aggregator.migrate import upgrade
from aggregator.roles import Role
from aggregator.writer import Writer
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    SITE,
    api_client,
    api_key,
    audit_entry,
    batch,
    serving,
    txn,
)

# fixtures shared by the aggregator's tests
db_url = support.db_url
engine = support.engine
writer = support.writer

K = TxnKind
GTIN = "04006381333931"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
Line = tuple[str | None, str, str | None, int]  # (sku, location, lot, qty)
TIME_PARAMETERS = (
    ("/stock", "as_of"),
    ("/stock", "known_at"),
    ("/movements", "occurred_since"),
    ("/movements", "occurred_before"),
)


@dataclass
class Clock:
    """The ledger's commit time, set by the test before each write."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(writer: Writer, clock: Clock) -> Ledger:
    return Ledger(writer, site=SITE, clock=clock)


@pytest.fixture
async def http(
    engine: AsyncEngine, ledger: Ledger, db_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    key = api_key(db_url, Role.VIEWER)
    async with serving(create_app(ApiState(engine, ledger))) as url, api_client(url, key) as client:
        yield client


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


async def lines(http: httpx.AsyncClient, **params: str | datetime) -> set[Line]:
    query = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()}
    response = await http.get("/stock", params=query)
    assert response.status_code == 200, response.text
    return {(r["sku"], r["location"], r["lot"], r["qty"]) for r in response.json()}


async def test_a_late_receipt_counts_at_its_event_time_and_from_its_commit(
    ledger: Ledger, clock: Clock, http: httpx.AsyncClient
) -> None:
    clock.now = at(1)
    await ledger.post(batch(txn(K.RECEIPT, 10, to_location="A", lot="L1", occurred_at=at(0))))
    clock.now = at(61)
    await ledger.post(batch(txn(K.PICK, 3, from_location="A", lot="L1", occurred_at=at(60))))
    # An edge back from a 90-minute outage replays a receipt that happened at minute 30.
    clock.now = at(120)
    late = txn(K.RECEIPT, 5, to_location="A", lot="L1", occurred_at=at(30))
    await ledger.post(batch(late))

    assert await lines(http, as_of=at(10)) == {("SKU-1", "A", "L1", 10)}
    assert await lines(http, as_of=at(45)) == {("SKU-1", "A", "L1", 15)}
    assert await lines(http, as_of=at(90)) == {("SKU-1", "A", "L1", 12)}
    # What the ledger knew at minute 90: the late receipt was not committed yet.
    assert await lines(http, known_at=at(90)) == {("SKU-1", "A", "L1", 7)}
    assert await lines(http, as_of=at(45), known_at=at(90)) == {("SKU-1", "A", "L1", 10)}
    assert await lines(http, as_of=at(45), known_at=at(120)) == {("SKU-1", "A", "L1", 15)}
    # Before anything happened the item is known, with no stock: an empty list, not a 404.
    assert await lines(http, as_of=at(-1), sku="SKU-1") == set()
    # Without either, today's balances table; with both at the end, the same figures.
    assert await lines(http) == await lines(http, as_of=at(200), known_at=at(200))
    assert await lines(http) == {("SKU-1", "A", "L1", 12)}


async def test_as_of_takes_the_filters_and_virtual_locations(
    ledger: Ledger, clock: Clock, http: httpx.AsyncClient
) -> None:
    clock.now = at(5)
    await ledger.post(
        batch(
            txn(K.RECEIPT, 4, to_location="A", lot="L1", occurred_at=at(0)),
            txn(K.RECEIPT, 6, to_location="B", lot="L2", occurred_at=at(1)),
            txn(K.RECEIPT, 2, sku="SKU-2", to_location="A", occurred_at=at(2)),
            txn(K.TRANSFER, 1, from_location="A", to_location="B", lot="L1", occurred_at=at(3)),
            txn(K.RECEIPT, 5, sku=None, gtin=GTIN, to_location="C", occurred_at=at(3)),
        )
    )
    end = at(4)
    assert await lines(http, as_of=end, gtin=GTIN) == {(None, "C", None, 5)}
    assert await lines(http, as_of=at(2), gtin=GTIN) == set()
    assert await lines(http, as_of=end, sku="SKU-1") == {
        ("SKU-1", "A", "L1", 3),
        ("SKU-1", "B", "L1", 1),
        ("SKU-1", "B", "L2", 6),
    }
    assert await lines(http, as_of=end, location="A") == {
        ("SKU-1", "A", "L1", 3),
        ("SKU-2", "A", None, 2),
    }
    assert await lines(http, as_of=end, lot="L1", location="B") == {("SKU-1", "B", "L1", 1)}
    assert await lines(http, as_of=at(2), sku="SKU-1", include_virtual="true") == {
        ("SKU-1", "A", "L1", 4),
        ("SKU-1", "B", "L2", 6),
        ("SKU-1", "@supplier", "L1", -4),
        ("SKU-1", "@supplier", "L2", -6),
    }
    unknown = await http.get("/stock", params={"as_of": end.isoformat(), "location": "Z"})
    assert unknown.status_code == 404
    assert "location 'Z'" in unknown.json()["detail"]


async def test_a_reversal_undoes_at_the_event_time_and_from_its_commit(
    ledger: Ledger, clock: Clock, http: httpx.AsyncClient
) -> None:
    clock.now = at(1)
    posted = await ledger.post(batch(txn(K.RECEIPT, 8, to_location="A", occurred_at=at(0))))
    clock.now = at(30)
    await ledger.reverse_movement(posted.movements[0].id, audit=audit_entry())

    # By event time the mistaken receipt never happened; as known at minute 10 it had.
    assert await lines(http, as_of=at(10)) == set()
    assert await lines(http, known_at=at(10)) == {("SKU-1", "A", None, 8)}
    assert await lines(http, known_at=at(30)) == set()


async def test_an_approved_txn_counts_from_its_approval(
    ledger: Ledger, clock: Clock, http: httpx.AsyncClient
) -> None:
    clock.now = at(1)
    doubtful = txn(K.RECEIPT, 3, to_location="A", occurred_at=at(0), confidence=0.1)
    await ledger.post(batch(doubtful))
    assert await lines(http, as_of=at(5)) == set()  # pending: no movement yet
    clock.now = at(20)
    await ledger.approve(doubtful.id, audit=audit_entry())

    assert await lines(http, as_of=at(5)) == {("SKU-1", "A", None, 3)}
    assert await lines(http, known_at=at(10)) == set()
    assert await lines(http, known_at=at(20)) == {("SKU-1", "A", None, 3)}


async def test_movements_in_an_event_time_window_come_in_commit_order(
    ledger: Ledger, clock: Clock, http: httpx.AsyncClient
) -> None:
    clock.now = at(1)
    await ledger.post(batch(txn(K.RECEIPT, 1, to_location="A", occurred_at=at(0))))
    clock.now = at(21)
    await ledger.post(batch(txn(K.RECEIPT, 2, to_location="A", occurred_at=at(20))))
    clock.now = at(40)  # late: happened before the one above
    await ledger.post(batch(txn(K.RECEIPT, 3, to_location="A", occurred_at=at(10))))

    async def qtys(**params: datetime | int) -> list[int]:
        query = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in params.items()}
        response = await http.get("/movements", params=query)
        assert response.status_code == 200, response.text
        return [m["qty"] for m in response.json()["items"]]

    assert await qtys(occurred_since=at(10)) == [2, 3]
    assert await qtys(occurred_before=at(10)) == [1]
    # Any offset names the same instant; the window is half-open (since <= t < before).
    west = timezone(timedelta(hours=-5))
    assert await qtys(occurred_since=at(10).astimezone(west), occurred_before=at(20)) == [3]
    assert await qtys(occurred_since=at(0), limit=1, after=1) == [2]
    assert await qtys(occurred_since=at(30)) == []


@pytest.mark.parametrize(
    ("value", "wrong"),
    [
        ("2026-11-29T10:00:00", "RFC 3339"),  # no offset
        ("2026-11-29 10:00:00Z", "RFC 3339"),
        ("1796032800", "RFC 3339"),  # an epoch number
        ("2026-13-29T10:00:00Z", "month"),
        ("0001-01-01T00:00:00+05:00", "out of range once in UTC"),
    ],
)
async def test_a_time_that_is_not_rfc_3339_is_a_problem_naming_it(
    tmp_path: Path, value: str, wrong: str
) -> None:
    """SQLite only: the HTTP layer refuses it before any query."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}"
    await upgrade(url)
    eng, writer = create_engine(url), Writer(url)
    try:
        state = ApiState(eng, Ledger(writer, site=SITE))
        key = api_key(url, Role.VIEWER)
        async with serving(create_app(state)) as base, api_client(base, key) as http:
            for path, name in TIME_PARAMETERS:
                response = await http.get(path, params={name: value})
                assert response.status_code == 422, response.text
                assert response.headers["content-type"] == "application/problem+json"
                detail = response.json()["detail"]
                assert f"query.{name}" in detail
                assert wrong in detail
    finally:
        writer.close()
        await eng.dispose()
