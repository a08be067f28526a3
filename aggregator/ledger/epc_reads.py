"""Read side of the EPC ledger: where a tag is now and how it got there."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from aggregator.ledger.apply import aware
from aggregator.ledger.unit_moves import history_query
from aggregator.schema import epc_moves, epcs, items, locations


@dataclass(frozen=True, slots=True)
class EpcMoveRow:
    movement_id: int
    txn_id: UUID
    load_id: UUID | None
    kind: str
    from_location: str
    to_location: str
    occurred_at: datetime
    committed_at: datetime
    reverses: int | None


@dataclass(frozen=True, slots=True)
class EpcRow:
    epc: str
    sku: str | None
    gtin: str | None
    location: str
    state: str
    txn_id: UUID
    review_txn_id: UUID | None
    updated_at: datetime
    history: list[EpcMoveRow]  # newest first


def _now_query(epc: str) -> sa.Select[Any]:
    return (
        sa.select(epcs, items.c.sku, items.c.gtin, locations.c.code)
        .join(items, items.c.id == epcs.c.item_id)
        .join(locations, locations.c.id == epcs.c.location_id)
        .where(epcs.c.epc == epc)
    )


async def epc(engine: AsyncEngine, epc: str, limit: int) -> EpcRow | None:
    """Where `epc` (upper-case hex) is, with its last `limit` moves; None if it never moved."""
    async with engine.connect() as conn:
        r = (await conn.execute(_now_query(epc))).one_or_none()
        if r is None:
            return None
        return EpcRow(
            epc=r.epc,
            sku=r.sku,
            gtin=r.gtin,
            location=r.code,
            state=r.state,
            txn_id=r.txn_id,
            review_txn_id=r.review_txn_id,
            updated_at=aware(r.updated_at),
            history=await _history(conn, epc, limit),
        )


async def _history(conn: AsyncConnection, epc: str, limit: int) -> list[EpcMoveRow]:
    return [
        EpcMoveRow(
            movement_id=m.movement_id,
            txn_id=m.txn_id,
            load_id=m.load_id,
            kind=m.kind,
            from_location=m.src,
            to_location=m.dst,
            occurred_at=aware(m.occurred_at),
            committed_at=aware(m.committed_at),
            reverses=m.reverses,
        )
        for m in await conn.execute(history_query(epc_moves, epc_moves.c.epc == epc, limit))
    ]
