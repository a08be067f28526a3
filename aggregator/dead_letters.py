"""Messages that are not valid input are kept, raw, with the reason: never dropped."""

from datetime import datetime

import sqlalchemy as sa

from aggregator.schema import dead_letters


def keep(conn: sa.Connection, topic: str, reason: str, payload: bytes, now: datetime) -> int:
    """Store one dead letter (in the caller's write transaction); returns its id."""
    row = {"topic": topic, "reason": reason, "payload": payload, "received_at": now}
    result = conn.execute(sa.insert(dead_letters).returning(dead_letters.c.id), [row])
    return int(result.scalar_one())
