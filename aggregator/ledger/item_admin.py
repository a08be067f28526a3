"""Items as a person keeps them (the API): create, change, add and remove GTIN packs.

Each write records its audit entry in the same database transaction. Movements already
posted keep their base-unit quantities: a pack changed later never rewrites history.
"""

from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.audit import AuditEntry, record
from aggregator.errors import ConflictError, FieldError, NotFoundError
from aggregator.schema import item_gtins, items

# What a person may set on an item (besides its sku, base unit and GTINs).
ATTRIBUTES = (
    "unit_weight_g",
    "tracking",
    "shelf_life_days",
    "reorder_point",
    "min_qty",
    "max_qty",
    "abc_class",
)


@dataclass(frozen=True, slots=True)
class PackRow:
    gtin: str
    uom: str
    qty: int


@dataclass(frozen=True, slots=True)
class ItemRow:
    id: int
    sku: str | None
    gtin: str | None
    base_uom: str
    flagged: bool
    attributes: dict[str, Any]
    packs: list[PackRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class NewItem:
    sku: str
    gtin: str | None  # the base unit's GTIN
    base_uom: str
    attributes: dict[str, Any]
    packs: list[PackRow]


def create(conn: sa.Connection, new: NewItem, audit: AuditEntry) -> None:
    """A new item with its packs. Its base GTIN may name an item first seen from a scanner
    (no sku yet): that item is completed instead, keeping its stock and history."""
    if _item_id(conn, items.c.sku == new.sku) is not None:
        raise ConflictError("body.sku", f"item {new.sku} exists")
    _check_packs(new)
    adopted = _adoptable(conn, new.gtin)
    values = {"sku": new.sku, "base_uom": new.base_uom, "flagged": False, **new.attributes}
    if adopted is None:
        item_id = conn.execute(
            sa.insert(items)
            .values(gtin=new.gtin, created_at=audit.at, **values)
            .returning(items.c.id)
        ).scalar_one()
    else:
        item_id = adopted
        conn.execute(sa.update(items).where(items.c.id == item_id).values(**values))
    packs = [(pack, f"body.packs.{n}.gtin") for n, pack in enumerate(new.packs)]
    if new.gtin is not None:
        packs.insert(0, (PackRow(new.gtin, new.base_uom, 1), "body.gtin"))
    for pack, where in packs:
        _add_pack(conn, item_id, pack, where)
    record(conn, replace(audit, target=new.sku))


def update(conn: sa.Connection, sku: str, changes: dict[str, Any], audit: AuditEntry) -> None:
    """Change attributes; a person has now looked at the item, so it is no longer flagged."""
    row = _locked_item(conn, sku)
    merged = {**row.attributes, **changes}
    _check_levels(merged)
    conn.execute(sa.update(items).where(items.c.id == row.id).values(flagged=False, **changes))
    record(conn, audit)


def add_gtin(conn: sa.Connection, sku: str, pack: PackRow, audit: AuditEntry) -> None:
    row = _locked_item(conn, sku)
    if pack.uom == row.base_uom and pack.qty != 1:
        raise FieldError("body.qty", f"a pack in the base unit {row.base_uom} holds 1")
    for other in _packs(conn, [row.id]).get(row.id, []):
        if other.uom == pack.uom and other.qty != pack.qty:
            raise FieldError(
                "body.qty",
                f"item {sku} has a {pack.uom} pack of {other.qty} {row.base_uom}"
                f" (GTIN {other.gtin}); packs of one unit hold the same",
            )
    _add_pack(conn, row.id, pack, "body.gtin")
    record(conn, audit)


def remove_gtin(conn: sa.Connection, sku: str, gtin: str, audit: AuditEntry) -> None:
    row = _locked_item(conn, sku)
    if gtin == row.gtin:
        raise ConflictError("path.gtin", f"{gtin} is the base GTIN that names item {sku}")
    gone = conn.execute(
        sa.delete(item_gtins).where(item_gtins.c.gtin == gtin, item_gtins.c.item_id == row.id)
    )
    if gone.rowcount == 0:
        raise NotFoundError(f"item {sku} has no GTIN {gtin}")
    record(conn, audit)


def _check_packs(new: NewItem) -> None:
    seen: dict[str, int] = {new.gtin: -1} if new.gtin is not None else {}
    per_uom: dict[str, int] = {new.base_uom: 1}
    for n, pack in enumerate(new.packs):
        if pack.gtin in seen:
            raise FieldError(f"body.packs.{n}.gtin", f"GTIN {pack.gtin} is given twice")
        seen[pack.gtin] = n
        if per_uom.setdefault(pack.uom, pack.qty) != pack.qty:
            held = per_uom[pack.uom]
            raise FieldError(f"body.packs.{n}.qty", f"a {pack.uom} pack holds {held} here")
    _check_levels(new.attributes)


def _check_levels(values: dict[str, Any]) -> None:
    low, high, point = values.get("min_qty"), values.get("max_qty"), values.get("reorder_point")
    if low is not None and high is not None and low > high:
        raise FieldError("body.min_qty", f"min_qty {low} is above max_qty {high}")
    if point is not None and high is not None and point > high:
        raise FieldError("body.reorder_point", f"reorder_point {point} is above max_qty {high}")


def _adoptable(conn: sa.Connection, gtin: str | None) -> int | None:
    if gtin is None:
        return None
    row = conn.execute(
        sa.select(items.c.id, items.c.sku).where(items.c.gtin == gtin).with_for_update()
    ).one_or_none()
    if row is None:
        return None
    if row.sku is not None:
        raise ConflictError("body.gtin", f"GTIN {gtin} belongs to item {row.sku}")
    return int(row.id)


def _add_pack(conn: sa.Connection, item_id: int, pack: PackRow, where: str) -> None:
    owner = conn.execute(
        sa.select(items.c.id, items.c.sku, items.c.gtin)
        .join(item_gtins, item_gtins.c.item_id == items.c.id)
        .where(item_gtins.c.gtin == pack.gtin)
    ).one_or_none()
    if owner is not None and owner.id == item_id:
        return  # an adopted item's own GTIN
    if owner is not None:
        raise ConflictError(where, f"GTIN {pack.gtin} belongs to item {owner.sku or owner.gtin}")
    row = {"gtin": pack.gtin, "item_id": item_id, "uom": pack.uom, "qty": pack.qty}
    conn.execute(sa.insert(item_gtins).values(row))


def _item_id(conn: sa.Connection, where: sa.ColumnElement[bool]) -> int | None:
    found = conn.execute(sa.select(items.c.id).where(where)).scalar_one_or_none()
    return None if found is None else int(found)


def _locked_item(conn: sa.Connection, sku: str) -> ItemRow:
    row = conn.execute(sa.select(items).where(items.c.sku == sku).with_for_update()).one_or_none()
    if row is None:
        raise NotFoundError(f"no item with sku {sku!r}")
    return _item_row(row)


def _item_row(r: sa.Row[Any]) -> ItemRow:
    attributes = {name: getattr(r, name) for name in ATTRIBUTES}
    return ItemRow(r.id, r.sku, r.gtin, r.base_uom, r.flagged, attributes)


def _packs(conn: sa.Connection, ids: list[int]) -> dict[int, list[PackRow]]:
    query = (
        sa.select(item_gtins)
        .where(item_gtins.c.item_id.in_(ids))
        .order_by(item_gtins.c.item_id, item_gtins.c.qty, item_gtins.c.gtin)
    )
    out: dict[int, list[PackRow]] = {}
    for r in conn.execute(query):
        out.setdefault(r.item_id, []).append(PackRow(r.gtin, r.uom, r.qty))
    return out


async def item(engine: AsyncEngine, sku: str) -> ItemRow | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(items).where(items.c.sku == sku))).one_or_none()
        if row is None:
            return None
        found = _item_row(row)
        packs = await conn.run_sync(lambda c: _packs(c, [found.id]))
    return replace(found, packs=packs.get(found.id, []))


async def items_after(engine: AsyncEngine, after: int, limit: int) -> list[ItemRow]:
    """Items by id (sku-less ones made from scans included), with their packs."""
    query = sa.select(items).where(items.c.id > after).order_by(items.c.id).limit(limit)
    async with engine.connect() as conn:
        rows = [_item_row(r) for r in await conn.execute(query)]
        ids = [r.id for r in rows]
        packs = await conn.run_sync(lambda c: _packs(c, ids)) if ids else {}
    return [replace(r, packs=packs.get(r.id, [])) for r in rows]
