"""Our LLRP reader simulator serves an unmodified sllurp 3.0.5 client over loopback TCP."""

import asyncio
import random
from collections import defaultdict
from typing import Any

import pytest
from sllurp.llrp_proto import LLRPROSpec

from simulators.llrp.reader import LLRPReader
from simulators.sightings import Sighting
from tests.integration.llrp_support import reader_config, running, sllurp, until

MODELS = ["impinj-r420", "zebra-fx9600"]
EPC_BYTES = [12, 12, 12, 16, 8, 4, 25, 32, 62]  # EPC-96 most of all, EPCData for the rest


def crossing(tags: int, seed: int = 6) -> list[Sighting]:
    """`tags` EPCs of mixed lengths, each read a few times by a few antennas."""
    rng = random.Random(seed)
    out = []
    for i in range(tags):
        size = EPC_BYTES[i % len(EPC_BYTES)]
        epc = bytes([0x30, i]) + rng.randbytes(size - 2)
        for antenna in rng.sample([1, 2, 3, 4], k=rng.randint(1, 3)):
            for _ in range(rng.randint(1, 4)):
                rssi = rng.uniform(-75.0, -40.0)
                out.append(Sighting(0.0, epc, antenna, rssi, rng.uniform(0, 360)))
    return out


def expected(sightings: list[Sighting]) -> dict[tuple[str, int], tuple[int, int]]:
    """(epc hex, antenna) -> (reads, peak RSSI in whole dBm)."""
    reads: dict[tuple[str, int], int] = defaultdict(int)
    peak: dict[tuple[str, int], float] = defaultdict(lambda: -200.0)
    for s in sightings:
        key = (s.epc.hex(), s.antenna)
        reads[key] += 1
        peak[key] = max(peak[key], s.rssi_dbm)
    return {k: (reads[k], int((peak[k] + 0.5) // 1)) for k in reads}


def decoded(tags: list[dict[str, Any]]) -> dict[tuple[str, int], tuple[int, int]]:
    reads: dict[tuple[str, int], int] = defaultdict(int)
    peak: dict[tuple[str, int], int] = defaultdict(lambda: -200)
    for t in tags:
        key = (t["EPC"].decode(), t["AntennaID"])
        reads[key] += t["TagSeenCount"]
        peak[key] = max(peak[key], t["PeakRSSI"])
    return {k: (reads[k], peak[k]) for k in reads}


@pytest.mark.parametrize("model", MODELS)
async def test_sllurp_decodes_every_tag_reported(model: str) -> None:
    impinj = model.startswith("impinj")
    async with (
        running(LLRPReader(model)) as reader,
        sllurp(reader.port, reader_config(impinj)) as client,
    ):
        await until(lambda: client.inventorying and reader.inventorying, why="never inventorying")
        sightings = crossing(50)
        assert reader.sight(sightings) == len(sightings)
        want = expected(sightings)
        await until(lambda: len(decoded(client.tags)) == len(want), why="tags missing")
        await until(lambda: decoded(client.tags) == want, why="counts differ")
        assert {len(bytes.fromhex(e)) for e, _ in want} == set(EPC_BYTES)
        assert all(t["ROSpecID"] == 1 for t in client.tags)
        assert all(t["FirstSeenTimestampUTC"] <= t["LastSeenTimestampUTC"] for t in client.tags)
        phases = [t.get("ImpinjRFPhaseAngle") for t in client.tags]
        if impinj:
            assert all(p is not None and 0 <= p < 4096 for p in phases)
        else:
            assert phases == [None] * len(phases)
        assert reader.stats.sightings_missed == 0


async def test_sightings_without_inventory_or_on_other_ports_are_missed() -> None:
    async with running(LLRPReader()) as reader:
        assert reader.sight(crossing(3)) == 0
        assert reader.stats.sightings_missed == len(crossing(3))
        config = reader_config(antennas=[1, 2])
        async with sllurp(reader.port, config) as client:
            await until(lambda: client.inventorying and reader.inventorying)
            ports = [Sighting(0.0, bytes(12), a, -50.0) for a in (1, 2, 3, 4, 5)]
            assert reader.sight(ports) == 2  # 3, 4: not in the AISpec; 5: no such port


@pytest.mark.parametrize("model", MODELS)
async def test_unknown_rospec_and_bad_antenna_get_llrp_errors(model: str) -> None:
    async with running(LLRPReader(model)) as reader, sllurp(reader.port, reader_config()) as client:
        await until(lambda: client.inventorying)
        sent = client.send({"ENABLE_ROSPEC": {"ROSpecID": 99}})
        await until(lambda: len(client.reply("ENABLE_ROSPEC_RESPONSE", sent)) == 1)
        status = client.reply("ENABLE_ROSPEC_RESPONSE", sent)[0]["LLRPStatus"]
        assert status["StatusCode"] == "FieldError"
        assert status["FieldError"]["ErrorCode"] == "A_Invalid"

        sent = client.send({"DELETE_ROSPEC": {"ROSpecID": 0}})
        await until(lambda: len(client.reply("DELETE_ROSPEC_RESPONSE", sent)) == 1)
        bad = LLRPROSpec(None, 7, antennas=(9,))
        sent = client.send({"ADD_ROSPEC": {"ROSpecID": 7, "ROSpec": bad}})
        await until(lambda: len(client.reply("ADD_ROSPEC_RESPONSE", sent)) == 1)
        status = client.reply("ADD_ROSPEC_RESPONSE", sent)[0]["LLRPStatus"]
        assert status["StatusCode"] == "ParameterError"
        assert status["ParameterError"]["FieldError"]["ErrorCode"] == "A_OutOfRange"


async def test_zebra_refuses_impinj_extensions_so_sllurp_gives_up() -> None:
    zebra = LLRPReader("zebra-fx9600")
    async with running(zebra) as reader, sllurp(reader.port, reader_config(impinj=True)) as client:
        await until(lambda: len(client.seen("ERROR_MESSAGE")) == 1)
        status = client.seen("ERROR_MESSAGE")[0]["LLRPStatus"]
        assert status["StatusCode"] == "UnsupportedMessage"
        await until(client.disconnected.is_set, why="sllurp kept the connection")
        assert not client.inventorying


async def test_reboot_disconnects_and_forgets_the_rospec() -> None:
    async with running(LLRPReader()) as reader:
        async with sllurp(reader.port, reader_config()) as client:
            await until(lambda: reader.inventorying)
            reboot = asyncio.create_task(reader.reboot(0.2))
            await until(client.disconnected.is_set, why="sllurp did not see the reboot")
            assert reader.sight(crossing(2)) == 0
            await reboot
        assert reader.requests.state.rospecs == {}
        async with sllurp(reader.port, reader_config()) as again:
            await until(lambda: reader.inventorying)
            assert reader.sight(crossing(1)) > 0
            await until(lambda: len(again.tags) > 0)
        assert reader.stats.reboots == 1
        assert reader.stats.connections_accepted == 2


async def test_close_connection_is_answered_then_closed() -> None:
    async with running(LLRPReader()) as reader, sllurp(reader.port, reader_config()) as client:
        await until(lambda: client.inventorying)
        client.send({"CLOSE_CONNECTION": {}})
        await until(lambda: len(client.seen("CLOSE_CONNECTION_RESPONSE")) == 1)
        status = client.seen("CLOSE_CONNECTION_RESPONSE")[0]["LLRPStatus"]
        assert status["StatusCode"] == "Success"
        await until(client.disconnected.is_set)
        await until(lambda: not reader.connected.is_set())


async def test_second_client_is_refused_while_one_is_connected() -> None:
    async with running(LLRPReader()) as reader, sllurp(reader.port, reader_config()) as first:
        await until(lambda: first.inventorying)
        async with sllurp(reader.port, reader_config()) as second:
            await until(lambda: len(second.seen("READER_EVENT_NOTIFICATION")) == 1)
            event = second.seen("READER_EVENT_NOTIFICATION")[0]["ReaderEventNotificationData"]
            assert event["ConnectionAttemptEvent"]["Status"] != "Success"
            await until(lambda: len(first.seen("READER_EVENT_NOTIFICATION")) == 2)
            note = first.seen("READER_EVENT_NOTIFICATION")[1]["ReaderEventNotificationData"]
            assert note["ConnectionAttemptEvent"]["Status"] == "Another connection attempted"
        assert reader.stats.connections_refused == 1
        assert reader.sight(crossing(1)) > 0


async def test_keepalives_are_sent_at_the_period_sllurp_asks_and_acked() -> None:
    config = reader_config(keepalive_interval=50)
    async with running(LLRPReader()) as reader, sllurp(reader.port, config) as client:
        await until(lambda: len(client.seen("KEEPALIVE")) >= 2)
        await until(lambda: reader.requests.state.keepalive_acks >= 2)
        assert reader.requests.state.config.keepalive_ms == 50


async def test_reader_initiated_close_sends_connection_close_event() -> None:
    async with running(LLRPReader()) as reader, sllurp(reader.port, reader_config()) as client:
        await until(lambda: client.inventorying)
        assert await reader.close_connection()
        await until(client.disconnected.is_set)
        notes = [n["ReaderEventNotificationData"] for n in client.seen("READER_EVENT_NOTIFICATION")]
        assert "ConnectionCloseEvent" in notes[-1]
        assert reader.requests.state.rospecs  # a closed connection is not a reboot


PORTAL_SETTINGS: dict[str, dict[str, Any]] = {
    "impinj-r420": {
        "mode_identifier": 1000,
        "impinj_search_mode": 2,
        "tag_population": 32,
        "tx_power_dbm": 30.0,
    },
    # not tx_power_dbm: see test_sllurp_picks_a_power_index_past_a_zero_based_table
    "zebra-fx9600": {"mode_identifier": 0, "tag_population": 100},
}


@pytest.mark.parametrize("model", MODELS)
async def test_dock_door_settings_of_the_edge_profiles_are_accepted(model: str) -> None:
    """The settings device_profiles give sllurp for a portal: RF mode, search mode, power in
    dBm, session 1, N=100 tags or 200 ms, keepalive 5 s."""
    impinj = model.startswith("impinj")
    config = reader_config(
        impinj,
        session=1,
        report_every_n_tags=100,
        report_timeout_ms=200,
        keepalive_interval=5000,
        **PORTAL_SETTINGS[model],
    )
    async with running(LLRPReader(model)) as reader, sllurp(reader.port, config) as client:
        await until(lambda: client.inventorying, why=f"{model} never inventorying")
        assert reader.requests.state.config.keepalive_ms == 5000
        sightings = crossing(5)
        assert reader.sight(sightings) == len(sightings)
        await until(lambda: decoded(client.tags) == expected(sightings), why="tags")
        assert (
            client.client.llrp.reader_mode["ModeIdentifier"]
            == PORTAL_SETTINGS[model]["mode_identifier"]
        )


async def test_sllurp_picks_a_power_index_past_a_zero_based_table() -> None:
    """sllurp's parsePowerTable assumes indices from 1 (Impinj); the FX9600's run 0..200, so
    tx_power_dbm=30 becomes index 201, which the reader refuses: clients must map dBm to an
    index themselves."""
    config = reader_config(tx_power_dbm=30.0)
    async with running(LLRPReader("zebra-fx9600")) as reader, sllurp(reader.port, config) as client:
        await until(lambda: len(client.seen("ADD_ROSPEC_RESPONSE")) == 1)
        status = client.seen("ADD_ROSPEC_RESPONSE")[0]["LLRPStatus"]
        assert status["StatusCode"] == "ParameterError"
        assert status["ParameterError"]["FieldError"]["ErrorCode"] == "A_OutOfRange"
        assert not client.inventorying


async def test_a_rospec_with_a_duration_reports_and_goes_inactive() -> None:
    config = reader_config(duration=1.0, report_every_n_tags=None, report_timeout_ms=0)
    async with running(LLRPReader()) as reader, sllurp(reader.port, config) as client:
        await until(lambda: reader.inventorying)
        assert reader.sight(crossing(3)) > 0
        await until(lambda: not reader.inventorying, why="the ROSpec never ended")
        assert reader.requests.state.rospecs[1].state.name == "Inactive"
        await until(lambda: len(decoded(client.tags)) == len(expected(crossing(3))))
