"""Errors as RFC 9457 problem details (`application/problem+json`), and their OpenAPI docs."""

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from aggregator.api.context import RequestContext, context_of

PROBLEM_JSON = "application/problem+json"
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {
    400: "The body cannot be read as JSON",
    401: "No API key, or one that is unknown, revoked or malformed",
    403: "The key's role does not allow this",
    404: "Not found",
    409: "Not in a state that allows this",
    422: "A parameter or the body is not valid",
    500: "Unexpected error (details are in the server's log, under the request id)",
    503: "The database is unavailable; try again",
}


class InvalidParam(BaseModel):
    location: str = Field(description="where: query.after, path.txn_id, body.role, ...")
    message: str


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str = Field(description="the path of the request")
    request_id: str = Field(description="also in the X-Request-ID header and the audit log")
    errors: list[InvalidParam] | None = Field(default=None, description="for 422: what is wrong")


def problem(
    ctx: RequestContext,
    status: int,
    detail: str,
    headers: Mapping[str, str] | None = None,
    errors: list[InvalidParam] | None = None,
) -> JSONResponse:
    body = Problem(
        title=_title(status),
        status=status,
        detail=detail,
        instance=ctx.path,
        request_id=ctx.request_id,
        errors=errors,
    )
    content = body.model_dump(exclude_none=True)
    return JSONResponse(content, status, headers=headers, media_type=PROBLEM_JSON)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(context_of(request), exc.status_code, str(exc.detail), exc.headers)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        InvalidParam(location=".".join(str(part) for part in e["loc"]), message=e["msg"])
        for e in exc.errors()
    ]
    detail = "; ".join(f"{e.location}: {e.message}" for e in errors[:3])
    return problem(context_of(request), 422, detail or "the request is not valid", errors=errors)


def install(app: FastAPI) -> None:
    """Problem details for every HTTP error and validation error, documented as such."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _problem_media_types(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route: these statuses and the ones any route can answer."""
    return {s: {"model": Problem, "description": _DESCRIPTIONS[s]} for s in (*statuses, 500, 503)}


def _problem_media_types(spec: dict[str, Any]) -> None:
    """FastAPI documents every response model as application/json; problems are not."""
    for operations in spec.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                content = response.get("content", {})
                if content.get("application/json", {}).get("schema") == _PROBLEM_REF:
                    content[PROBLEM_JSON] = content.pop("application/json")
