"""The location tree: any key reads (a subtree with ?within=), an admin writes (audited)."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from aggregator.api.auth import Admin, Viewer
from aggregator.api.deps import AfterQuery, EngineDep, LedgerDep, LimitQuery, WriterDep, next_cursor
from aggregator.api.master_models import Location, LocationIn, LocationPage, LocationPatch
from aggregator.api.master_write import master_write
from aggregator.api.problems import problems
from aggregator.ledger import location_admin
from aggregator.ledger.location_admin import LocationRow
from stockwire.names import LocationCode

router = APIRouter(tags=["locations"])
CodePath = Annotated[str, Path(pattern=r"^@?[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")]
WithinQuery = Annotated[
    LocationCode | None, Query(description="only this location and everything below it")
]


@router.get("/locations", responses=problems(401, 403, 404, 422))
async def list_locations(
    engine: EngineDep,
    ledger: LedgerDep,
    _: Viewer,
    within: WithinQuery = None,
    after: AfterQuery = 0,
    limit: LimitQuery = 100,
) -> LocationPage:
    """Locations by id (virtual ones too), each with the negative-stock policy in effect."""
    default = ledger.policy.negative_stock
    rows = await location_admin.tree(engine, within, default, after, limit)
    if rows is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"query.within: no location {within!r}")
    items = [_location(r) for r in rows]
    return LocationPage(items=items, next=next_cursor([r.id for r in rows], limit))


@router.get("/locations/{code:path}", responses=problems(401, 403, 404, 422))
async def get_location(engine: EngineDep, ledger: LedgerDep, _: Viewer, code: CodePath) -> Location:
    return await _read(engine, ledger.policy.negative_stock, code)


@router.post(
    "/locations", status_code=status.HTTP_201_CREATED, responses=problems(400, 401, 403, 409, 422)
)
async def create_location(
    wanted: LocationIn, engine: EngineDep, ledger: LedgerDep, writer: WriterDep, ctx: Admin
) -> Location:
    """A physical location, under `parent` or as a root (sensors make roots on first sight)."""
    values = wanted.model_dump(include={"kind", "negative_stock"})
    await master_write(
        ctx,
        status.HTTP_201_CREATED,
        writer,
        lambda conn, audit: location_admin.create(conn, wanted.code, wanted.parent, values, audit),
    )
    return await _read(engine, ledger.policy.negative_stock, wanted.code)


@router.patch("/locations/{code:path}", responses=problems(400, 401, 403, 404, 409, 422))
async def update_location(
    code: CodePath,
    changes: LocationPatch,
    engine: EngineDep,
    ledger: LedgerDep,
    writer: WriterDep,
    ctx: Admin,
) -> Location:
    """Set kind or policy, or move it (with everything below it) under another parent."""
    values = changes.model_dump(include=changes.model_fields_set)
    await master_write(
        ctx,
        status.HTTP_200_OK,
        writer,
        lambda conn, audit: location_admin.update(conn, code, values, audit),
    )
    return await _read(engine, ledger.policy.negative_stock, code)


async def _read(engine: EngineDep, default: str, code: str) -> Location:
    rows = await location_admin.tree(engine, code, default, 0, 1, alone=True)
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"path.code: no location {code!r}")
    return _location(rows[0])


def _location(r: LocationRow) -> Location:
    return Location(
        code=r.code,
        parent=r.parent,
        kind=r.kind,
        virtual=r.virtual,
        negative_stock=r.negative_stock,
        effective_negative_stock="forbid" if r.effective_negative_stock == "forbid" else "allow",
    )
