import base64

from fastapi import APIRouter

from aggregator.api.auth import READS
from aggregator.api.deps import AfterQuery, EngineDep, LimitQuery, next_cursor
from aggregator.api.models import PAYLOAD_PREVIEW_CHARS_MAX, DeadLetter, DeadLetterPage
from aggregator.api.problems import problems
from aggregator.ledger import reads

router = APIRouter(tags=["dead letters"], dependencies=READS, responses=problems(401, 403, 422))


@router.get("/dead-letters")
async def dead_letters(
    engine: EngineDep, after: AfterQuery = 0, limit: LimitQuery = 100
) -> DeadLetterPage:
    rows = await reads.dead_letters_after(engine, after, limit)
    items = [
        DeadLetter(
            id=r.id,
            topic=r.topic,
            reason=r.reason,
            payload_base64=base64.b64encode(r.payload).decode(),
            payload_preview=r.payload[:PAYLOAD_PREVIEW_CHARS_MAX].decode(errors="replace"),
            payload_bytes=r.payload_bytes,
            payload_sha256=r.payload_sha256,
            payload_truncated=len(r.payload) < r.payload_bytes,
            received_at=r.received_at,
        )
        for r in rows
    ]
    return DeadLetterPage(items=items, next=next_cursor([r.id for r in rows], limit))
