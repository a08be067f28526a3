from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from aggregator import keys
from aggregator.api.admin_models import CreatedKey, KeyInfo, KeyRequest
from aggregator.api.auth import Admin
from aggregator.api.deps import EngineDep, WriterDep
from aggregator.api.problems import problems
from aggregator.errors import NotFoundError, StateError

router = APIRouter(tags=["keys"])
KeyId = Annotated[str, Path(pattern=keys.KEY_ID_PATTERN)]


@router.get("/keys", responses=problems(401, 403))
async def list_keys(engine: EngineDep, _: Admin) -> list[KeyInfo]:
    return [KeyInfo(**asdict(k)) for k in await keys.all_keys(engine)]


@router.post("/keys", status_code=status.HTTP_201_CREATED, responses=problems(400, 401, 403, 422))
async def create_key(wanted: KeyRequest, writer: WriterDep, ctx: Admin) -> CreatedKey:
    """The key is in this response only: the server keeps a hash of it."""
    new = await ctx.committed(
        status.HTTP_201_CREATED,
        lambda audit: writer.run(lambda conn: keys.create(conn, wanted.name, wanted.role, audit)),
    )
    return CreatedKey(**asdict(new.key), key=new.token)


@router.delete(
    "/keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(401, 403, 404, 409, 422),
)
async def revoke_key(key_id: KeyId, writer: WriterDep, ctx: Admin) -> None:
    """The key stops working at once; it stays listed, with its revocation time."""
    try:
        await ctx.committed(
            status.HTTP_204_NO_CONTENT,
            lambda audit: writer.run(lambda conn: keys.revoke(conn, key_id, audit)),
        )
    except NotFoundError as e:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(e)) from None
    except StateError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
