"""API keys: `swk_<id>_<secret>`, looked up by id, checked against a SHA-256 of the secret.

The secret is 256 random bits. A slow KDF (bcrypt, argon2) protects low-entropy passwords from
guessing after a database leak; against 2**256 candidates one SHA-256 is already out of reach,
so it would only add a costly hash to every request. The id is not secret (audit rows and
`keys list` show it): only the secret is compared, in constant time.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.audit import AuditEntry, record
from aggregator.errors import NotFoundError, StateError
from aggregator.ledger.apply import aware
from aggregator.roles import Role
from aggregator.schema import api_keys

PREFIX = "swk"
_TOKEN = re.compile(rf"^{PREFIX}_([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})$")
KEY_ID_PATTERN = r"^[0-9a-f]{16}$"
_ID_BYTES = 8
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewKey:
    key: ApiKey
    token: str  # shown once; only its hash is stored


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create(conn: sa.Connection, name: str, role: Role, audit: AuditEntry) -> NewKey:
    """Make a key and record `audit` (its target set to the new id) in the same transaction."""
    key_id = secrets.token_hex(_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    key = ApiKey(key_id, name, role, audit.at, None)
    row = {"id": key_id, "name": name, "role": role.value, "secret_sha256": _digest(secret)}
    conn.execute(sa.insert(api_keys).values(**row, created_at=audit.at))
    record(conn, replace(audit, target=key_id))
    return NewKey(key, f"{PREFIX}_{key_id}_{secret}")


def revoke(conn: sa.Connection, key_id: str, audit: AuditEntry) -> None:
    """From now on the key is refused; the row stays (audit rows name it)."""
    row = conn.execute(
        sa.select(api_keys.c.revoked_at).where(api_keys.c.id == key_id).with_for_update()
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"API key {key_id} not found")
    if row.revoked_at is not None:
        raise StateError(f"API key {key_id} was already revoked at {aware(row.revoked_at)}")
    conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=audit.at))
    record(conn, audit)


_LIST = sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)


def listed(conn: sa.Connection) -> list[ApiKey]:
    return [_key(r) for r in conn.execute(_LIST)]


async def all_keys(engine: AsyncEngine) -> list[ApiKey]:
    async with engine.connect() as conn:
        return [_key(r) for r in await conn.execute(_LIST)]


async def find(engine: AsyncEngine, token: str) -> ApiKey | None:
    """The live (not revoked) key this token is, or None. Reads the database every time, so a
    revocation takes effect on the next request."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        return None
    key_id, secret = match.groups()
    query = sa.select(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
    async with engine.connect() as conn:
        row = (await conn.execute(query)).one_or_none()
    if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        return None
    return _key(row)


def _key(r: sa.Row[tuple[object, ...]]) -> ApiKey:
    revoked = aware(r.revoked_at) if r.revoked_at is not None else None
    return ApiKey(r.id, r.name, Role(r.role), aware(r.created_at), revoked)
