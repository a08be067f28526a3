"""Who may do what: `Authorization: Bearer <API key>`, checked against the key's role."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator import keys
from aggregator.api.context import RequestContext, context_of
from aggregator.api.deps import StateDep
from aggregator.audit import Actor
from aggregator.roles import Role

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    bearerFormat="swk_<id>_<secret>",
    description="An API key from `stockwire keys create` or POST /keys.",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = 'Bearer realm="stockwire"' + (f', error="{error}"' if error else "")
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": challenge})


def actor_of(key: keys.ApiKey) -> Actor:
    return Actor(key.name, key.id, key.role.value)


async def bearer_actor(engine: AsyncEngine, authorization: str | None) -> Actor | None:
    """Who an Authorization header names, for requests no route checked (unknown paths)."""
    scheme, token = get_authorization_scheme_param(authorization)
    key = await keys.find(engine, token) if scheme.lower() == "bearer" else None
    return actor_of(key) if key is not None else None


def require(role: Role) -> Callable[..., Awaitable[RequestContext]]:
    """A dependency that lets the request through only with a key of `role` or above."""

    async def check(request: Request, state: StateDep, credentials: Credentials) -> RequestContext:
        ctx = context_of(request)
        if credentials is None:
            if role is Role.VIEWER and state.settings.open_reads:
                return ctx
            raise _unauthorized("this needs an API key: send Authorization: Bearer <key>")
        key = await keys.find(state.engine, credentials.credentials)
        if key is None:
            raise _unauthorized("the API key is unknown, revoked or malformed", "invalid_token")
        ctx.actor = actor_of(key)
        if not key.role.allows(role):
            detail = f"key {key.id} ({key.role}) may not do this: it needs {role} or above"
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail)
        return ctx

    return check


_viewer = require(Role.VIEWER)
# What a route declares: the role it needs. Each gives the route its request context.
Viewer = Annotated[RequestContext, Depends(_viewer)]
Operator = Annotated[RequestContext, Depends(require(Role.OPERATOR))]
Approver = Annotated[RequestContext, Depends(require(Role.APPROVER))]
Admin = Annotated[RequestContext, Depends(require(Role.ADMIN))]
# For a router whose routes all only read.
READS = [Depends(_viewer)]
