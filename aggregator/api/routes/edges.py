from fastapi import APIRouter

from aggregator.api.auth import READS
from aggregator.api.deps import EngineDep, StateDep
from aggregator.api.models import Edge
from aggregator.api.problems import problems
from aggregator.ledger import reads

router = APIRouter(tags=["edges"], dependencies=READS, responses=problems(401, 403))


@router.get("/edges")
async def edges(engine: EngineDep, state: StateDep) -> list[Edge]:
    """Every edge seen, with what it last reported and what ingest refused from it (by the
    edge level of the topic: a name that is no known edge shows up here too)."""
    refused = dict(state.refused())
    items = [
        Edge(
            edge=r.edge,
            state=r.state,
            last_seq=r.last_seq,
            last_seen=r.last_seen,
            refused=refused.pop(r.edge, 0),
        )
        for r in await reads.edges_of(engine, state.ledger.site)
    ]
    items += [
        Edge(edge=name, state=None, last_seq=None, last_seen=None, refused=count)
        for name, count in sorted(refused.items())
    ]
    return items
