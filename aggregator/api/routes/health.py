import logging

from fastapi import APIRouter, Response, status
from sqlalchemy.exc import SQLAlchemyError

from aggregator.api.deps import StateDep
from aggregator.api.models import Health
from aggregator.api.problems import problems
from aggregator.ledger import reads

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={
        503: {"model": Health, "description": "The database does not answer"},
        500: problems(500)[500],
    },
)
async def health(state: StateDep, response: Response) -> Health:
    try:
        database = await reads.ping(state.engine)
    except (SQLAlchemyError, OSError):
        log.exception("health: database unreachable")
        database = False
    mqtt = state.mqtt_connected()
    if not database:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(
        status="ok" if database and mqtt else "degraded",
        database=database,
        mqtt=mqtt,
        mqtt_anonymous=state.mqtt_anonymous(),
    )
