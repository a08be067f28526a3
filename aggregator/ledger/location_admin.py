"""Locations as a person arranges them (the API): create under a parent, move (the whole
subtree's paths change in one statement), set kind and negative-stock policy; read a subtree.

A location's `path` holds the ids from its root down ("/1/7/42/"): the subtree of a location
is every path that starts with its own. Moves are serialized (on PostgreSQL by an advisory
lock) so two moves at once can never make a cycle; postings only read paths.
"""

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.audit import AuditEntry, record
from aggregator.errors import ConflictError, FieldError, NotFoundError
from aggregator.ledger.catalog import root_path
from aggregator.schema import LOCATION_DEPTH_MAX, locations

# The key of the transaction-scoped PostgreSQL advisory lock that serializes tree changes.
TREE_LOCK = 0x5357_5452_4545_4C4B  # "SWTREELK"


@dataclass(frozen=True, slots=True)
class LocationRow:
    id: int
    code: str
    parent: str | None
    kind: str | None
    virtual: bool
    negative_stock: str | None
    effective_negative_stock: str
    path: str


@dataclass(frozen=True, slots=True)
class _Node:
    id: int
    code: str
    virtual: bool
    path: str


def create(
    conn: sa.Connection,
    code: str,
    parent: str | None,
    values: dict[str, Any],
    audit: AuditEntry,
) -> None:
    _tree_lock(conn)
    if _node(conn, code) is not None:
        raise ConflictError("body.code", f"location {code} exists")
    above = _parent(conn, parent, "body.parent")
    if above is not None and _depth(above.path) + 1 > LOCATION_DEPTH_MAX:
        raise FieldError("body.parent", f"the tree is at most {LOCATION_DEPTH_MAX} deep")
    new_id = conn.execute(
        sa.insert(locations)
        .values(
            code=code,
            virtual=False,
            created_at=audit.at,
            parent_id=above.id if above else None,
            path="",
            **values,
        )
        .returning(locations.c.id)
    ).scalar_one()
    path = root_path(locations.c.id)
    if above is not None:
        path = sa.literal(above.path) + sa.cast(locations.c.id, sa.String(12)) + sa.literal("/")
    conn.execute(sa.update(locations).where(locations.c.id == new_id).values(path=path))
    record(conn, audit)


def update(conn: sa.Connection, code: str, changes: dict[str, Any], audit: AuditEntry) -> None:
    """`changes` may hold kind, negative_stock and parent (a code, or None for a root)."""
    _tree_lock(conn)
    node = _node(conn, code)
    if node is None:
        raise NotFoundError(f"no location {code!r}")
    if node.virtual:
        raise ConflictError("path.code", f"{code} is a virtual location: it has no place in a tree")
    values = {k: v for k, v in changes.items() if k != "parent"}
    if "parent" in changes:
        _move(conn, node, _parent(conn, changes["parent"], "body.parent"))
        values["parent_id"] = _parent_id(conn, changes["parent"])
    if values:
        conn.execute(sa.update(locations).where(locations.c.id == node.id).values(**values))
    record(conn, audit)


def _move(conn: sa.Connection, node: _Node, above: _Node | None) -> None:
    if above is not None and above.path.startswith(node.path):
        raise FieldError("body.parent", f"{above.code} is {node.code} or below it")
    new = (above.path if above is not None else "/") + f"{node.id}/"
    if new == node.path:
        return
    below = _subtree(node.path)
    deepest = conn.execute(sa.select(locations.c.path).where(below)).scalars()
    extra = max(_depth(p) for p in deepest) - _depth(node.path)
    if _depth(new) + extra > LOCATION_DEPTH_MAX:
        raise FieldError("body.parent", f"the tree is at most {LOCATION_DEPTH_MAX} deep")
    rest = sa.func.substr(locations.c.path, len(node.path) + 1)
    conn.execute(sa.update(locations).where(below).values(path=sa.literal(new) + rest))


def _subtree(path: str) -> sa.ColumnElement[bool]:
    # Paths hold digits and '/': nothing LIKE would read as a wildcard.
    return locations.c.path.like(path + "%")


def subtree_ids(code: str) -> sa.Select[Any]:
    """The ids of a location and everything below it (for IN filters)."""
    top = sa.select(locations.c.path).where(locations.c.code == code).scalar_subquery()
    return sa.select(locations.c.id).where(locations.c.path.like(top + "%"))


def _depth(path: str) -> int:
    return path.strip("/").count("/") + 1


def _parent(conn: sa.Connection, code: str | None, where: str) -> _Node | None:
    if code is None:
        return None
    found = _node(conn, code)
    if found is None:
        raise FieldError(where, f"no location {code!r}")
    if found.virtual:
        raise FieldError(where, f"{code} is a virtual location: it cannot hold others")
    return found


def _parent_id(conn: sa.Connection, code: str | None) -> int | None:
    found = _node(conn, code) if code is not None else None
    return found.id if found is not None else None


def _node(conn: sa.Connection, code: str) -> _Node | None:
    query = sa.select(locations.c.id, locations.c.code, locations.c.virtual, locations.c.path)
    row = conn.execute(query.where(locations.c.code == code)).one_or_none()
    return None if row is None else _Node(row.id, row.code, row.virtual, row.path)


def _tree_lock(conn: sa.Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({TREE_LOCK})")


async def tree(
    engine: AsyncEngine,
    within: str | None,
    default: str,
    after: int,
    limit: int,
    *,
    alone: bool = False,
) -> list[LocationRow] | None:
    """Locations by id (a subtree's when `within` names one, or only that one if `alone`;
    None if it names nothing), each with the negative-stock policy it has in effect (its
    own, an ancestor's or `default`)."""
    parent = locations.alias("parent")
    query = (
        sa.select(locations, parent.c.code.label("parent_code"))
        .outerjoin(parent, parent.c.id == locations.c.parent_id)
        .where(locations.c.id > after)
        .order_by(locations.c.id)
        .limit(limit)
    )
    async with engine.connect() as conn:
        if within is not None:
            top = await conn.execute(sa.select(locations.c.path).where(locations.c.code == within))
            path = top.scalar_one_or_none()
            if path is None:
                return None
            query = query.where(locations.c.code == within if alone else _subtree(path))
        rows = list(await conn.execute(query))
        above = {int(a) for r in rows for a in r.path.strip("/").split("/")[:-1]}
        policy_query = sa.select(locations.c.id, locations.c.negative_stock)
        found = await conn.execute(policy_query.where(locations.c.id.in_(above)))
        policies = {r.id: r.negative_stock for r in found}
    return [_row(r, policies, default) for r in rows]


def _row(r: sa.Row[Any], policies: dict[int, str | None], default: str) -> LocationRow:
    effective = r.negative_stock
    for ancestor in reversed(r.path.strip("/").split("/")[:-1]):
        effective = effective or policies.get(int(ancestor))
    return LocationRow(
        r.id,
        r.code,
        r.parent_code,
        r.kind,
        r.virtual,
        r.negative_stock,
        "allow" if r.virtual else effective or default,
        r.path,
    )
