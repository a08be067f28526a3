"""`stockwire keys create|list|revoke --config AGG.toml`: API keys managed on the aggregator's
database directly (migrated first), for the first admin key and for when the API is down.
Each change is audited like the API's, with "cli" (or the caller's name) as the actor."""

import argparse
import getpass
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from uuid import uuid4

import sqlalchemy as sa

from aggregator import keys
from aggregator.audit import AuditEntry, record
from aggregator.database import create_sync_engine, make_sqlite_dir, writing
from aggregator.errors import LedgerError, NotFoundError
from aggregator.migrate import upgrade_sync
from aggregator.roles import Role
from aggregator.settings import AggregatorSettings
from stockwire.config import load_settings


@contextmanager
def _database(database_url: str) -> Iterator[sa.Engine]:
    make_sqlite_dir(database_url)
    upgrade_sync(database_url)
    engine = create_sync_engine(database_url, poolclass=sa.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def _audit(actor: str, action: str, target: str | None, status: int) -> AuditEntry:
    return AuditEntry(
        at=datetime.now(UTC),
        request_id=uuid4().hex,
        actor=actor,
        key_id=None,
        role=None,
        action=action,
        target=target,
        method="CLI",
        path=f"stockwire keys {action.removesuffix('_key')}",
        client=f"{_user()}@{socket.gethostname()}",
        status=status,
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "?"


def create(database_url: str, name: str, role: Role, actor: str = "cli") -> keys.NewKey:
    with _database(database_url) as engine, writing(engine) as conn:
        return keys.create(conn, name, role, _audit(actor, "create_key", None, 201))


def revoke(database_url: str, key_id: str, actor: str = "cli") -> None:
    """Raises NotFoundError or StateError (already revoked); the refusal is audited too."""
    with _database(database_url) as engine:
        try:
            with writing(engine) as conn:
                keys.revoke(conn, key_id, _audit(actor, "revoke_key", key_id, 204))
        except LedgerError as e:
            status = 404 if isinstance(e, NotFoundError) else 409
            with writing(engine) as conn:
                record(conn, _audit(actor, "revoke_key", key_id, status))
            raise


def listed(database_url: str) -> list[keys.ApiKey]:
    with _database(database_url) as engine, engine.connect() as conn:
        return keys.listed(conn)


def run(args: argparse.Namespace) -> int:
    """The `stockwire keys` subcommands (the parser is in stockwire.cli)."""
    url = load_settings(AggregatorSettings, args.config).database_url
    if args.keys_command == "create":
        new = create(url, args.name, Role(args.role))
        print(f"created key {new.key.id} ({new.key.role}) for {new.key.name}:")
        print(new.token)
        print("store it now: it is not shown again, and only its hash is kept")
    elif args.keys_command == "list":
        for k in listed(url):
            revoked = f"revoked {_time(k.revoked_at)}" if k.revoked_at else "active"
            print(f"{k.id}  {k.role:<8}  {k.name:<24}  created {_time(k.created_at)}  {revoked}")
    else:
        try:
            revoke(url, args.key_id)
        except LedgerError as e:
            print(f"stockwire keys revoke: {e}", file=sys.stderr)
            return 1
        print(f"revoked key {args.key_id}")
    return 0


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
