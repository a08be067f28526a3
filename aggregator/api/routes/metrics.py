from typing import Any

from fastapi import APIRouter, Response

from aggregator.api.auth import READS
from aggregator.api.deps import StateDep
from aggregator.api.problems import problems
from aggregator.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"], dependencies=READS)

_TEXT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The Prometheus text exposition format (version 0.0.4)",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


@router.get("/metrics", response_class=Response, responses={**_TEXT, **problems(401, 403, 422)})
async def metrics(state: StateDep) -> Response:
    """For Prometheus: ingest, writer and MQTT counters, queue depths and latency histograms
    (README, "Metrics and logs"). Needs a key of any role, like every read (Prometheus:
    `authorization: {credentials: <key>}`), or none with `api.open_reads`."""
    return Response(state.metrics(), media_type=CONTENT_TYPE)
