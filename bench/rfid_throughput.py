"""Tag reads per second through sllurp's decode and the RFID source's bridge, on one core.

RO_ACCESS_REPORTs are encoded up front by the LLRP simulator's encoder (EPC-96, antenna,
PeakRSSI, first/last seen, seen count, Impinj phase and peak RSSI: what a portal's Impinj reader
sends). Then, in one run, on the same frames:

1. baseline: sllurp's decoder alone (LLRPMessage(msgbytes=frame)), frame by frame;
2. decode + conversion: the same, then the source's conversion to TagRead (`tag_reads`);
3. source: the frames in 4 KiB reads (as sllurp's socket thread receives them) through the
   source's own framing, sllurp's decode and state machine, the conversion and the bounded
   hand-off into the event loop, where a consumer accepts each batch as the journal would;
4. the same over loopback TCP: the LLRP simulator sends the frames to a connected
   RfidLlrpSource (sllurp's own socket thread).
5. stage 3 with the portal recognizer consuming every batch (PortalRecognizer.feed per read, a
   tick per report): the whole edge path but the journal, the figure the target is about.

Both threads of stage 3 share the GIL, so it is one core's worth. Prints figures; the target
(>= 50,000 reads/s) is printed with MET/MISSED, never asserted.

    python bench/rfid_throughput.py [--reports 400] [--tags-per-report 250] [--queued 4]
"""

import argparse
import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sllurp.llrp import LLRPMessage, LLRPReaderState

from bench.harness import figure, percentile, verdict
from device_profiles import PortalProfile, RfidReaderProfile, load_profile_of
from edge_agent.readings import TagRead
from edge_agent.recognizers.portal import PortalRecognizer
from edge_agent.sources.rfid_llrp import RfidLlrpSource, _Bridge, _Hooks, _ReaderClient, tag_reads
from simulators.llrp.reader import LLRPReader
from simulators.llrp.requests import report_frame
from simulators.llrp.tags import TagReport

DEVICE = "bench-portal"
READS_PER_S_TARGET = 50_000
READ_BYTES = 4096  # what sllurp's main loop asks its socket for
T0_US = 1_790_000_000_000_000
EPC_PREFIX = bytes.fromhex("3034257bf7194e40")  # SGTIN-96 header, filter, partition, company


def encoded_reports(reports: int, tags_per_report: int, tags_in_field: int) -> list[bytes]:
    """Reports of `tags_in_field` tags read over and over (a load in the field), 1 ms apart."""
    out = []
    for r in range(reports):
        tags = [
            TagReport(
                epc=EPC_PREFIX + ((r * tags_per_report + t) % tags_in_field).to_bytes(4, "big"),
                antenna_id=1 + t % 4,
                peak_rssi_dbm=-40 - t % 30,
                first_seen_utc_us=T0_US + r * 1000,
                last_seen_utc_us=T0_US + r * 1000 + t,
                tag_seen_count=1 + t % 3,
                impinj_phase=(t * 37) % 4096,
                impinj_peak_rssi_cdbm=-4000 - t % 3000,
            )
            for t in range(tags_per_report)
        ]
        out.append(report_frame(r + 1, tags))
    return out


def decode_only(frames: Sequence[bytes]) -> tuple[int, float]:
    tags = 0
    start = time.process_time()
    for frame in frames:
        tags += len(LLRPMessage(msgbytes=frame).msgdict["RO_ACCESS_REPORT"]["TagReportData"])
    return tags, time.process_time() - start


def decode_and_convert(frames: Sequence[bytes]) -> tuple[int, float]:

    now = datetime.now(UTC)
    tags = 0
    start = time.process_time()
    for frame in frames:
        entries = LLRPMessage(msgbytes=frame).msgdict["RO_ACCESS_REPORT"]["TagReportData"]
        tags += len(tag_reads(DEVICE, entries, now)[0])
    return tags, time.process_time() - start


async def through_source(
    frames: Sequence[bytes], queued: int, recognize: Callable[[list[TagRead]], None]
) -> tuple[int, float, float, int]:
    """(tags, CPU s, wall s, hand-off waits) of the frames through the source's reader path."""
    profile = load_profile_of("impinj-speedway-r420", RfidReaderProfile)
    source = RfidLlrpSource(DEVICE, profile, "127.0.0.1", 5084, reports_queued_max=queued)
    bridge = _Bridge(asyncio.get_running_loop(), queued)
    client = _ReaderClient(
        "127.0.0.1", 5084, profile, _Hooks(source, bridge), timeout_s=1, frame_bytes_max=1 << 26
    )
    client.llrp.transport_tx_write = lambda _data: None  # no socket: replies go nowhere
    client.llrp.state = LLRPReaderState.STATE_INVENTORYING
    stream = b"".join(frames)

    def reader_thread() -> None:  # sllurp's socket thread, minus the socket
        for i in range(0, len(stream), READ_BYTES):
            client.raw_data_received(stream[i : i + READ_BYTES])

    start_cpu, start_wall = time.process_time(), time.perf_counter()
    thread = threading.Thread(target=reader_thread, name="bench-sllurp")
    thread.start()
    tags = 0
    for _ in frames:
        event = await bridge.events.get()
        reads: list[TagRead] = event.reads  # type: ignore[union-attr]
        recognize(reads)
        tags += len(reads)
        bridge.accepted()  # the journal took the batch
    await asyncio.to_thread(thread.join)
    cpu, wall = time.process_time() - start_cpu, time.perf_counter() - start_wall
    return tags, cpu, wall, source.counters.handoff_waits


