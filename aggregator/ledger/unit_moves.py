"""The moves of one tracked unit, newest first: an EPC (epc_moves) or a serial (serial_moves);
both tables keep the movement, its transaction, its two locations and its two times."""

from typing import Any

import sqlalchemy as sa

from aggregator.schema import locations, movements, transactions


def history_query(moves: sa.Table, unit: sa.ColumnElement[bool], limit: int) -> sa.Select[Any]:
    """The last `limit` rows of `moves` matching `unit`, with the transaction's kind and load,
    the location codes (src, dst) and what the movement reverses."""
    src = locations.alias("src")
    dst = locations.alias("dst")
    return (
        sa.select(
            moves.c.movement_id,
            moves.c.txn_id,
            transactions.c.load_id,
            transactions.c.kind,
            src.c.code.label("src"),
            dst.c.code.label("dst"),
            moves.c.occurred_at,
            moves.c.committed_at,
            movements.c.reverses,
        )
        .join(transactions, transactions.c.id == moves.c.txn_id)
        .join(movements, movements.c.id == moves.c.movement_id)
        .join(src, src.c.id == moves.c.from_location_id)
        .join(dst, dst.c.id == moves.c.to_location_id)
        .where(unit)
        .order_by(moves.c.movement_id.desc())
        .limit(limit)
    )
