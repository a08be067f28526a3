"""Negative stock policy: forbid rejects a posting that would take a balance below zero (with
the reason; the rest of the batch posts), allow posts it and reports it; and with several
processes posting at once a forbidden balance never goes below zero."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from aggregator.errors import RefusedError
from aggregator.ledger import Ledger
from aggregator.ledger.policy import Policy
from aggregator.ledger.reads import item_totals, rejected_after
from aggregator.schema import balances, locations, movements
from aggregator.settings import AggregatorSettings
from aggregator.writer import Writer
from simulators.mosquitto import Mosquitto
from stockwire.ack import AckStatus
from stockwire.topics import EdgeChannel, edge_filter, edge_topic
from stockwire.txn import TxnKind
from tests.integration import aggregator_support as support
from tests.integration.aggregator_support import (
    EDGE,
    SITE,
    audit_entry,
    batch,
    edge_client,
    running_aggregator,
    txn,
    wait_ack,
)
from tests.integration.race_support import post_all_forbidding, together

# fixtures shared by the aggregator's tests
agg_settings = support.agg_settings
db_url = support.db_url
engine = support.engine
writer = support.writer

K = TxnKind
FORBID = Policy(negative_stock="forbid")
PROCESSES = 20  # as the issue asks: 20 writers, 10 in stock (on 2 cores here)
SHIPMENTS_PER_PROCESS = 2  # of one each: 40 wanted


async def test_forbid_rejects_the_txn_that_would_go_below_zero_and_posts_the_rest(
    engine: AsyncEngine, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE, policy=FORBID)
    await ledger.post(batch(txn(K.RECEIPT, 5, to_location="B-1")))
    first, second, third = (
        txn(K.SHIPMENT, 3, from_location="B-1"),
        txn(K.SHIPMENT, 3, from_location="B-1"),
        txn(K.PICK, 2, from_location="B-1"),
    )
    posting = await ledger.post(batch(first, second, third))
    assert [r.status for r in posting.results] == [
        AckStatus.ACCEPTED,
        AckStatus.REJECTED,
        AckStatus.ACCEPTED,
    ]
    reason = posting.results[1].reason
    assert reason == (
        "negative stock is forbidden at B-1: it holds 2 of SKU-1, the shipment takes 3"
    )
    assert posting.negatives == []
    assert (await support.stock(engine)).get(("SKU-1", "B-1", ""), 0) == 0
    kept = await rejected_after(engine, 0, 10)
    assert [(r.txn_id, r.reason) for r in kept] == [(second.id, reason)]
    assert await support.count_rows(engine, movements) == 3  # the receipt, first, third


async def test_forbid_counts_lots_apart(engine: AsyncEngine, writer: Writer) -> None:
    ledger = Ledger(writer, site=SITE, policy=FORBID)
    await ledger.post(batch(txn(K.RECEIPT, 5, to_location="B-1", lot="L1")))
    posting = await ledger.post(batch(txn(K.SHIPMENT, 1, from_location="B-1", lot="L2")))
    assert posting.results[0].status is AckStatus.REJECTED
    assert "lot L2" in (posting.results[0].reason or "")


async def test_a_late_take_before_a_count_is_given_back_there_so_forbid_lets_it_post(
    engine: AsyncEngine, writer: Writer
) -> None:
    """The count at T found 0 (the 5 had gone); the pick that took them arrives after it. It
    posts at its time and a compensation gives them back at T (late_counts): net 0, never
    below 0 now. A late pick after the count is still refused."""
    ledger = Ledger(writer, site=SITE, policy=FORBID)
    count_at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)

    def at(hours: float) -> dict[str, datetime]:
        return {"occurred_at": count_at + timedelta(hours=hours)}

    await ledger.post(batch(txn(K.RECEIPT, 5, to_location="B-1", **at(-2))))
    await ledger.post(batch(txn(K.COUNT, 0, to_location="B-1", **at(0))))
    before, after = (
        txn(K.PICK, 5, from_location="B-1", **at(-1)),
        txn(K.PICK, 1, from_location="B-1", **at(1)),
    )
    posting = await ledger.post(batch(before, after))
    assert [r.status for r in posting.results] == [AckStatus.ACCEPTED, AckStatus.REJECTED]
    assert posting.results[1].reason == (
        "negative stock is forbidden at B-1: it holds 0 of SKU-1, the pick takes 1"
    )
    moved = [(m.from_location, m.to_location, m.qty, m.occurred_at) for m in posting.movements]
    assert moved == [
        ("B-1", "@customer", 5, count_at - timedelta(hours=1)),
        ("@loss", "B-1", 5, count_at),
    ]
    async with engine.connect() as conn:
        held = await conn.execute(
            sa.select(balances.c.qty)
            .join(locations, locations.c.id == balances.c.location_id)
            .where(locations.c.code == "B-1")
        )
        assert held.scalars().all() == [0]


async def test_allow_posts_and_reports_the_negative_balance(writer: Writer) -> None:
    posting = await Ledger(writer, site=SITE).post(batch(txn(K.SHIPMENT, 2, from_location="B-1")))
    assert [r.status for r in posting.results] == [AckStatus.ACCEPTED]
    assert [(n.location, n.qty) for n in posting.negatives] == [("B-1", -2)]


async def test_a_location_policy_is_inherited_down_the_tree_and_beats_the_default(
    engine: AsyncEngine, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE)  # the site allows
    await ledger.post(
        batch(
            txn(K.RECEIPT, 1, to_location="ZONE-A"),
            txn(K.RECEIPT, 1, to_location="BIN-1"),
            txn(K.RECEIPT, 1, to_location="BIN-2"),
        )
    )
    async with engine.begin() as conn:
        ids = {
            r.code: r.id for r in await conn.execute(sa.select(locations.c.code, locations.c.id))
        }
        zone = ids["ZONE-A"]
        await conn.execute(
            sa.update(locations).where(locations.c.id == zone).values(negative_stock="forbid")
        )
        for code in ("BIN-1", "BIN-2"):
            await conn.execute(
                sa.update(locations)
                .where(locations.c.code == code)
                .values(parent_id=zone, path=f"/{zone}/{ids[code]}/")
            )
        await conn.execute(
            sa.update(locations).where(locations.c.code == "BIN-2").values(negative_stock="allow")
        )
    posting = await ledger.post(
        batch(
            txn(K.SHIPMENT, 2, from_location="BIN-1"),  # inherits forbid
            txn(K.SHIPMENT, 2, from_location="BIN-2"),  # its own allow
            txn(K.SHIPMENT, 2, from_location="ZONE-A"),  # its own forbid
        )
    )
    assert [r.status for r in posting.results] == [
        AckStatus.REJECTED,
        AckStatus.ACCEPTED,
        AckStatus.REJECTED,
    ]


async def test_approving_a_pending_txn_that_would_go_below_zero_is_refused(
    engine: AsyncEngine, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE, policy=FORBID, review_confidence_min=0.5)
    doubtful = txn(K.SHIPMENT, 1, from_location="B-1", confidence=0.2)
    await ledger.post(batch(doubtful))
    with pytest.raises(RefusedError, match="negative stock is forbidden at B-1"):
        await ledger.approve(doubtful.id, audit=audit_entry("approve"))
    assert await support.count_rows(engine, movements) == 0


async def test_processes_taking_stock_at_once_never_drive_a_forbidden_balance_below_zero(
    engine: AsyncEngine, db_url: str, writer: Writer, tmp_path: Path
) -> None:
    """10 in stock, PROCESSES writers each shipping one at a time: exactly 10 are accepted,
    every other one is rejected with the reason, and the balance ends at 0 (never below)."""
    await Ledger(writer, site=SITE).post(batch(txn(K.RECEIPT, 10, to_location="B-1")))
    plans = [
        [
            batch(txn(K.SHIPMENT, 1, from_location="B-1")).model_dump_json()
            for _ in range(SHIPMENTS_PER_PROCESS)
        ]
        for _ in range(PROCESSES)
    ]
    outs = [tmp_path / f"writer-{n}.json" for n in range(PROCESSES)]
    exits = await together(
        post_all_forbidding, [(db_url, SITE, p, out) for p, out in zip(plans, outs, strict=True)]
    )
    assert exits == [0] * PROCESSES
    outcomes = [o for out in outs for o in json.loads(out.read_text())]
    accepted = [o for o in outcomes if o[1] == AckStatus.ACCEPTED.value]
    refused = [o for o in outcomes if o[1] == AckStatus.REJECTED.value]
    assert len(accepted) == 10
    assert len(refused) == PROCESSES * SHIPMENTS_PER_PROCESS - 10
    assert {o[2] for o in refused} == {
        "negative stock is forbidden at B-1: it holds 0 of SKU-1, the shipment takes 1"
    }
    async with engine.connect() as conn:
        lowest = (
            await conn.execute(
                sa.select(sa.func.min(balances.c.qty))
                .join(locations, locations.c.id == balances.c.location_id)
                .where(locations.c.virtual == sa.false())
            )
        ).scalar_one()
    assert lowest == 0
    assert await support.count_rows(engine, movements) == 11
    assert set((await item_totals(engine)).values()) == {0}


async def test_over_mqtt_the_site_setting_forbids_and_the_ack_says_why(
    mosquitto: Mosquitto, agg_settings: AggregatorSettings
) -> None:
    """[ledger] negative_stock = "forbid", and a case scan in the wrong unit: rejected acks
    with the reasons, the good transaction of the same batch accepted."""
    settings = agg_settings.model_copy(
        update={"ledger": agg_settings.ledger.model_copy(update={"negative_stock": "forbid"})}
    )
    stocked, short, odd = (
        txn(K.RECEIPT, 2, to_location="B-1"),
        txn(K.SHIPMENT, 3, from_location="B-1"),
        txn(K.RECEIPT, 1, uom="CS", to_location="B-1"),
    )
    sent = batch(stocked, short, odd)
    async with (
        running_aggregator(settings),
        edge_client(mosquitto, edge_filter(EdgeChannel.ACK, SITE)) as (client, inbox),
    ):
        topic = edge_topic(SITE, EDGE, EdgeChannel.TXN)
        await client.publish(topic, sent.model_dump_json(), qos=1)
        ack = await wait_ack(inbox, {t.id for t in sent.txns})
    assert [(r.status, r.reason) for r in ack.results] == [
        (AckStatus.ACCEPTED, None),
        (
            AckStatus.REJECTED,
            "negative stock is forbidden at B-1: it holds 2 of SKU-1, the shipment takes 3",
        ),
        (
            AckStatus.REJECTED,
            "item SKU-1 has no pack in uom 'CS' (its base unit is EA);"
            " add the GTIN and its conversion through the API",
        ),
    ]


async def test_reversing_a_receipt_whose_stock_is_gone_is_refused_where_forbidden(
    engine: AsyncEngine, writer: Writer
) -> None:
    ledger = Ledger(writer, site=SITE, policy=FORBID)
    received = await ledger.post(batch(txn(K.RECEIPT, 5, to_location="B-1")))
    await ledger.post(batch(txn(K.SHIPMENT, 4, from_location="B-1")))
    with pytest.raises(RefusedError, match="it holds 1 of SKU-1, the receipt takes 5"):
        await ledger.reverse_movement(received.movements[0].id, audit=audit_entry("reverse"))
    assert await support.count_rows(engine, movements) == 2
