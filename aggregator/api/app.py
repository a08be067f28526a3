"""The REST API: create_app builds a FastAPI app around state the caller owns."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from starlette.middleware.cors import CORSMiddleware

from aggregator.api import problems
from aggregator.api.deps import ApiState, known_query
from aggregator.api.docs import docs_app
from aggregator.api.middleware import REQUEST_ID_HEADER, RequestMiddleware
from aggregator.api.routes import (
    audit,
    counts,
    dead_letters,
    edges,
    epcs,
    health,
    items,
    keys,
    kpis,
    locations,
    lots,
    metrics,
    movements,
    rejected,
    reorder,
    serials,
    stock,
    transactions,
)

log = logging.getLogger(__name__)


def create_app(state: ApiState) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"api": state}

    app = docs_app(
        title="Stockwire aggregator",
        version="1",
        lifespan=lifespan,
        dependencies=[Depends(known_query)],  # every route: an unknown query parameter is a 422
    )
    routes = (
        health,
        stock,
        movements,
        items,
        locations,
        epcs,
        lots,
        serials,
        dead_letters,
        rejected,
        transactions,
        edges,
        keys,
        audit,
        metrics,
        reorder,
        counts,
        kpis,
    )
    for module in routes:
        app.include_router(module.router)
    problems.install(app)
    app.add_middleware(RequestMiddleware, engine=state.engine, writer=state.ledger.writer)
    settings = state.settings
    if settings.cors_origins:  # added last: outermost, so it also answers preflights
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", REQUEST_ID_HEADER],
            expose_headers=[REQUEST_ID_HEADER],
        )
    if settings.open_reads:
        log.warning(
            "[api] open_reads = true: anyone who reaches the API can read it without a key; "
            "keep it on a trusted network"
        )
    return app
