"""Messages that are not valid input are kept, raw, with the reason: never dropped."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.database import writing
from aggregator.schema import dead_letters


async def keep(engine: AsyncEngine, topic: str, reason: str, payload: bytes, now: datetime) -> int:
    row = {"topic": topic, "reason": reason, "payload": payload, "received_at": now}
    async with writing(engine) as conn:
        result = await conn.execute(sa.insert(dead_letters).returning(dead_letters.c.id), [row])
        return int(result.scalar_one())
