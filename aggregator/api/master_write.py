"""Run a master-data write (items, locations) with its audit entry, and turn what the ledger
refuses into problem details naming the field."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError

from aggregator.api.context import RequestContext
from aggregator.audit import AuditEntry
from aggregator.errors import ConflictError, FieldError, NotFoundError, RefusedError
from aggregator.writer import Writer

Change = Callable[[sa.Connection, AuditEntry], None]


@contextmanager
def as_problems() -> Iterator[None]:
    """What a ledger write refuses, as an API answer: 404, 409, or a 422 naming the field."""
    try:
        yield
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    except (ConflictError, RefusedError) as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    except FieldError as e:
        where = tuple(e.field.split("."))
        error = {"type": "value_error", "loc": where, "msg": e.message, "input": None}
        raise RequestValidationError([error]) from None


async def master_write(ctx: RequestContext, done: int, writer: Writer, change: Change) -> None:
    try:
        with as_problems():
            await ctx.committed(done, lambda audit: writer.run(lambda conn: change(conn, audit)))
    except IntegrityError:
        detail = "another change to the same item or location came first; send this again"
        raise HTTPException(status.HTTP_409_CONFLICT, detail) from None
