"""RfidLlrpSource against our LLRP reader simulator over loopback TCP, with unmodified sllurp.

The reader and the source share the test's event loop (sllurp reads in its own thread). Waits
are bounded polls (`until`); no sleep is an assertion.
"""

import asyncio
import contextlib
import struct
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from device_profiles import RfidReaderProfile, load_profile_of
from edge_agent.backoff import Backoff
from edge_agent.readings import TagRead
from edge_agent.sources.rfid_llrp import RfidLlrpSource
from simulators.llrp.driver import Fault, SightingDriver
from simulators.llrp.reader import LLRPReader, synthetic_tags
from simulators.ports import free_port
from simulators.sightings import Sighting
from tests.integration import llrp_support
from tests.integration.llrp_support import sllurp_breaking_notification

HOST = "127.0.0.1"
WAIT_S = 10.0
POLL_S = 0.01
KEEPALIVE_S = 0.2


async def until(what: Callable[[], bool], timeout_s: float = WAIT_S, why: str = "") -> None:
    await llrp_support.until(what, timeout_s, why)


def profile(name: str = "impinj-speedway-r420", **update: object) -> RfidReaderProfile:
    base = load_profile_of(name, RfidReaderProfile)
    return base.model_copy(update={"keepalive_s": KEEPALIVE_S, **update})


def epc(i: int) -> bytes:
    return bytes.fromhex("30340242201d8840") + i.to_bytes(4, "big")


def sightings(first: int, count: int, phase: bool = True) -> list[Sighting]:
    return [
        Sighting(
            at_s=0.0,
            epc=epc(i),
            antenna=1 + i % 4,
            rssi_dbm=-40.0 - i % 30,
            phase_deg=(i * 7.5) % 360 if phase else None,
        )
        for i in range(first, first + count)
    ]


class Collected:
    """The source's batches, accepted as soon as they come (a journal that keeps up)."""

    def __init__(self, source: RfidLlrpSource) -> None:
        self.source = source
        self.batches: list[list[TagRead]] = []
        self.go = asyncio.Event()  # clear: stop asking for the next batch (a full journal)
        self.go.set()

    @property
    def reads(self) -> list[TagRead]:
        return [read for batch in self.batches for read in batch]

    def epcs(self) -> set[str]:
        return {read.epc for read in self.reads}

    async def run(self) -> None:
        async for batch in self.source.batches():
            self.batches.append(batch)
            await self.go.wait()

    @property
    def up(self) -> bool:
        return self.source.status().state == "up"


@asynccontextmanager
async def collecting(source: RfidLlrpSource) -> AsyncIterator[Collected]:
    got = Collected(source)
    threads_before = len(sllurp_threads())
    task = asyncio.create_task(got.run())
    try:
        yield got
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await until(
            lambda: len(sllurp_threads()) <= threads_before,
            why="sllurp's reader thread ends with the source",
        )


def sllurp_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sllurp-reader")]


@asynccontextmanager
async def reader_on(reader: LLRPReader) -> AsyncIterator[LLRPReader]:
    await reader.start()
    try:
        yield reader
    finally:
        await reader.close()


def source_for(port: int, reader_profile: RfidReaderProfile, **kwargs: object) -> RfidLlrpSource:
    return RfidLlrpSource(
        "dock-1",
        reader_profile,
        HOST,
        port,
        backoff=Backoff(0.05, 0.2),
        **kwargs,  # type: ignore[arg-type]
    )


def hex_of(i: int) -> str:
    return epc(i).hex().upper()


async def test_every_tag_the_reader_reports_arrives_with_its_fields() -> None:
    async with reader_on(LLRPReader("impinj-r420")) as reader:
        source = source_for(reader.port, profile())
        async with collecting(source) as got:
            await until(lambda: got.up, why="inventorying")
            assert reader.sight(sightings(0, 40)) == 40
            assert reader.sight(sightings(0, 40)) == 40  # each tag twice
            await until(lambda: sum(r.seen_count for r in got.reads) == 80, why="80 reads")
            [rospec] = reader.requests.state.rospecs.values()  # as the profile asked
    [ai_spec] = rospec.ai_specs
    assert ai_spec.antennas == (1, 2, 3, 4)
    assert ai_spec.tag_trigger is not None
    assert (ai_spec.tag_trigger.n_tags, ai_spec.tag_trigger.timeout_ms) == (100, 200)
    assert got.epcs() == {hex_of(i) for i in range(40)}
    for read in got.reads:
        i = int(read.epc[-8:], 16)
        assert read.device == "dock-1"
        assert read.antenna == 1 + i % 4
        assert read.rssi_dbm == -40.0 - i % 30
        assert read.phase_deg is not None
        assert abs(read.phase_deg - (i * 7.5) % 360) <= 360 / 4096
        assert read.first_at is not None
        assert read.first_at <= read.at
        assert read.at.tzinfo is not None
    assert source.counters.reports == len(got.batches) == reader.stats.reports_sent
    assert source.counters.tags == reader.stats.tags_reported == len(got.reads)
    health = source.health()  # telemetry's device_health: gaps between a connection's reports
    assert health.errors_total == 0
    assert health.latencies == source.counters.reports - 1


