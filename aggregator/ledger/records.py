"""The rows a posting keeps of each transaction: `transactions` (posted or pending, with the
canonical body) and `rejected_txns` (conflicts and invalid ones, kept for inspection)."""

from datetime import datetime

import sqlalchemy as sa

from aggregator.database import commit_order
from aggregator.ledger.body import Body
from aggregator.ledger.bulk import encoding, insert_rows
from aggregator.schema import rejected_txns, transactions
from stockwire.txn import StockTransaction

Kept = tuple[StockTransaction, Body, str, str | None]  # (txn, body, status, review reason)
Refused = tuple[StockTransaction, Body, str]  # (txn, body, rejection reason)

_TXN_COLUMNS = (
    "id",
    "edge",
    "seq",
    "kind",
    "status",
    "body_hash",
    "body",
    "occurred_at",
    "recorded_at",
    "received_at",
    "committed_at",
    "review_reason",
    "load_id",
)
_REJECTED_COLUMNS = ("txn_id", "edge", "reason", "body", "received_at")


def insert_txns(conn: sa.Connection, kept: list[Kept], now: datetime) -> None:
    """`kept` holds (txn, body, "posted" | "pending", why it is pending)."""
    enc = encoding(conn)
    at = enc.time(now)
    rows: list[tuple[object, ...]] = [
        (
            enc.uuid(txn.id),
            txn.edge,
            txn.seq,
            txn.kind.value,
            status,
            body.digest,
            body.text,
            enc.time(txn.occurred_at),
            enc.time(txn.recorded_at),
            at,
            at if status == "posted" else None,
            review_reason,
            None if txn.load_id is None else enc.uuid(txn.load_id),
        )
        for txn, body, status, review_reason in kept
    ]
    insert_rows(conn, transactions, _TXN_COLUMNS, rows)


def insert_rejected(conn: sa.Connection, kept: list[Refused], now: datetime) -> None:
    """`kept` holds (txn, body, reason). Readers page these by id: see commit_order."""
    if not kept:
        return
    commit_order(conn)
    enc = encoding(conn)
    at = enc.time(now)
    rows: list[tuple[object, ...]] = [
        (enc.uuid(txn.id), txn.edge, reason, body.text, at) for txn, body, reason in kept
    ]
    insert_rows(conn, rejected_txns, _REJECTED_COLUMNS, rows)
