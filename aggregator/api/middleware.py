"""Around every request: a request id, an audit row for each write attempt the route did not
record itself, and problem details instead of a stack trace when something unexpected fails."""

import logging

from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aggregator.api.auth import bearer_actor
from aggregator.api.context import RequestContext
from aggregator.api.problems import problem
from aggregator.audit import NOBODY, record
from aggregator.writer import Writer

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "X-Request-ID"
RETRY_AFTER_S = 5


class RequestMiddleware:
    def __init__(self, app: ASGIApp, engine: AsyncEngine, writer: Writer) -> None:
        self.app = app
        self.engine = engine
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = RequestContext.of(scope)
        scope.setdefault("state", {})["context"] = ctx
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                # Before the client hears the outcome, so what it saw is always in the log.
                await self._audit(ctx, message["status"])
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, ctx.request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as e:
            if started:
                raise
            log.exception("%s %s failed (request id %s)", ctx.method, ctx.path, ctx.request_id)
            await _failure(ctx, e)(scope, receive, send_with_id)

    async def _audit(self, ctx: RequestContext, status: int) -> None:
        if not ctx.is_write or ctx.recorded:
            return
        try:
            if ctx.actor is NOBODY:  # no route looked at the key (an unknown path)
                header = Headers(scope=ctx.scope).get("authorization")
                ctx.actor = await bearer_actor(self.engine, header) or NOBODY
            entry = ctx.entry(status)
            await self.writer.run(lambda conn: record(conn, entry))
        except Exception:
            log.exception("audit: could not record %s", ctx)


def _failure(ctx: RequestContext, error: Exception) -> JSONResponse:
    if isinstance(error, OperationalError | ConnectionError):
        retry = {"Retry-After": str(RETRY_AFTER_S)}
        return problem(ctx, 503, "the database is unavailable; try again", retry)
    detail = f"unexpected error; the server's log has it under request id {ctx.request_id}"
    return problem(ctx, 500, detail)
