"""What the aggregator knows about each edge: last seen, last seq, last reported state."""

from datetime import datetime

import sqlalchemy as sa

from aggregator.ledger.upsert import insert
from aggregator.schema import edges


def record_state(
    conn: sa.Connection, site: str, edge: str, state: str, now: datetime
) -> str | None:
    """Store the edge's reported state; returns the state it had before (None if new)."""
    query = sa.select(edges.c.state).where(edges.c.site == site, edges.c.edge == edge)
    before = conn.execute(query.with_for_update()).scalar_one_or_none()
    stmt = insert(conn, edges).values(site=site, edge=edge, last_seen=now, state=state)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[edges.c.site, edges.c.edge],
            set_={"last_seen": stmt.excluded.last_seen, "state": stmt.excluded.state},
        )
    )
    return before
