import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from device_profiles import ScannerProfile, load_profile_of
from edge_agent.agent import run_agent
from edge_agent.recognizers.scan import ScanRecognizer
from edge_agent.registry import builder
from edge_agent.settings import DeviceConfig, EdgeSettings
from edge_agent.sources.scanner_tcp import ScannerTcpSource
from simulators.mosquitto import Mosquitto
from stockwire.errors import ConfigError
from stockwire.status import EdgeState
from stockwire.txn import TxnKind
from tests.integration.edge_support import (
    EDGE,
    SITE,
    Aggregator,
    LineRecognizer,
    MemorySource,
    edge_settings,
    now,
    retained_status,
    running,
    wait_until,
)


def outbox_rows(settings: EdgeSettings) -> int:
    path = settings.outbox.path
    if not path.exists():
        return -1
    with sqlite3.connect(path) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
        except sqlite3.OperationalError:  # not created yet
            return -1


def rejected_readings(settings: EdgeSettings) -> list[tuple[str, str, str]]:
    with sqlite3.connect(settings.outbox.path) as conn:
        return list(conn.execute("SELECT device, raw, reason FROM rejected_readings"))


def query(settings: EdgeSettings, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(settings.outbox.path) as conn:
        try:
            return list(conn.execute(sql))
        except sqlite3.OperationalError:  # not created yet
            return []


def journaled(settings: EdgeSettings) -> list[str]:
    return [str(r[0]) for r in query(settings, "SELECT payload FROM readings ORDER BY seq")]


def consumed_seq(settings: EdgeSettings, device: str = "scan1") -> int:
    found = query(settings, f"SELECT consumed_seq FROM recognizer_state WHERE device = '{device}'")
    return int(str(found[0][0])) if found else -1


def small_outbox(settings: EdgeSettings, rows_max: int) -> EdgeSettings:
    outbox = settings.outbox.model_copy(update={"rows_max": rows_max})
    return settings.model_copy(update={"outbox": outbox})


def scanner(device: str = "scan1") -> ScanRecognizer:
    return ScanRecognizer(device, load_profile_of("generic-tcp-scanner", ScannerProfile), now)


async def stop_agent(stop: asyncio.Event, agent: "asyncio.Task[None]") -> None:
    stop.set()
    await asyncio.wait_for(agent, 30)


async def test_pipeline_from_sources_to_acked(mosquitto: Mosquitto, tmp_path: Path) -> None:
    settings = edge_settings(mosquitto, tmp_path)
    scan1, scan2 = MemorySource("scan1"), MemorySource("scan2")
    devices = [(scan1, LineRecognizer()), (scan2, LineRecognizer())]
    aggregator = Aggregator(mosquitto)
    stop = asyncio.Event()
    async with running(aggregator.run()):
        agent = asyncio.create_task(run_agent(settings, stop=stop, sources=devices))
        for i in range(25):
            scan1.put(f"A{i} 2")
            scan2.put(f"B{i}")
        scan1.put("BAD line")
        scan2.put("BOOM")
        scan2.put("HOLD H1")  # only a tick releases it
        await wait_until(lambda: len(aggregator.accepted) == 51, "51 txns acked")
        await wait_until(lambda: outbox_rows(settings) == 0, "outbox empty")
        await stop_agent(stop, agent)

    txns = list(aggregator.accepted.values())
    assert sorted(t.seq for t in txns) == list(range(51))
    assert {t.edge for t in txns} == {EDGE}
    by_device = {d: [t for t in txns if t.device == d] for d in ("scan1", "scan2")}
    assert [t.sku for t in sorted(by_device["scan1"], key=lambda t: t.seq)] == [
        f"A{i}" for i in range(25)
    ]  # one device's transactions keep their order
    assert {t.qty for t in by_device["scan1"]} == {2}
    assert "H1" in {t.sku for t in by_device["scan2"]}
    rejected = rejected_readings(settings)
    assert ("scan1", "BAD line", "bad line") in rejected
    assert any(
        (d, raw) == ("scan2", "BOOM") and "recognizer error" in reason
        for d, raw, reason in rejected
    )
    status = await retained_status(mosquitto)
    assert status.state is EdgeState.OFFLINE  # graceful stop


async def test_an_overlong_scanner_line_is_kept_in_rejected_readings(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """A 5,000-byte line from a real TCP scanner: prefix, size and reason kept; the scans after
    it post as usual."""
    lines = [b"SW:MODE:PICK", b"SW:LOC:A-01-02", b"W" * 5000, b"WIDGET-42"]
    connections: list[asyncio.StreamWriter] = []

    async def scanner_device(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        writer.write(b"".join(line + b"\r\n" for line in lines))
        await writer.drain()

    device = await asyncio.start_server(scanner_device, "127.0.0.1", 0)
    port = device.sockets[0].getsockname()[1]
    profile = load_profile_of("generic-tcp-scanner", ScannerProfile)
    source = ScannerTcpSource("scan1", profile, "127.0.0.1", port)
    settings = edge_settings(mosquitto, tmp_path)
    aggregator = Aggregator(mosquitto)
    stop = asyncio.Event()
    try:
        async with running(aggregator.run()):
            devices = [(source, scanner())]
            agent = asyncio.create_task(run_agent(settings, stop=stop, sources=devices))
            await wait_until(lambda: len(aggregator.accepted) == 1, "the pick acked")
            await stop_agent(stop, agent)
    finally:
        device.close()
        for writer in connections:
            writer.close()
            await writer.wait_closed()
        await device.wait_closed()
    assert [t.sku for t in aggregator.accepted.values()] == ["WIDGET-42"]
    [(dev, raw, reason)] = rejected_readings(settings)
    assert (dev, raw) == ("scan1", "W" * 256)
    assert reason == (
        f"line of 5000 bytes is over max_line_bytes {profile.max_line_bytes};"
        " the first 256 bytes kept"
    )


async def test_broker_down_only_grows_the_outbox(mosquitto: Mosquitto, tmp_path: Path) -> None:
    settings = edge_settings(mosquitto, tmp_path)
    mosquitto.stop()
    scan = MemorySource("scan1")
    stop = asyncio.Event()
    agent = asyncio.create_task(run_agent(settings, stop=stop, sources=[(scan, LineRecognizer())]))
    for i in range(30):
        scan.put(f"S{i}")
    await wait_until(lambda: outbox_rows(settings) == 30, "30 txns stored while offline")

    mosquitto.start()
    aggregator = Aggregator(mosquitto)
    async with running(aggregator.run()):
        await wait_until(lambda: outbox_rows(settings) == 0, "everything acked once back")
        await stop_agent(stop, agent)
    assert sorted(str(t.sku) for t in aggregator.accepted.values()) == sorted(
        f"S{i}" for i in range(30)
    )


async def test_restart_replays_a_non_empty_outbox(mosquitto: Mosquitto, tmp_path: Path) -> None:
    settings = edge_settings(mosquitto, tmp_path)
    scan = MemorySource("scan1")
    stop = asyncio.Event()
    agent = asyncio.create_task(run_agent(settings, stop=stop, sources=[(scan, LineRecognizer())]))
    for i in range(12):
        scan.put(f"S{i}")
    await wait_until(lambda: outbox_rows(settings) == 12, "12 txns stored, nobody acking")
    await stop_agent(stop, agent)
    with sqlite3.connect(settings.outbox.path) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM outbox")}

    aggregator = Aggregator(mosquitto)
    stop = asyncio.Event()
    async with running(aggregator.run()):
        agent = asyncio.create_task(run_agent(settings, stop=stop, sources=[]))
        await wait_until(lambda: outbox_rows(settings) == 0, "replayed and acked after restart")
        await stop_agent(stop, agent)
    assert {str(i) for i in aggregator.accepted} == stored


def start_edge(mosquitto: Mosquitto, tmp_path: Path) -> subprocess.Popen[bytes]:
    config = tmp_path / "edge.toml"
    config.write_text(
        f'site = "{SITE}"\nedge = "{EDGE}"\n'
        f'[mqtt]\nhost = "{mosquitto.host}"\nport = {mosquitto.port}\nkeepalive_s = 5\n'
        f'[outbox]\npath = "{tmp_path / "outbox.sqlite"}"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STOCKWIRE_EDGE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "stockwire", "edge", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def wait_status(mosquitto: Mosquitto, state: EdgeState) -> None:
    async def seen() -> bool:
        return (await retained_status(mosquitto)).state is state

    await wait_until(seen, f"retained status {state.value}")


async def test_last_will_when_the_edge_process_dies(mosquitto: Mosquitto, tmp_path: Path) -> None:
    proc = start_edge(mosquitto, tmp_path)
    try:
        await wait_status(mosquitto, EdgeState.ONLINE)
        proc.kill()
        proc.wait(timeout=20)
        await wait_status(mosquitto, EdgeState.OFFLINE)
        assert (await retained_status(mosquitto)).outbox_rows is None  # the will
    finally:
        proc.kill()
        proc.wait(timeout=20)


async def test_sigterm_stops_the_edge_cleanly(mosquitto: Mosquitto, tmp_path: Path) -> None:
    proc = start_edge(mosquitto, tmp_path)
    try:
        await wait_status(mosquitto, EdgeState.ONLINE)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 30)
        assert code == 0
        status = await retained_status(mosquitto)
        assert status.state is EdgeState.OFFLINE
        assert status.outbox_rows == 0  # our own goodbye, not the last will
    finally:
        proc.kill()
        proc.wait(timeout=20)


async def test_devices_from_settings_via_the_registry(mosquitto: Mosquitto, tmp_path: Path) -> None:
    """A real TCP scanner line stream -> registry-built source + recognizer -> ledger ack."""
    lines = b"SW:MODE:RECEIVE\r\nSW:LOC:A-01-01\r\nSW:QTY:3\r\nSKU-42\r\n"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(lines)
            await writer.drain()
            await reader.read()  # a scanner stays connected until the edge hangs up
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    device = {"id": "scan1", "profile": "generic-tcp-scanner", "tcp": f"127.0.0.1:{port}"}
    settings = edge_settings(mosquitto, tmp_path).model_copy(
        update={"devices": [DeviceConfig.model_validate(device)]}
    )
    aggregator = Aggregator(mosquitto)
    stop = asyncio.Event()
    async with server, running(aggregator.run()):
        agent = asyncio.create_task(run_agent(settings, stop=stop))
        await wait_until(lambda: len(aggregator.accepted) == 1, "the scanned receipt acked")
        await stop_agent(stop, agent)
        server.close()
    (txn,) = aggregator.accepted.values()
    assert (txn.device, txn.kind, txn.sku, txn.qty) == ("scan1", TxnKind.RECEIPT, "SKU-42", 3)
    assert txn.to_location == "A-01-01"


def test_unknown_device_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown device kind 'teleporter'"):
        builder("teleporter")


async def test_full_outbox_holds_the_pipeline_back_and_loses_nothing(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = edge_settings(mosquitto, tmp_path, ack_timeout_s=1)  # nobody got the first try
    settings = small_outbox(settings, 5)
    scan = MemorySource("scan1")
    stop = asyncio.Event()
    agent = asyncio.create_task(run_agent(settings, stop=stop, sources=[(scan, LineRecognizer())]))
    for i in range(20):
        scan.put(f"S{i}")
    await wait_until(lambda: outbox_rows(settings) == 5, "the outbox filled up")
    for _ in range(20):
        await asyncio.sleep(0.02)
        assert outbox_rows(settings) <= 5  # never beyond rows_max
    assert journaled(settings) == [f"S{i}" for i in range(5, 20)]  # the rest wait on file

    aggregator = Aggregator(mosquitto)
    async with running(aggregator.run()):
        await wait_until(lambda: len(aggregator.accepted) == 20, "all 20 acked once acks flow")
        await stop_agent(stop, agent)
    txns = sorted(aggregator.accepted.values(), key=lambda t: t.seq)
    assert [t.sku for t in txns] == [f"S{i}" for i in range(20)]
    assert [t.seq for t in txns] == list(range(20))


async def test_a_stop_leaves_journaled_readings_to_the_next_start(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = small_outbox(edge_settings(mosquitto, tmp_path), 2)
    scan = MemorySource("scan1")
    stop = asyncio.Event()
    agent = asyncio.create_task(run_agent(settings, stop=stop, sources=[(scan, LineRecognizer())]))
    for i in range(10):
        scan.put(f"S{i}")
    await wait_until(lambda: len(journaled(settings)) == 8, "8 readings behind a full outbox")
    await stop_agent(stop, agent)  # nobody acked: no drain, the journal keeps them
    assert journaled(settings) == [f"S{i}" for i in range(2, 10)]
    assert outbox_rows(settings) == 2

    aggregator = Aggregator(mosquitto)
    stop = asyncio.Event()
    async with running(aggregator.run()):
        devices = [(MemorySource("scan1"), LineRecognizer())]
        agent = asyncio.create_task(run_agent(settings, stop=stop, sources=devices))
        await wait_until(lambda: len(aggregator.accepted) == 10, "all 10 acked after the restart")
        await stop_agent(stop, agent)
    txns = sorted(aggregator.accepted.values(), key=lambda t: t.seq)
    assert [(t.seq, t.sku) for t in txns] == [(i, f"S{i}") for i in range(10)]
    assert journaled(settings) == []


async def scan_until(settings: EdgeSettings, raws: list[str], until: Callable[[], bool]) -> None:
    """Run the agent with a fresh ScanRecognizer, scan `raws`, stop once `until` holds."""
    scan = MemorySource("scan1")
    stop = asyncio.Event()
    agent = asyncio.create_task(run_agent(settings, stop=stop, sources=[(scan, scanner())]))
    for raw in raws:
        scan.put(raw)
    await wait_until(until, f"the agent done with {raws}")
    await stop_agent(stop, agent)


async def test_the_scan_mode_and_location_survive_a_restart(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = edge_settings(mosquitto, tmp_path)
    await scan_until(
        settings, ["SW:MODE:RECEIVE", "SW:LOC:DOCK-1"], lambda: consumed_seq(settings) == 1
    )
    aggregator = Aggregator(mosquitto)
    async with running(aggregator.run()):
        await scan_until(settings, ["WIDGET-1"], lambda: len(aggregator.accepted) == 1)
    (txn,) = aggregator.accepted.values()
    assert (txn.kind, txn.sku, txn.to_location) == (TxnKind.RECEIPT, "WIDGET-1", "DOCK-1")
    assert rejected_readings(settings) == []


async def test_a_state_that_cannot_be_restored_is_kept_aside_and_the_device_goes_on(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = edge_settings(mosquitto, tmp_path)
    await scan_until(settings, ["SW:MODE:PICK"], lambda: consumed_seq(settings) == 0)
    with sqlite3.connect(settings.outbox.path) as conn:
        conn.execute("""UPDATE recognizer_state SET state = '{"v": 99}'""")

    aggregator = Aggregator(mosquitto)
    async with running(aggregator.run()):
        raws = ["WIDGET-1", "SW:MODE:RECEIVE", "SW:LOC:A-1", "WIDGET-2"]
        await scan_until(settings, raws, lambda: len(aggregator.accepted) == 1)
    (txn,) = aggregator.accepted.values()
    assert (txn.kind, txn.sku, txn.to_location) == (TxnKind.RECEIPT, "WIDGET-2", "A-1")
    ((_, raw, reason),) = rejected_readings(settings)
    assert raw == "WIDGET-1"
    assert "before SW:MODE" in reason  # it started fresh
    ((device, state, why),) = query(
        settings, "SELECT device, state, reason FROM recognizer_state_bad"
    )
    assert (device, state) == ("scan1", '{"v": 99}')
    assert "StateError" in str(why)
