"""The REST API over real HTTP (uvicorn on a free port inside run_aggregator)."""

import asyncio
import base64
import os
import signal
import sys
from pathlib import Path
from uuid import uuid4

import httpx

from aggregator.ledger import CONFLICT, Ledger
from aggregator.roles import Role
from aggregator.settings import AggregatorSettings
from simulators.mosquitto import Mosquitto
from simulators.ports import free_port
from stockwire.events import LedgerEvents
from stockwire.topics import EdgeChannel, SiteChannel, edge_topic, site_topic
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    SITE,
    api_client,
    api_key,
    batch,
    edge_client,
    running_aggregator,
    txn,
    wait_for,
)

# fixtures shared by the aggregator's tests
agg_settings = support.agg_settings
db_url = support.db_url
engine = support.engine
writer = support.writer
ledger = support.ledger

K = TxnKind
GTIN = "04006381333931"


async def test_health_and_openapi(agg_settings: AggregatorSettings) -> None:
    async with running_aggregator(agg_settings) as url, httpx.AsyncClient(base_url=url) as http:
        health = await http.get("/health")
        spec = (await http.get("/openapi.json")).json()
    assert health.status_code == 200
    assert health.json().items() >= {"status": "ok", "database": True, "mqtt": True}.items()
    for path in ("/stock", "/movements", "/dead-letters", "/rejected", "/transactions/{txn_id}"):
        assert path in spec["paths"], path
    # /docs "Authorize" takes a bearer key; every route but /health asks for it.
    assert spec["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    operations = [(p, op) for p, ops in spec["paths"].items() for op in ops.values()]
    assert [p for p, op in operations if "security" not in op] == ["/health"]


async def test_stock_filters_and_virtual_locations(
    agg_settings: AggregatorSettings, ledger: Ledger
) -> None:
    await ledger.post(
        batch(
            txn(K.RECEIPT, 5, to_location="A-1", lot="L1"),
            txn(K.RECEIPT, 2, sku="SKU-2", to_location="B-1"),
            txn(K.RECEIPT, 3, sku=None, gtin=GTIN, to_location="B-1"),
        )
    )
    key = api_key(agg_settings.database_url, Role.VIEWER)
    async with running_aggregator(agg_settings) as url, api_client(url, key) as http:

        async def lines(**params: str) -> set[tuple[str | None, str, str | None, int]]:
            response = await http.get("/stock", params=params)
            assert response.status_code == 200, response.text
            return {
                (r["sku"] or r["gtin"], r["location"], r["lot"], r["qty"]) for r in response.json()
            }

        assert await lines() == {
            ("SKU-1", "A-1", "L1", 5),
            ("SKU-2", "B-1", None, 2),
            (GTIN, "B-1", None, 3),
        }
        assert await lines(sku="SKU-2") == {("SKU-2", "B-1", None, 2)}
        assert await lines(gtin=GTIN) == {(GTIN, "B-1", None, 3)}
        assert await lines(location="A-1") == {("SKU-1", "A-1", "L1", 5)}
        assert await lines(lot="L1") == {("SKU-1", "A-1", "L1", 5)}
        with_virtual = await lines(include_virtual="true", sku="SKU-1")
        assert with_virtual == {("SKU-1", "A-1", "L1", 5), ("SKU-1", "@supplier", "L1", -5)}
        assert (await http.get("/stock", params={"limit": 0})).status_code == 422


async def test_movements_pages_with_a_cursor(
    agg_settings: AggregatorSettings, ledger: Ledger
) -> None:
    posted = [txn(K.RECEIPT, n, to_location="A-1") for n in range(1, 6)]
    await ledger.post(batch(*posted))
    seen: list[int] = []
    qtys: list[int] = []
    pages = 0
    key = api_key(agg_settings.database_url, Role.VIEWER)
    async with running_aggregator(agg_settings) as url, api_client(url, key) as http:
        after: int | None = 0
        while after is not None:
            page = (await http.get("/movements", params={"after": after, "limit": 2})).json()
            pages += 1
            assert len(page["items"]) <= 2
            seen += [m["id"] for m in page["items"]]
            qtys += [m["qty"] for m in page["items"]]
            after = page["next"]
            assert pages <= 5, "the cursor must end"
    assert seen == sorted(set(seen))
    assert qtys == [1, 2, 3, 4, 5]
    assert pages == 3


async def test_dead_letters_and_rejected_are_listed(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings, ledger: Ledger
) -> None:
    first = txn(K.RECEIPT, 5, to_location="A-1")
    await ledger.post(batch(first))
    await ledger.post(batch(first.model_copy(update={"qty": 50})))
    garbage = b"\xff not json"
    key = api_key(agg_settings.database_url, Role.VIEWER)
    async with (
        running_aggregator(agg_settings) as url,
        api_client(url, key) as http,
        edge_client(mosquitto) as (client, _),
    ):
        await client.publish(edge_topic(SITE, "edge1", EdgeChannel.TXN), garbage, qos=1)

        async def listed() -> bool:
            return bool((await http.get("/dead-letters")).json()["items"])

        await wait_for(listed, "a dead letter in the API")
        [letter] = (await http.get("/dead-letters")).json()["items"]
        [rejected] = (await http.get("/rejected")).json()["items"]
    assert base64.b64decode(letter["payload_base64"]) == garbage
    assert "Invalid JSON" in letter["reason"]
    assert (rejected["txn_id"], rejected["reason"], rejected["body"]["qty"]) == (
        str(first.id),
        CONFLICT,
        50,
    )


async def test_transaction_review_and_reversal(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings, ledger: Ledger
) -> None:
    unsure = txn(K.RECEIPT, 4, to_location="A-1", confidence=0.1)
    doubtful = txn(K.RECEIPT, 9, to_location="A-1", confidence=0.1)
    await ledger.post(batch(unsure, doubtful))
    ledger_topic = site_topic(SITE, SiteChannel.LEDGER)
    key = api_key(agg_settings.database_url, Role.APPROVER)
    async with (
        running_aggregator(agg_settings) as url,
        api_client(url, key) as http,
        edge_client(mosquitto, ledger_topic) as (_, inbox),
    ):
        before = (await http.get(f"/transactions/{unsure.id}")).json()
        approved = await http.post(f"/transactions/{unsure.id}/approve")
        voided = await http.post(f"/transactions/{doubtful.id}/void")
        twice = await http.post(f"/transactions/{doubtful.id}/approve")
        missing = await http.get(f"/transactions/{uuid4()}")
        movement_id = approved.json()["movements"][0]["id"]
        reversed_ = await http.post(f"/movements/{movement_id}/reverse")
        again = await http.post(f"/movements/{movement_id}/reverse")
        stock = (await http.get("/stock")).json()

        async def both_republished() -> bool:
            return len(inbox.on(ledger_topic)) == 2

        await wait_for(both_republished, "approval and reversal on the ledger topic")
    republished = [LedgerEvents.model_validate_json(p) for p in inbox.on(ledger_topic)]
    assert [[m.id for m in e.movements] for e in republished] == [
        [movement_id],
        [reversed_.json()["id"]],
    ]
    assert (before["status"], before["movements"]) == ("pending", [])
    assert approved.status_code == 200
    assert approved.json()["status"] == "posted"
    assert [m["qty"] for m in approved.json()["movements"]] == [4]
    assert voided.json()["status"] == "voided"
    assert twice.status_code == 409
    assert missing.status_code == 404
    assert reversed_.status_code == 201
    assert reversed_.json()["reverses"] == movement_id
    assert again.status_code == 409
    assert stock == []


async def test_cli_serves_until_sigterm_and_env_beats_toml(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    api_port = free_port()
    config = tmp_path / "aggregator.toml"
    config.write_text(
        "\n".join(
            [
                f'site = "{SITE}"',
                f'database_url = "sqlite+aiosqlite:///{tmp_path / "cli.db"}"',
                'known_edges = ["edge1"]',
                "[mqtt]",
                f'host = "{mosquitto.host}"',
                f"port = {mosquitto.port}",
                "[api]",
                "port = 1",  # the environment below overrides this
                "",
            ]
        )
    )
    env = os.environ | {"STOCKWIRE_AGG_API__PORT": str(api_port)}
    argv = [sys.executable, "-m", "stockwire", "aggregator", "--config", str(config)]
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stderr=asyncio.subprocess.PIPE)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as http:

            async def healthy() -> bool:
                try:
                    health: object = (await http.get("/health")).json()
                except httpx.TransportError:
                    assert proc.returncode is None, "the aggregator exited"
                    return False
                ok = {"status": "ok", "database": True, "mqtt": True}
                return isinstance(health, dict) and health.items() >= ok.items()

            await wait_for(healthy, "the aggregator CLI to serve")
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
