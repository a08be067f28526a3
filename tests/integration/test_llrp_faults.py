"""Faults of the simulated reader, seen by a raw TCP client or an unmodified sllurp client."""

import asyncio
from pathlib import Path

import pytest

from simulators.llrp import events, frames
from simulators.llrp.driver import Fault, SightingDriver
from simulators.llrp.frames import MessageType as M
from simulators.llrp.reader import LLRPReader, synthetic_tags
from simulators.llrp.requests import report_frame
from simulators.sightings import Sighting
from tests.integration.llrp_support import (
    reader_config,
    running,
    sllurp,
    sllurp_breaking_notification,
    until,
)

EPC = bytes.fromhex("30340242201d8840009efdf7")


async def read_frame(reader: asyncio.StreamReader) -> frames.Message:
    head = await reader.readexactly(frames.HEADER_BYTES)
    body = await reader.readexactly(frames.header(head)[2] - frames.HEADER_BYTES)
    return frames.decode(head + body)


async def test_injected_bytes_reach_a_raw_client_unchanged(testdata: Path) -> None:
    bad = sllurp_breaking_notification(testdata)
    async with running(LLRPReader()) as reader:
        r, w = await asyncio.open_connection("127.0.0.1", reader.port)
        try:
            hello = await asyncio.wait_for(read_frame(r), 5)
            assert hello.type == M.READER_EVENT_NOTIFICATION
            assert "ConnectionAttemptEvent" in events.decode(hello.body).events
            assert await reader.inject(bad)
            assert await asyncio.wait_for(r.readexactly(len(bad)), 5) == bad
        finally:
            w.close()


async def test_a_vendor_frame_kills_sllurps_thread_without_a_disconnect_callback(
    testdata: Path,
) -> None:
    """The trap the edge source must handle: sllurp's reader thread dies on struct.error."""
    async with running(LLRPReader()) as reader, sllurp(reader.port, reader_config()) as client:
        await until(lambda: client.inventorying)
        assert await reader.inject(sllurp_breaking_notification(testdata))
        await until(lambda: not client.client.is_alive(), why="sllurp thread still alive")
        assert not client.disconnected.is_set()


async def test_sllurp_decodes_a_multi_megabyte_report_of_60000_tags() -> None:
    report = synthetic_tags(60_000)
    async with running(LLRPReader()) as reader, sllurp(reader.port, reader_config()) as client:
        await until(lambda: client.inventorying)
        assert await reader.send_report(report)
        await until(lambda: len(client.tags) == 60_000, timeout_s=30, why="60,000 tags")
        assert {t["EPC"] for t in client.tags} == {t.epc.hex().encode() for t in report}
    assert len(report_frame(1, report)) > 2_000_000


async def test_drop_keeps_the_readers_config_and_sllurp_reconnects_at_once() -> None:
    config = reader_config(reconnect=True)
    async with running(LLRPReader()) as reader, sllurp(reader.port, config) as client:
        await until(lambda: reader.inventorying)
        reader.drop()
        assert reader.requests.state.rospecs  # no CLOSE_CONNECTION, no reboot: still there
        await until(lambda: reader.stats.connections_accepted == 2, why="no reconnect")
        await until(lambda: reader.inventorying)
        assert reader.sight([Sighting(0.0, EPC, 1, -55.0)]) == 1
        await until(lambda: any(t["EPC"] == EPC.hex().encode() for t in client.tags))


async def test_absent_reader_refuses_then_accepts() -> None:
    async with running(LLRPReader(absent_until_s=0.3)) as reader:
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", reader.port)
        await asyncio.wait_for(reader.up.wait(), 5)
        async with sllurp(reader.port, reader_config()) as client:
            await until(lambda: client.inventorying)


async def test_driver_plays_sightings_on_time_and_a_scripted_reboot_loses_some() -> None:
    sightings = [Sighting(i * 0.1, EPC, 1 + i % 2, -50.0 - i) for i in range(10)]
    faults = [Fault(0.45, "reboot", down_s=0.2)]
    async with running(LLRPReader()) as reader, sllurp(reader.port, reader_config()) as client:
        await until(lambda: reader.inventorying)
        driver = SightingDriver(reader, sightings, speed=2.0, faults=faults)
        driver.start()
        await asyncio.wait_for(driver.done.wait(), 10)
        await driver.stop()
        assert driver.fed == 10
        assert reader.stats.reboots == 1
        assert reader.stats.sightings_read + reader.stats.sightings_missed == 10
        assert reader.stats.sightings_read >= 4  # the ones before 0.45 s
        assert reader.stats.sightings_missed >= 1  # while rebooting and not reconnected
        await until(client.disconnected.is_set)
        counts = sum(t["TagSeenCount"] for t in client.tags)
        assert counts <= reader.stats.sightings_read


async def test_a_hung_reader_keeps_the_connection_but_goes_silent() -> None:
    """What the edge must find by keepalive timeout: no keepalives, answers or reads."""
    config = reader_config(keepalive_interval=50)
    async with running(LLRPReader()) as reader, sllurp(reader.port, config) as client:
        await until(lambda: len(client.seen("KEEPALIVE")) >= 1)
        hang = asyncio.create_task(reader.hang(0.4))
        await until(lambda: reader.hung)
        quiet_from = len(client.seen("KEEPALIVE"))
        assert reader.sight([Sighting(0.0, EPC, 1, -55.0)]) == 0
        sent = client.send({"DELETE_ACCESSSPEC": {"AccessSpecID": 0}})
        await until(lambda: reader.stats.requests_ignored == 1)
        await hang
        assert reader.connected.is_set()
        assert len(client.seen("KEEPALIVE")) <= quiet_from + 1  # one may have been in flight
        assert client.reply("DELETE_ACCESSSPEC_RESPONSE", sent) == []
        await until(lambda: len(client.seen("KEEPALIVE")) >= quiet_from + 2, why="no recovery")