async def test_a_zebra_reader_with_its_zero_based_power_table() -> None:
    async with reader_on(LLRPReader("zebra-fx9600")) as reader:
        source = source_for(reader.port, profile("zebra-fx9600", tx_power_dbm=27.3))
        async with collecting(source) as got:
            await until(lambda: got.up, why="inventorying")
            reader.sight(sightings(0, 20, phase=False))
            await until(lambda: len(got.epcs()) == 20, why="20 tags")
    assert all(read.phase_deg is None for read in got.reads)
    assert source.counters.protocol_errors == 0
    assert source.tx_power == (173, 27.3)  # index 0 = 10.0 dBm, 0.1 dB steps
    assert "tx_power=27.3dBm(index 173)" in (source.status().detail or "")


async def test_a_mode_the_reader_does_not_have_is_a_clear_reason_and_retried() -> None:
    reader_profile = profile(modes={1000: "AutoSet Dense Reader", 7: "no such mode"}, mode_id=7)
    async with reader_on(LLRPReader("impinj-r420")) as reader:
        source = source_for(reader.port, reader_profile)
        async with collecting(source):
            await until(lambda: source.counters.failures >= 2, why="refused configurations")
            assert source.status().state == "down"
            assert "Invalid mode_identifier" in (source.status().detail or "")
    assert source.counters.connects == 0


async def test_a_reader_absent_at_start_is_connected_when_it_comes() -> None:
    port = free_port()
    source = source_for(port, profile())
    async with collecting(source) as got:
        await until(lambda: source.counters.failures >= 2, why="refused connects")
        assert source.status().state == "down"
        assert source.health().errors_total >= 2
        assert "cannot connect" in (source.status().detail or "")
        async with reader_on(LLRPReader("impinj-r420", port=port)) as reader:
            await until(lambda: got.up, why="inventorying once the reader is there")
            reader.sight(sightings(0, 10))
            await until(lambda: len(got.epcs()) == 10, why="10 tags")


async def test_a_reader_held_by_another_client_says_so_and_is_retried() -> None:
    async with reader_on(LLRPReader("impinj-r420")) as reader:
        first = source_for(reader.port, profile())
        second = source_for(reader.port, profile())
        async with collecting(first) as got:
            await until(lambda: got.up, why="the first client inventorying")
            async with collecting(second):
                await until(lambda: second.counters.failures >= 2, why="refused twice")
                assert "a Client initiated connection already exists" in str(second.status().detail)
            assert first.counters.connects == 1


