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
        503: {
            "model": Health,
            "description": "Degraded: the database does not answer or MQTT is not connected",
        },
        500: problems(500)[500],
    },
)
async def health(state: StateDep, response: Response) -> Health:
    """For monitors, without a key: 200 when the database answers and MQTT is connected,
    else 503 with the same body saying which is down."""
    try:
        database = await reads.ping(state.engine)
    except (SQLAlchemyError, OSError):
        log.exception("health: database unreachable")
        database = False
    mqtt = state.mqtt_connected()
    up = database and mqtt
    if not up:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Health(
        status="ok" if up else "degraded",
        database=database,
        mqtt=mqtt,
        mqtt_anonymous=state.mqtt_anonymous(),
    )
