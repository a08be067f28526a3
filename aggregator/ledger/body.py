"""The canonical body of a transaction and its hash: what 'same id, same body' compares.

Canonical = pydantic's JSON of the parsed model: every field (defaults included), in declaration
order, normalised values. Two posts of the same transaction give the same bytes however the
edge spelled them (key order, omitted defaults, whitespace). The same text is what is stored.
"""

import hashlib
from dataclasses import dataclass

from stockwire.txn import StockTransaction


@dataclass(frozen=True, slots=True)
class Body:
    text: str
    digest: str


def body_of(txn: StockTransaction) -> Body:
    text = txn.model_dump_json()
    return Body(text, hashlib.sha256(text.encode()).hexdigest())
