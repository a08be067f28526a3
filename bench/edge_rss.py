"""Resident memory of `stockwire edge` with scanners and an RFID portal busy vs idle python.

mosquitto and `stockwire aggregator` run in their own processes; a ScannerSim (our scanner
simulator, TCP) in this process feeds the edge's TCP scanner device a steady stream of EAN-13
receipts (SW:MODE:RECEIVE, SW:LOC:DOCK-1, then one item per 1/rate s), and our LLRP reader
simulator feeds its portal device (sllurp + PortalRecognizer) loads of 50 tags crossing the
door every 2.5 s (~1,000 tag reads/s, simulators/llrp/demo.py). RSS (psutil) of the edge
is sampled after the warm-up, every second after that, and at the end. The baseline is a bare
`python -c "import asyncio; ..."` sleeping in its event loop, measured in the same run.

    python bench/edge_rss.py [--rate 50] [--warmup-s 10] [--seconds 40] [--no-portal]
"""

import argparse
import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import aggregator_process, figure, gtin14, process, rss_mb, verdict
from simulators.barcodes import command, ean13
from simulators.llrp.demo import crossings
from simulators.llrp.driver import SightingDriver
from simulators.llrp.reader import LLRPReader
from simulators.llrp.run import serve
from simulators.mosquitto import Mosquitto
from simulators.scanner import ScannerSim, TimedLine

SITE = "bench"
EDGE = "bench-rss"
RSS_MB_MAX = 60.0
SAMPLE_S = 1.0
CONNECT_WAIT_S = 60.0
STOP_WAIT_S = 30.0
BASELINE_CODE = "import asyncio; asyncio.run(asyncio.sleep(3600))"
PROFILE = "generic-tcp-scanner"
SETUP_LINES = 2
COMMIT_WAIT_S = 20.0
PORTAL_TAGS_PER_LOAD = 50
PORTAL_PERIOD_S = 2.5


@dataclass
class Samples:
    warm: float = float("nan")
    end: float = float("nan")
    all: list[float] = field(default_factory=list)
    baseline: float = float("nan")
    scans: int = 0
    committed: int = 0
    sightings: int = 0


def scan_lines(rate: float, seconds: float) -> list[TimedLine]:
    """Set mode and location, then one receipt per 1/rate s (1000 GTINs, no repeat within 1 s)."""
    setup = [command("MODE:RECEIVE"), command("LOC:DOCK-1")]
    lines = [TimedLine(0.0, f"{b.data}\r\n".encode()) for b in setup]
    count = int(rate * seconds)
    lines += [
        TimedLine(i / rate, f"{ean13(gtin14(i % 1000)).data}\r\n".encode()) for i in range(count)
    ]
    return lines


def edge_config(work: Path, mqtt_port: int, scanner_port: int, reader_port: int | None) -> Path:
    config = work / "edge.toml"
    text = (
        f'site = "{SITE}"\nedge = "{EDGE}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n'
        f'[outbox]\npath = "{work / "outbox.sqlite"}"\n'
        f'[[devices]]\nid = "scanner-1"\nprofile = "{PROFILE}"\n'
        f'tcp = "127.0.0.1:{scanner_port}"\n'
    )
    if reader_port is not None:
        text += (
            f'[[devices]]\nid = "portal-1"\nprofile = "impinj-speedway-r420"\n'
            f'tcp = "127.0.0.1:{reader_port}"\nportal = "dock-door-portal"\n'
            'location = "DOCK-2"\n'
        )
    config.write_text(text)
    return config


async def sample(
    edge: subprocess.Popen[bytes],
    baseline: subprocess.Popen[bytes],
    sim: ScannerSim,
    args: argparse.Namespace,
) -> Samples:
    out = Samples()
    async with asyncio.timeout(CONNECT_WAIT_S):
        while sim.sent == 0:
            if edge.poll() is not None:
                raise RuntimeError(f"edge exited with {edge.returncode} (see edge.log)")
            await asyncio.sleep(0.1)
    start = time.monotonic()
    await asyncio.sleep(args.warmup_s)
    out.warm = rss_mb(edge.pid)
    while time.monotonic() - start < args.seconds:
        if edge.poll() is not None:
            raise RuntimeError(f"edge exited with {edge.returncode} (see edge.log)")
        out.all.append(rss_mb(edge.pid))
        await asyncio.sleep(SAMPLE_S)
    out.end = rss_mb(edge.pid)
    out.all.append(out.end)
    out.baseline = rss_mb(baseline.pid)
    return out