class LoopLag:
    """How late a 1 ms timer fires on the event loop while the source works (gaps in ms)."""

    def __init__(self) -> None:
        self.late_ms: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(0.001)
            self.late_ms.append((loop.time() - before - 0.001) * 1000)


async def over_tcp(frames: Sequence[bytes], queued: int, lag: LoopLag) -> tuple[int, float, float]:
    """(tags, CPU s, wall s) of the frames sent by the LLRP simulator over loopback TCP to the
    real source (sllurp's socket thread, select + 4 KiB recv) until the last batch is taken.
    The simulator runs in this process too: its CPU is in the figure."""
    profile = load_profile_of("impinj-speedway-r420", RfidReaderProfile)
    profile = profile.model_copy(update={"keepalive_s": 60.0})
    reader = LLRPReader("impinj-r420")
    await reader.start()
    source = RfidLlrpSource(DEVICE, profile, "127.0.0.1", reader.port, reports_queued_max=queued)
    taken = asyncio.Queue[int]()

    async def consume() -> None:
        async for reads in source.batches():
            taken.put_nowait(len(reads))

    consumer = asyncio.create_task(consume())
    try:
        async with asyncio.timeout(30):
            await reader.inventory_started.wait()
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        probe = asyncio.create_task(lag.run())
        sending = asyncio.create_task(reader.inject(b"".join(frames)))
        tags = 0
        for _ in frames:
            tags += await taken.get()
        await sending
        return tags, time.process_time() - start_cpu, time.perf_counter() - start_wall
    finally:
        consumer.cancel()
        probe.cancel()
        await asyncio.gather(consumer, probe, return_exceptions=True)
        await reader.close()


def no_recognizer(_reads: list[TagRead]) -> None:
    return None


def portal_recognizer() -> Callable[[list[TagRead]], None]:
    """The dock-door portal's recognizer, its clock at the last read; a tick per batch."""
    portal = load_profile_of("dock-door-portal", PortalProfile)
    now = [datetime.fromtimestamp(T0_US / 1e6, UTC)]
    recognizer = PortalRecognizer(DEVICE, portal, "DOCK-1", {}, lambda: now[0])

    def recognize(reads: list[TagRead]) -> None:
        for read in reads:
            recognizer.feed(read)
        now[0] = reads[-1].at
        recognizer.tick()

    return recognize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=400)
    parser.add_argument("--tags-per-report", type=int, default=250)
    parser.add_argument("--queued", type=int, default=4, help="reports_queued_max")
    parser.add_argument("--tags-in-field", type=int, default=300, help="distinct EPCs")
    args = parser.parse_args()
    logging.getLogger("sllurp").setLevel(logging.ERROR)  # its "Disconnected" at the end
    frames = encoded_reports(args.reports, args.tags_per_report, args.tags_in_field)
    size_mb = sum(map(len, frames)) / 1e6
    print(f"{args.reports} RO_ACCESS_REPORTs x {args.tags_per_report} tags, {size_mb:.1f} MB")
    tags, cpu = decode_only(frames)
    base = tags / cpu
    figure("sllurp decode alone (baseline)", f"{base:,.0f} reads/s")
    tags, cpu = decode_and_convert(frames)
    figure("sllurp decode + TagRead conversion", f"{tags / cpu:,.0f} reads/s")
    tags, cpu, wall, waits = asyncio.run(through_source(frames, args.queued, no_recognizer))
    rate = tags / wall
    figure("source: framing+decode+bridge", f"{rate:,.0f} reads/s", f"wall; CPU {tags / cpu:,.0f}")
    figure("ratio source / sllurp decode", f"{rate / base:.2f}")
    tags, cpu, wall, _ = asyncio.run(through_source(frames, args.queued, portal_recognizer()))
    whole = tags / wall
    figure("source + PortalRecognizer", f"{whole:,.0f} reads/s", f"wall; CPU {tags / cpu:,.0f}")
    figure(
        "target >= 50,000 reads/s (with recognizer)",
        f"{whole:,.0f} reads/s",
        verdict(whole >= READS_PER_S_TARGET),
    )
    figure("ratio with recognizer / sllurp decode", f"{whole / base:.2f}")
    lag = LoopLag()
    tags, cpu, wall = asyncio.run(over_tcp(frames, args.queued, lag))
    figure(
        "source over loopback TCP (sim)",
        f"{tags / wall:,.0f} reads/s",
        f"wall; CPU {tags / cpu:,.0f}",
    )
    late = sorted(lag.late_ms)
    figure(
        "loop lag during TCP stage p50/p99/max",
        f"{percentile(late, 50):.1f}/{percentile(late, 99):.1f}/{late[-1] if late else 0:.1f} ms",
    )
    figure("hand-off waits in stage 3", f"{waits}")


if __name__ == "__main__":
    main()
