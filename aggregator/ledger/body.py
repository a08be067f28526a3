"""The canonical body of a transaction and its hash: what 'same id, same body' compares.

Canonical = pydantic's JSON of the parsed model: every field (defaults included), in declaration
order, normalised values. Two posts of the same transaction give the same bytes however the
edge spelled them (key order, omitted defaults, whitespace).
"""

import hashlib
from typing import Any

from stockwire.txn import StockTransaction


def canonical_body(txn: StockTransaction) -> dict[str, Any]:
    return txn.model_dump(mode="json")


def body_hash(txn: StockTransaction) -> str:
    return hashlib.sha256(txn.model_dump_json().encode()).hexdigest()