async def feed_and_sample(
    work: Path, mqtt_port: int, baseline: subprocess.Popen[bytes], args: argparse.Namespace
) -> Samples:
    sim = ScannerSim(scan_lines(args.rate, args.seconds))
    await sim.start()
    serving = asyncio.create_task(sim.serve())
    reader, driver = await portal(args) if args.portal else (None, None)
    config = edge_config(work, mqtt_port, sim.port, reader.port if reader else None)
    command_line = [sys.executable, "-m", "stockwire", "--log-level", "WARNING", "edge"]
    try:
        with process([*command_line, "--config", str(config)], work / "edge.log") as edge:
            samples = await sample(edge, baseline, sim, args)
            samples.committed = await wait_committed(work / "ledger.db", sim)
            samples.scans = sim.sent - SETUP_LINES
            samples.sightings = driver.fed if driver else 0
            return samples
    finally:
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        if reader is not None and driver is not None:
            await driver.stop()
            await reader.close()


async def portal(args: argparse.Namespace) -> tuple[LLRPReader, SightingDriver]:
    loads = int(args.seconds / PORTAL_PERIOD_S) + 1
    sightings = crossings(loads, PORTAL_TAGS_PER_LOAD, PORTAL_PERIOD_S)
    reader = LLRPReader("impinj-r420", "127.0.0.1", 0)
    return reader, await serve(reader, sightings, hold_until_inventory=True)


async def wait_committed(ledger: Path, sim: ScannerSim) -> int:
    """Bounded wait until every item scan sent is a committed transaction (edge still up)."""
    deadline = time.monotonic() + COMMIT_WAIT_S
    done = committed(ledger)
    while done < sim.sent - SETUP_LINES and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        done = committed(ledger)
    return done


def committed(ledger: Path) -> int:
    db = sqlite3.connect(ledger)
    try:
        # the scanner's: the portal's transactions carry a load id
        sql = "SELECT count(*) FROM transactions WHERE load_id IS NULL"
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


def report(s: Samples, args: argparse.Namespace) -> None:
    portal = ""
    if args.portal:
        portal = f" and an RFID portal ({s.sightings} tag reads fed, ~1,000/s)"
    print(
        f"edge RSS: `stockwire edge`, one TCP scanner at {args.rate:g} scans/s "
        f"(ScannerSim){portal}, {args.seconds:g} s, broker + aggregator running"
    )
    figure(f"  after warm-up ({args.warmup_s:g} s)", f"{s.warm:.1f} MB")
    figure("  at the end", f"{s.end:.1f} MB")
    figure("  max sampled", f"{max(s.all):.1f} MB")
    worst = max([s.warm, *s.all])
    figure("  target", f"<= {RSS_MB_MAX:g} MB", verdict(worst <= RSS_MB_MAX))
    figure("  baseline: idle python + asyncio", f"{s.baseline:.1f} MB")
    figure("  ratio edge (end) / baseline", f"{s.end / s.baseline:.1f}x")
    figure("  item scans sent / their txns committed", f"{s.scans} / {s.committed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="item scans per second")
    parser.add_argument("--warmup-s", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=40.0, help="from connect to the end")
    parser.add_argument(
        "--portal", action=argparse.BooleanOptionalAction, default=True, help="RFID portal too"
    )
    args = parser.parse_args()
    assert args.seconds > args.warmup_s, "--seconds must exceed --warmup-s"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with (
            Mosquitto(work / "broker") as broker,
            aggregator_process(work, SITE, [EDGE], broker.port),
            process([sys.executable, "-c", BASELINE_CODE], work / "baseline.log") as baseline,
        ):
            samples = asyncio.run(feed_and_sample(work, broker.port, baseline, args))
    report(samples, args)


if __name__ == "__main__":
    main()