async def test_a_peer_that_never_speaks_llrp_is_a_setup_timeout() -> None:
    """Something listens on the port but never says hello (a wrong port, a wedged reader)."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    source = source_for(port, profile(), setup_timeout_s=0.3)
    try:
        async with collecting(source):
            await until(lambda: source.counters.setup_timeouts >= 2, why="two setup timeouts")
            assert "not inventorying 0.3 s after connecting" in str(source.status().detail)
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert source.counters.connects == 0


async def test_a_reboot_mid_stream_reconnects_reconfigures_and_loses_no_report() -> None:
    async with reader_on(LLRPReader("impinj-r420")) as reader:
        source = source_for(reader.port, profile())
        async with collecting(source) as got:
            await until(lambda: got.up, why="inventorying")
            reader.sight(sightings(0, 30))
            await until(lambda: len(got.epcs()) == 30, why="first 30")
            await reader.reboot(0.3)
            await until(lambda: source.counters.connects == 2, why="reconnected after reboot")
            reader.sight(sightings(30, 30))
            await until(lambda: len(got.epcs()) == 60, why="60 tags")
    assert source.counters.reconnects == 1
    assert source.counters.tags == reader.stats.tags_reported == len(got.reads)
    health = source.health()  # gaps between reports of one connection, not across the reboot
    assert health.latencies == source.counters.reports - source.counters.connects
    assert (health.latency_ms_sum > 0) == (health.latencies > 0)


async def test_a_reboot_mid_pass_resumes_the_pass() -> None:
    """A forklift pass played at its times; the reader reboots in the middle of it."""
    stream = [Sighting(k * 0.01, epc(k % 50), 1 + k % 4, -50.0 - k % 20) for k in range(300)]
    reboot = Fault(1.0, "reboot", down_s=0.3)
    async with reader_on(LLRPReader("impinj-r420")) as reader:
        source = source_for(reader.port, profile())
        async with collecting(source) as got:
            driver = SightingDriver(reader, stream, faults=[reboot], hold_until_inventory=True)
            driver.start()
            try:
                await until(lambda: source.counters.connects == 2, why="back after the reboot")
                before = len(got.reads)
                await until(driver.done.is_set, why="the pass played to its end")
                await until(lambda: len(got.reads) > before, why="reads after the reboot")
            finally:
                await driver.stop()
    assert reader.stats.reboots == 1
    assert source.counters.tags == len(got.reads)  # every decoded report was yielded
    assert got.epcs() <= {hex_of(i) for i in range(50)}


async def test_a_dropped_connection_is_reconnected() -> None:
    async with reader_on(LLRPReader("impinj-r420")) as reader:
        source = source_for(reader.port, profile())
        async with collecting(source) as got:
            await until(lambda: got.up, why="inventorying")
            reader.drop()
            await until(lambda: source.counters.connects == 2, why="reconnected after drop")
            reader.sight(sightings(0, 10))
            await until(lambda: len(got.epcs()) == 10, why="10 tags after the drop")
    assert reader.stats.connections_accepted == 2


async def test_a_silent_reader_is_found_by_keepalive_timeout_and_reconnected() -> None:
    async with reader_on(LLRPReader("impinj-r420")) as reader:
        source = source_for(reader.port, profile())
        async with collecting(source) as got:
            await until(lambda: got.up, why="inventorying")
            await until(lambda: source.counters.keepalives >= 2, why="keepalives arrive")
            reader.freeze()  # connection open, nothing sent
            await until(lambda: source.counters.keepalive_timeouts == 1, why="keepalive timeout")
            assert "silent for" in (source.status().detail or "")
            reader.thaw()
            await until(lambda: source.counters.connects == 2, why="reconnected after thaw")
            reader.sight(sightings(0, 10))
            await until(lambda: len(got.epcs()) == 10, why="10 tags after the hang")


async def test_a_frame_sllurp_cannot_decode_is_counted_and_reports_go_on(testdata: Path) -> None:
    bad = sllurp_breaking_notification(testdata)
    async with reader_on(LLRPReader("impinj-r420")) as reader:
        source = source_for(reader.port, profile())
        async with collecting(source) as got:
            await until(lambda: got.up, why="inventorying")
            reader.sight(sightings(0, 10))
            await until(lambda: len(got.epcs()) == 10, why="10 tags before")
            assert await reader.inject(bad + bad[:7] + b"\xff" * 3 + bad[10:])
            await until(lambda: source.counters.decode_errors == 2, why="2 decode errors")
            reader.sight(sightings(10, 10))
            await until(lambda: len(got.epcs()) == 20, why="10 tags after")
    assert source.counters.connects == 1  # the connection survived
    assert "decode_errors=2" in (source.status().detail or "")


async def test_a_frame_that_breaks_framing_is_a_reconnect_not_a_crash() -> None:
    garbage = struct.pack("!HII", (1 << 10) | 61, 3, 1)  # a length shorter than its header
    async with reader_on(LLRPReader("impinj-r420")) as reader:
        source = source_for(reader.port, profile())
        async with collecting(source) as got:
            await until(lambda: got.up, why="inventorying")
            assert await reader.inject(garbage)
            await until(lambda: source.counters.connects == 2, why="reconnected")
            reader.sight(sightings(0, 10))
            await until(lambda: len(got.epcs()) == 10, why="10 tags after")
    assert source.counters.decode_errors == 1


async def test_a_60000_tag_report_arrives_whole_and_the_loop_keeps_running() -> None:
    report = synthetic_tags(60_000)
    ticks: list[float] = []

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            ticks.append(loop.time())
            await asyncio.sleep(0.01)

    async with reader_on(LLRPReader("impinj-r420")) as reader:
        source = source_for(reader.port, profile(keepalive_s=5.0))
        async with collecting(source) as got:
            await until(lambda: got.up, why="inventorying")
            prober = asyncio.create_task(probe())
            before = len(ticks)
            assert await reader.send_report(report)
            await until(lambda: len(got.reads) == 60_000, timeout_s=60, why="60,000 tags")
            during = len(ticks) - before
            prober.cancel()
    [batch] = got.batches
    assert {read.epc for read in batch} == {tag.epc.hex().upper() for tag in report}
    assert during > 0  # the loop ran while sllurp's thread decoded the report


async def test_a_full_journal_holds_the_reader_back_and_loses_nothing() -> None:
    async with reader_on(LLRPReader("impinj-r420")) as reader:
        source = source_for(reader.port, profile(report_every_n_tags=5), reports_queued_max=1)
        async with collecting(source) as got:
            await until(lambda: got.up, why="inventorying")
            got.go.clear()
            for first in range(0, 100, 5):
                reader.sight(sightings(first, 5))
            await until(lambda: source.counters.handoff_waits >= 1, why="hand-off waits")
            held = len(got.batches)
            assert held <= 2  # the one being journaled (+ at most one that took the slot)
            keepalives = reader.stats.keepalives_sent
            await until(
                lambda: reader.stats.keepalives_sent >= keepalives + 5,
                why="held for longer than the keepalive timeout",
            )
            got.go.set()
            await until(lambda: len(got.epcs()) == 100, why="all 100 after the journal caught up")
    assert source.counters.keepalive_timeouts == 0  # a held-back reader is not a dead one
    assert source.counters.connects == 1
    assert reader.stats.reports_dropped == 0
