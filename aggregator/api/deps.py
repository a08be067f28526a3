"""Request dependencies: everything comes from the lifespan state, nothing from globals."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AfterValidator
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.ledger import Ledger, Posting
from aggregator.ledger.count_tasks import CountRules
from aggregator.settings import ApiSettings
from aggregator.writer import Writer
from stockwire.wire_types import Timestamp

PAGE_ROWS_MAX = 1000
# Ids are 64-bit signed integers in both databases; anything larger is a 422, not a 500.
ID_MAX = 2**63 - 1


async def _nowhere(_posting: Posting) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ApiState:
    engine: AsyncEngine
    ledger: Ledger
    mqtt_connected: Callable[[], bool] = lambda: False
    # What the API commits (approve, reverse) goes here: its movements are republished on
    # .../ledger (and, with the telemetry sink on, written as points).
    republish: Callable[[Posting], Awaitable[None]] = _nowhere
    # Messages ingest refused since start, by edge.
    refused: Callable[[], Mapping[str, int]] = dict
    # Whether the broker lets in clients without credentials; None until the probe knows.
    mqtt_anonymous: Callable[[], bool | None] = lambda: None
    # GET /metrics: the Prometheus text format (aggregator.metrics).
    metrics: Callable[[], bytes] = bytes
    settings: ApiSettings = field(default_factory=ApiSettings)
    count_rules: CountRules = field(default_factory=CountRules)


def _state(request: Request) -> ApiState:
    state = request.state.api
    assert isinstance(state, ApiState), "create_app's lifespan sets this"
    return state


StateDep = Annotated[ApiState, Depends(_state)]


def _engine(state: StateDep) -> AsyncEngine:
    return state.engine


def _ledger(state: StateDep) -> Ledger:
    return state.ledger


def _writer(state: StateDep) -> Writer:
    return state.ledger.writer


def _republish(state: StateDep) -> Callable[[Posting], Awaitable[None]]:
    return state.republish


def _count_rules(state: StateDep) -> CountRules:
    return state.count_rules


CountRulesDep = Annotated[CountRules, Depends(_count_rules)]
EngineDep = Annotated[AsyncEngine, Depends(_engine)]
LedgerDep = Annotated[Ledger, Depends(_ledger)]
WriterDep = Annotated[Writer, Depends(_writer)]
RepublishDep = Annotated[Callable[[Posting], Awaitable[None]], Depends(_republish)]
AfterQuery = Annotated[int, Query(ge=0, le=ID_MAX, description="return rows with id > after")]
LimitQuery = Annotated[int, Query(ge=1, le=PAGE_ROWS_MAX)]


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+05:00 is before year 1 in UTC
        raise ValueError("out of range once in UTC") from None


# An RFC 3339 time with an offset, in UTC (which the databases store).
UtcTime = Annotated[Timestamp, AfterValidator(_in_utc)]


def next_cursor(ids: list[int], limit: int) -> int | None:
    """The cursor of the next page, or None when this page is the last."""
    return ids[-1] if len(ids) == limit else None


def known_query(request: Request) -> None:
    """Refuse query parameters the route does not take (422 naming each), rather than ignore
    them: `/stock?skus=X` must not answer every line as if unfiltered."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    taken = _query_names(route.dependant)
    unknown = [name for name in dict.fromkeys(request.query_params) if name not in taken]
    if unknown:
        takes = ", ".join(sorted(taken)) or "no query parameters"
        raise RequestValidationError(
            [
                {
                    "type": "unknown_parameter",
                    "loc": ("query", name),
                    "msg": f"unknown parameter; {route.path} takes {takes}",
                    "input": request.query_params[name],
                }
                for name in unknown
            ]
        )


def _query_names(dependant: Dependant) -> set[str]:
    """The query parameters a route and its dependencies take, as clients spell them."""
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names
