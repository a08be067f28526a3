"""What the API knows about one request: its id, who sent it, from where, and for a write,
whether its audit entry was already recorded with the change."""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import uuid4

from fastapi import Request
from starlette.datastructures import Headers
from starlette.types import Scope

from aggregator.audit import NOBODY, Actor, AuditEntry

T = TypeVar("T")
# A client's X-Request-ID is kept when it is short and plain; otherwise one is made.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(slots=True)
class RequestContext:
    request_id: str
    at: datetime
    method: str
    path: str
    client: str | None
    scope: Scope = field(repr=False)  # the router adds the matched route to it later
    actor: Actor = NOBODY
    recorded: bool = False  # the write recorded its audit entry in its own transaction

    @classmethod
    def of(cls, scope: Scope) -> "RequestContext":
        given = Headers(scope=scope).get("x-request-id", "")
        client = scope.get("client")
        return cls(
            request_id=given if _CLIENT_REQUEST_ID.fullmatch(given) else uuid4().hex,
            at=datetime.now(UTC),
            method=scope["method"],
            path=scope["path"],
            client=client[0] if client else None,
            scope=scope,
        )

    @property
    def is_write(self) -> bool:
        return self.method not in READ_METHODS

    def entry(self, status: int) -> AuditEntry:
        route: Any = self.scope.get("route")
        params: dict[str, object] = self.scope.get("path_params", {})
        return AuditEntry(
            at=self.at,
            request_id=self.request_id,
            actor=self.actor.name,
            key_id=self.actor.key_id,
            role=self.actor.role,
            action=getattr(route, "name", None) or "unknown",
            target=",".join(str(v) for v in params.values()) or None,
            method=self.method,
            path=self.path,
            client=self.client,
            status=status,
        )

    async def committed(self, status: int, write: Callable[[AuditEntry], Awaitable[T]]) -> T:
        """Run a write that records `entry(status)` in its own transaction."""
        result = await write(self.entry(status))
        self.recorded = True
        return result


def context_of(request: Request) -> RequestContext:
    ctx = request.scope.get("state", {}).get("context")
    assert isinstance(ctx, RequestContext), "the API's RequestMiddleware sets this"
    return ctx
