from dataclasses import asdict

from fastapi import APIRouter

from aggregator.api.admin_models import AuditPage, AuditRecord
from aggregator.api.auth import Admin
from aggregator.api.deps import AfterQuery, EngineDep, LimitQuery, next_cursor
from aggregator.api.problems import problems
from aggregator.ledger import reads

router = APIRouter(tags=["audit"])


@router.get("/audit", responses=problems(401, 403, 422))
async def audit(
    engine: EngineDep, _: Admin, after: AfterQuery = 0, limit: LimitQuery = 100
) -> AuditPage:
    """Every write attempt, oldest first: who, what, when, from where, and the outcome."""
    rows = await reads.audit_after(engine, after, limit)
    items = [AuditRecord(id=r.id, **asdict(r.entry)) for r in rows]
    return AuditPage(items=items, next=next_cursor([r.id for r in rows], limit))
