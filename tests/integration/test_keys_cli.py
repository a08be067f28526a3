"""`stockwire keys create|list|revoke --config AGG.toml` as a person runs it."""

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator import keys
from aggregator.database import create_engine
from aggregator.schema import api_keys, audit_log

CLI_TIMEOUT_S = 60
TOKEN = re.compile(r"^swk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$", re.MULTILINE)


def stockwire_keys(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "stockwire", "keys", *args, "--config", str(config)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT_S, check=False)


def config_for(tmp_path: Path) -> tuple[Path, Path]:
    """An aggregator config whose database does not exist yet (the CLI makes and migrates it)."""
    db = tmp_path / "data" / "ledger.db"
    config = tmp_path / "aggregator.toml"
    config.write_text(f'site = "s1"\ndatabase_url = "sqlite+aiosqlite:///{db}"\n')
    return config, db


async def test_create_list_revoke(tmp_path: Path) -> None:
    config, db = config_for(tmp_path)
    made = stockwire_keys(config, "create", "--name", "ops-laptop", "--role", "admin")
    assert made.returncode == 0, made.stderr
    match = TOKEN.search(made.stdout)
    assert match is not None, made.stdout
    token, key_id, secret = match.group(0), match.group(1), match.group(2)
    engine: AsyncEngine = create_engine(f"sqlite+aiosqlite:///{db}")
    try:
        found = await keys.find(engine, token)
        listed = stockwire_keys(config, "list")
        revoked = stockwire_keys(config, "revoke", key_id)
        twice = stockwire_keys(config, "revoke", key_id)
        unknown = stockwire_keys(config, "revoke", "0" * 16)
        after = await keys.find(engine, token)
        async with engine.connect() as conn:
            stored = (await conn.execute(sa.select(api_keys.c.secret_sha256))).scalar_one()
            audited = (
                await conn.execute(
                    sa.select(audit_log.c.actor, audit_log.c.action, audit_log.c.target)
                    .add_columns(audit_log.c.method, audit_log.c.status)
                    .order_by(audit_log.c.id)
                )
            ).all()
    finally:
        await engine.dispose()
    assert found is not None
    assert (found.id, found.name, found.role) == (key_id, "ops-laptop", "admin")
    assert listed.returncode == 0
    [line] = listed.stdout.splitlines()
    assert line.split()[:3] == [key_id, "admin", "ops-laptop"]
    assert line.endswith("active")
    assert token not in listed.stdout
    assert revoked.returncode == 0, revoked.stderr
    assert (twice.returncode, unknown.returncode) == (1, 1)
    assert "already revoked" in twice.stderr
    assert "not found" in unknown.stderr
    assert after is None, "a revoked key stops working"
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    at_rest = b"".join(f.read_bytes() for f in db.parent.glob(f"{db.name}*"))  # with the WAL
    assert secret.encode() not in at_rest, "only a hash of the secret is at rest"
    assert stored.encode() in at_rest
    assert [tuple(r) for r in audited] == [
        ("cli", "create_key", key_id, "CLI", 201),
        ("cli", "revoke_key", key_id, "CLI", 204),
        ("cli", "revoke_key", key_id, "CLI", 409),
        ("cli", "revoke_key", "0" * 16, "CLI", 404),
    ]


def test_a_bad_config_or_role_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "aggregator.toml"
    config.write_text('site = "s1"\nnot_a_setting = 1\n')
    bad_config = stockwire_keys(config, "list")
    bad_role = stockwire_keys(config, "create", "--name", "x", "--role", "root")
    assert bad_config.returncode == 2
    assert "not_a_setting" in bad_config.stderr
    assert bad_role.returncode == 2
    assert "invalid choice: 'root'" in bad_role.stderr
