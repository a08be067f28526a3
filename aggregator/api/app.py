"""The REST API: create_app builds a FastAPI app around state the caller owns."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from aggregator.api.deps import ApiState
from aggregator.api.routes import (
    dead_letters,
    edges,
    health,
    movements,
    rejected,
    stock,
    transactions,
)


def create_app(state: ApiState) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        yield {"api": state}

    app = FastAPI(title="Stockwire aggregator", version="1", lifespan=lifespan)
    for module in (health, stock, movements, dead_letters, rejected, transactions, edges):
        app.include_router(module.router)
    return app
