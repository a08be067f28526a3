"""Messages that are not valid input are kept with the reason: never dropped, never unbounded.

Of the payload a capped prefix is stored, with the size received and the SHA-256 of the whole,
so a 10 MB flood payload costs kilobytes and can still be recognised (and told apart from
another one) later.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from aggregator.database import commit_order
from aggregator.schema import dead_letters

TOPIC_CHARS_MAX = 1024  # the column's size; MQTT allows topics of 65,535 bytes
REASON_CHARS_MAX = 4000


@dataclass(frozen=True, slots=True)
class Letter:
    topic: str
    reason: str
    payload: bytes
    received_at: datetime


def keep(conn: sa.Connection, letters: Sequence[Letter], prefix_bytes_max: int) -> list[int]:
    """Store dead letters (in the caller's write transaction); their ids, in order."""
    rows = [
        {
            "topic": letter.topic[:TOPIC_CHARS_MAX],
            "reason": capped(letter.reason, REASON_CHARS_MAX),
            "payload": letter.payload[:prefix_bytes_max],
            "payload_bytes": len(letter.payload),
            "payload_sha256": hashlib.sha256(letter.payload).hexdigest(),
            "received_at": letter.received_at,
        }
        for letter in letters
    ]
    if not rows:
        return []
    commit_order(conn)  # readers page them by id
    stmt = sa.insert(dead_letters).returning(dead_letters.c.id, sort_by_parameter_order=True)
    return [int(i) for i in conn.execute(stmt, rows).scalars()]


def capped(text: str, chars_max: int) -> str:
    if len(text) <= chars_max:
        return text
    more = f" ... ({len(text) - chars_max} more characters)"
    return text[: chars_max - len(more)] + more
