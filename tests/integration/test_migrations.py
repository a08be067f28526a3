"""The shipped Alembic head must build exactly the schema the code declares."""

from datetime import UTC, datetime
from uuid import uuid4

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from aggregator.database import create_sync_engine
from aggregator.ledger.body import body_of
from aggregator.migrate import alembic_config, upgrade
from aggregator.schema import (
    VIRTUAL_LOCATIONS,
    epc_moves,
    epcs,
    item_gtins,
    items,
    locations,
    metadata,
    movements,
    transactions,
)
from stockwire.txn import StockTransaction, TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import txn

# fixtures shared by the aggregator's tests
db_url = support.db_url

K = TxnKind


def _sync_engine(url: str) -> sa.Engine:
    return create_sync_engine(url, poolclass=sa.NullPool)


async def test_head_schema_matches_the_metadata(db_url: str) -> None:
    await upgrade(db_url)
    await upgrade(db_url)  # a second start finds nothing to do
    engine = _sync_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
            virtual = conn.execute(
                sa.select(locations.c.code).where(locations.c.virtual == sa.true())
            ).scalars()
            assert sorted(virtual) == sorted(VIRTUAL_LOCATIONS)
    finally:
        engine.dispose()
    assert diff == []


async def test_downgrade_to_base_and_up_again(db_url: str) -> None:
    await upgrade(db_url)
    engine = _sync_engine(db_url)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn), "base")
        with engine.connect() as conn:
            assert "movements" not in sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
    await upgrade(db_url)
    engine = _sync_engine(db_url)
    try:
        with engine.connect() as conn:
            assert "movements" in sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()


def _row_of(t: StockTransaction, status: str, at: datetime) -> dict[str, object]:
    """A transactions row as 0003 wrote it (no load_id column yet)."""
    return {
        "id": t.id,
        "edge": t.edge,
        "seq": t.seq,
        "kind": t.kind.value,
        "status": status,
        "body_hash": body_of(t).digest,
        "body": t.model_dump(mode="json"),
        "occurred_at": t.occurred_at,
        "recorded_at": t.recorded_at,
        "received_at": at,
        "committed_at": at if status == "posted" else None,
    }


async def test_upgrade_from_0003_fills_load_ids_and_epcs_from_the_data(db_url: str) -> None:
    await upgrade(db_url, "0003")
    a, b = "3034" + "0" * 19 + "A", "3034" + "0" * 19 + "B"
    load = uuid4()
    received = txn(K.RECEIPT, 2, epcs=(a, b.lower()), to_location="DOCK-1", load_id=load)
    shipped = txn(K.SHIPMENT, 1, epcs=(a,), from_location="DOCK-1")
    held = txn(K.RECEIPT, 1, epcs=(b,), to_location="DOCK-2", confidence=0.1)
    plain = txn(K.RECEIPT, 5, to_location="A-1")
    at = datetime.now(UTC)
    engine = _sync_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(items), [{"id": 1, "sku": "SKU-1", "flagged": True, "created_at": at}]
            )
            conn.execute(
                sa.insert(locations),
                [{"code": c, "virtual": False, "created_at": at} for c in ("DOCK-1", "A-1")],
            )
            place = dict(conn.execute(sa.select(locations.c.code, locations.c.id)).all())
            conn.execute(
                sa.insert(transactions),
                [_row_of(t, "posted", at) for t in (received, shipped, plain)]
                + [_row_of(held, "pending", at)],
            )
            moved = [
                (1, received, "@supplier", "DOCK-1", 2),
                (2, shipped, "DOCK-1", "@customer", 1),
                (3, plain, "@supplier", "A-1", 5),
            ]
            conn.execute(
                sa.insert(movements),
                [
                    {
                        "id": n,
                        "txn_id": t.id,
                        "item_id": 1,
                        "lot": "",
                        "from_location_id": place[src],
                        "to_location_id": place[dst],
                        "qty": qty,
                        "occurred_at": t.occurred_at,
                        "committed_at": at,
                    }
                    for n, t, src, dst, qty in moved
                ],
            )
        await upgrade(db_url)
        with engine.connect() as conn:
            loads = dict(conn.execute(sa.select(transactions.c.id, transactions.c.load_id)).all())
            moves = conn.execute(
                sa.select(epc_moves.c.epc, epc_moves.c.movement_id).order_by(
                    epc_moves.c.movement_id, epc_moves.c.epc
                )
            ).all()
            now = conn.execute(
                sa.select(epcs.c.epc, locations.c.code, epcs.c.state, epcs.c.review_txn_id)
                .join(locations, locations.c.id == epcs.c.location_id)
                .order_by(epcs.c.epc)
            ).all()
    finally:
        engine.dispose()
    assert loads == {received.id: load, shipped.id: None, held.id: None, plain.id: None}
    assert [tuple(m) for m in moves] == [(a, 1), (b, 1), (a, 2)]
    assert [tuple(r) for r in now] == [
        (a, "@customer", "departed", None),
        (b, "DOCK-1", "in_review", held.id),
    ]


async def test_upgrade_to_master_data_keeps_gtins_as_packs_and_locations_as_roots(
    db_url: str,
) -> None:
    await upgrade(db_url, "0005")
    at = datetime.now(UTC)
    engine = _sync_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO items (sku, gtin, flagged, created_at)"
                    " VALUES ('SKU-1', NULL, true, :at), (NULL, '04006381333931', true, :at)"
                ),
                {"at": at},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO locations (code, virtual, created_at) VALUES ('A-1', false, :at)"
                ),
                {"at": at},
            )
        await upgrade(db_url)
        with engine.connect() as conn:
            packs = conn.execute(
                sa.select(item_gtins.c.gtin, items.c.gtin, item_gtins.c.uom, item_gtins.c.qty).join(
                    items, items.c.id == item_gtins.c.item_id
                )
            ).all()
            places = conn.execute(
                sa.select(locations.c.id, locations.c.code, locations.c.path, locations.c.kind)
            ).all()
            units = conn.execute(sa.select(items.c.base_uom, items.c.tracking)).all()
    finally:
        engine.dispose()
    assert [tuple(p) for p in packs] == [("04006381333931", "04006381333931", "EA", 1)]
    assert {(p.code, p.path, p.kind) for p in places} == {
        (p.code, f"/{p.id}/", "virtual" if p.code.startswith("@") else None) for p in places
    }
    assert {tuple(u) for u in units} == {("EA", "none")}
