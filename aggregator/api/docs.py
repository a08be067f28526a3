"""/docs (Swagger UI) and /redoc with every script, style and image they load served by the API
itself, since sites and edge boxes are often offline, and a policy that keeps the browser there."""

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DOCS_PATHS = ("/docs", "/redoc")
# ReDoc 2 shows its vendor's logo from a CDN whatever its options say: the policy stops that
# request (the "API docs by Redocly" link stays) and any other one a later bundle might make.
# Swagger UI's page starts it with an inline script; both style with inline styles; ReDoc's
# search runs in a blob: worker.
POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)


def docs_app(**fastapi_args: Any) -> FastAPI:
    """A FastAPI app whose /docs and /redoc need nothing but this server."""
    app = FastAPIOffline(
        docs_url=DOCS_PATHS[0],
        redoc_url=DOCS_PATHS[1],
        # no online validator badge: it would send the spec's URL off the machine
        swagger_ui_parameters={"validatorUrl": None},
        **fastapi_args,
    )
    app.add_middleware(DocsPolicy)
    return app


class DocsPolicy:
    """Adds the Content-Security-Policy to the docs pages' responses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").removeprefix(scope.get("root_path", ""))
        if scope["type"] != "http" or path not in DOCS_PATHS:
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append("Content-Security-Policy", POLICY)
            await send(message)

        await self.app(scope, receive, send_with_policy)
