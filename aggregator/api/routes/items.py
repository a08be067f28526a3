"""Items and their GTIN packs: any key reads, an admin writes (each write audited)."""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response, status

from aggregator.api.auth import Admin, Viewer
from aggregator.api.deps import AfterQuery, EngineDep, LimitQuery, WriterDep, next_cursor
from aggregator.api.master_models import Item, ItemIn, ItemPage, ItemPatch, Pack, PackIn
from aggregator.api.master_write import master_write
from aggregator.api.problems import problems
from aggregator.ledger import item_admin
from aggregator.ledger.item_admin import ItemRow, NewItem, PackRow
from stockwire.names import Gtin14

router = APIRouter(tags=["items"])
# A sku may hold '/': the rest of the path up to the route's next fixed part.
SkuPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^\S+$")]
GtinPath = Annotated[Gtin14, Path()]


@router.get("/items", responses=problems(401, 403, 422))
async def list_items(
    engine: EngineDep, _: Viewer, after: AfterQuery = 0, limit: LimitQuery = 100
) -> ItemPage:
    """Every item by id, with its packs; items made from a scan have no sku until a person
    gives them one (POST /items with their GTIN)."""
    rows = await item_admin.items_after(engine, after, limit)
    return ItemPage(items=[_item(r) for r in rows], next=next_cursor([r.id for r in rows], limit))


@router.get("/items/{sku:path}", responses=problems(401, 403, 404, 422))
async def get_item(engine: EngineDep, _: Viewer, sku: SkuPath) -> Item:
    return await _read(engine, sku)


@router.post(
    "/items", status_code=status.HTTP_201_CREATED, responses=problems(400, 401, 403, 409, 422)
)
async def create_item(wanted: ItemIn, engine: EngineDep, writer: WriterDep, ctx: Admin) -> Item:
    attributes = wanted.model_dump(include=set(item_admin.ATTRIBUTES))
    packs = [PackRow(p.gtin, p.uom, p.qty) for p in wanted.packs]
    new = NewItem(wanted.sku, wanted.gtin, wanted.base_uom, attributes, packs)
    await master_write(
        ctx,
        status.HTTP_201_CREATED,
        writer,
        lambda conn, audit: item_admin.create(conn, new, audit),
    )
    return await _read(engine, wanted.sku)


@router.patch("/items/{sku:path}", responses=problems(400, 401, 403, 404, 422))
async def update_item(
    sku: SkuPath, changes: ItemPatch, engine: EngineDep, writer: WriterDep, ctx: Admin
) -> Item:
    """Change the fields sent; the item is no longer flagged (a person has set it)."""
    values = changes.model_dump(include=changes.model_fields_set)
    await master_write(
        ctx,
        status.HTTP_200_OK,
        writer,
        lambda conn, audit: item_admin.update(conn, sku, values, audit),
    )
    return await _read(engine, sku)


@router.post(
    "/items/{sku:path}/gtins",
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 404, 409, 422),
)
async def add_gtin(
    sku: SkuPath, pack: PackIn, engine: EngineDep, writer: WriterDep, ctx: Admin
) -> Item:
    """A GTIN of the item: a scan of it posts qty x pack.qty base units (uom must agree)."""
    row = PackRow(pack.gtin, pack.uom, pack.qty)
    await master_write(
        ctx,
        status.HTTP_201_CREATED,
        writer,
        lambda conn, audit: item_admin.add_gtin(conn, sku, row, audit),
    )
    return await _read(engine, sku)


@router.delete(
    "/items/{sku:path}/gtins/{gtin}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(401, 403, 404, 409, 422),
)
async def remove_gtin(sku: SkuPath, gtin: GtinPath, writer: WriterDep, ctx: Admin) -> None:
    """Movements already posted through it keep their quantities."""
    await master_write(
        ctx,
        status.HTTP_204_NO_CONTENT,
        writer,
        lambda conn, audit: item_admin.remove_gtin(conn, sku, gtin, audit),
    )


async def _read(engine: EngineDep, sku: str) -> Item:
    row = await item_admin.item(engine, sku)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"path.sku: no item with sku {sku!r}")
    return _item(row)


def _item(r: ItemRow) -> Item:
    return Item(
        sku=r.sku,
        gtin=r.gtin,
        base_uom=r.base_uom,
        flagged=r.flagged,
        packs=[Pack(**asdict(p)) for p in r.packs],
        **r.attributes,
    )
