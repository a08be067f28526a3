"""`stockwire demo`: a small simulated site with no external service.

An embedded broker (mosquitto if installed, else amqtt), the aggregator with its API on SQLite,
one edge agent reading the scenario's scanners over TCP, its RFID portals over LLRP and its
load-cell shelves over Modbus TCP (a gateway in front of the shelf's transmitters, whatever the
scenario's transport) from our simulators, all on free loopback ports, and a live summary.
`--check` compares the ledger with the scenario's ground truth once everything was emitted and
the edge has nothing pending; run from a terminal (stdin a TTY), the API then stays up until
Ctrl-C, and otherwise (tests, CI, a pipe) the demo exits with the check's code.
"""

import asyncio
import contextlib
import json
import logging
import os
import signal
import sqlite3
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, cast, get_args

from pydantic import SecretStr

from aggregator import key_admin
from aggregator.roles import Role
from aggregator.service import run_aggregator
from aggregator.settings import AggregatorSettings, ApiSettings
from aggregator.settings import MqttSettings as AggregatorMqtt
from edge_agent.agent import run_agent
from edge_agent.settings import DeviceConfig, EdgeSettings, OutboxSettings
from edge_agent.settings import MqttSettings as EdgeMqtt
from simulators.broker import AMQTT_ANONYMOUS, BrokerKind, EmbeddedBroker, embedded_broker
from simulators.ledger_check import differences
from simulators.line_port import HOST
from simulators.llrp.driver import SightingDriver
from simulators.llrp.reader import LLRPReader
from simulators.llrp.run import portal_run, serve
from simulators.plan import Plan, build, shelf_faults, shelf_world
from simulators.scanner import ScannerSim, encode, wire_for
from simulators.shelf.edge_lanes import lane_configs
from simulators.shelf.run import FirstRequestClock, shelf_server
from simulators.shelf.server import ShelfServer
from simulators.site_logins import SiteLogins, make_logins
from stockwire.broker_config import AGGREGATOR_USER, VIEWER_USER
from stockwire.errors import ConfigError

EDGE = "edge-1"
PORTAL_PROFILE = "dock-door-portal"  # the scenario's portals use its layout (ports 1,2 | 3,4)
SHELF_PROFILE = "load-cell-shelf"
log = logging.getLogger(__name__)
SUMMARY_S = 3.0
POLL_S = 1.0
READY_S = 60.0
HTTP_TIMEOUT_S = 5.0
PAGE_ROWS_MAX = 1000


def default_scenario() -> Path:
    return Path(str(resources.files("simulators") / "scenarios" / "small-site.toml"))


async def run(
    duration: float | None,
    check: bool,
    scenario: Path | None,
    workdir: Path | None,
    telemetry_url: str | None = None,
) -> int:
    plan = build(scenario or default_scenario())
    if workdir is None:
        with tempfile.TemporaryDirectory(prefix="stockwire-demo-") as tmp:
            return await _demo(plan, Path(tmp), duration, check, telemetry_url)
    # A fresh folder per run: a ledger left by an earlier run would never match the truth.
    fresh = await asyncio.to_thread(_fresh_dir, workdir)
    return await _demo(plan, fresh, duration, check, telemetry_url)


def _fresh_dir(workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    prefix = datetime.now(UTC).strftime("run-%Y%m%dT%H%M%S-")
    return Path(tempfile.mkdtemp(prefix=prefix, dir=workdir.resolve()))


async def _demo(
    plan: Plan, workdir: Path, duration: float | None, check: bool, telemetry_url: str | None
) -> int:
    opts = _Run(duration, check, asyncio.Event(), telemetry_url)
    kind = _broker_kind()
    scenario = plan.scenario
    print(
        f"demo: scenario {scenario.site!r}: {len(scenario.events)} events, "
        f"{len(scenario.scanners)} scanners, {len(scenario.portals)} RFID portal(s), "
        f"{len(scenario.shelves)} load-cell shelf(s), "
        f"~{plan.duration_s:.0f} s; "
        f"ground truth: {len(plan.truth)} balances; files in {workdir}"
    )
    sims = {
        a.id: ScannerSim(encode(plan.scans[a.id], wire_for(a.profile))) for a in scenario.scanners
    }
    for sim in sims.values():
        await sim.start()
    portals = {a.id: await _portal(plan, a.id) for a in scenario.portals}
    shelves = {a.id: await _shelf(plan, a.id) for a in scenario.shelves}
    logins = await asyncio.to_thread(make_logins, workdir / "mqtt", scenario.site, [EDGE])
    with _on_signals(opts.quit):
        async with embedded_broker(workdir, kind, logins.auth) as broker:
            print(_broker_line(broker, logins), flush=True)
            try:
                site = _Sims(sims, portals, shelves)
                return await _run_site(plan, workdir, site, broker, logins, opts)
            except ExceptionGroup as group:
                log.exception("demo: a part of the site failed")
                print(f"demo: FAILED: {'; '.join(repr(e) for e in group.exceptions)}")
                return 1
            finally:
                for reader, driver in portals.values():
                    await driver.stop()
                    await reader.close()
                for shelf in shelves.values():
                    await shelf.server.close()


async def _portal(plan: Plan, portal: str) -> tuple[LLRPReader, SightingDriver]:
    """The portal's simulated LLRP reader; its sightings start when the edge inventories."""
    run = portal_run(plan, portal)
    reader = LLRPReader(run.model, HOST, 0, absent_until_s=run.absent_s)
    driver = await serve(reader, run.sightings, faults=run.faults, hold_until_inventory=True)
    return reader, driver


@dataclass(frozen=True, slots=True)
class _Shelf:
    server: ShelfServer
    port: int
    clock: FirstRequestClock
    end_s: float  # scenario time by which every change has settled and every fault ended

    def done(self) -> bool:
        return self.clock.started and self.clock() >= self.end_s


async def _shelf(plan: Plan, shelf: str) -> _Shelf:
    """The shelf's simulated transmitters; its scenario time starts at the edge's first poll."""
    clock = FirstRequestClock()
    run = plan.shelves[shelf]
    server = shelf_server(run.profile, shelf_world(plan, shelf), shelf_faults(plan, shelf), clock)
    return _Shelf(server, await server.start_tcp(HOST, 0), clock, run.end_s)


@dataclass(frozen=True, slots=True)
class _Sims:
    scanners: dict[str, ScannerSim]
    portals: dict[str, tuple[LLRPReader, SightingDriver]]
    shelves: dict[str, _Shelf]

    def emitted(self) -> bool:
        drivers = (driver for _, driver in self.portals.values())
        return (
            all(s.done.is_set() for s in self.scanners.values())
            and all(d.done.is_set() for d in drivers)
            and all(s.done() for s in self.shelves.values())
        )

    def progress(self) -> str:
        scans = sum(s.sent for s in self.scanners.values())
        line = f"scans {scans}/{self._scans_total}"
        if self.portals:
            fed = sum(d.fed for _, d in self.portals.values())
            total = sum(d.total for _, d in self.portals.values())
            line += f", tag sightings {fed}/{total}"
        if self.shelves:
            done = sum(s.done() for s in self.shelves.values())
            line += f", shelves settled {done}/{len(self.shelves)}"
        return line

    @property
    def _scans_total(self) -> int:
        return sum(s.lines_total for s in self.scanners.values())


def _broker_line(broker: EmbeddedBroker, logins: SiteLogins) -> str:
    url = f"mqtt://{broker.host}:{broker.port}"
    if broker.anonymous:
        return f"demo: broker ({broker.kind}) {url}\ndemo: WARNING: {AMQTT_ANONYMOUS}"
    return (
        f"demo: broker ({broker.kind}) {url}, a login per edge and for the aggregator, "
        f"ACL pinned to the site; logins in {logins.list_file}; try\n"
        f"  mosquitto_sub -h {broker.host} -p {broker.port} -u {VIEWER_USER} "
        f"-P {logins.password(VIEWER_USER)} -t 'stockwire/v1/#' -v"
    )


def _broker_kind() -> BrokerKind:
    """STOCKWIRE_DEMO_BROKER=amqtt|mosquitto|auto (default auto: mosquitto when installed)."""
    kind = os.environ.get("STOCKWIRE_DEMO_BROKER", "auto")
    if kind not in get_args(BrokerKind):
        raise ConfigError(f"STOCKWIRE_DEMO_BROKER={kind!r}: expected one of {get_args(BrokerKind)}")
    return cast(BrokerKind, kind)


@dataclass
class _Run:
    duration_s: float | None
    check: bool
    quit: asyncio.Event
    telemetry_url: str | None = None  # else STOCKWIRE_AGG_TELEMETRY__URL, if set
    # A person at a terminal: after CHECK OK the API stays up until Ctrl-C (pipes exit).
    stay_up: bool = field(default_factory=lambda: _interactive())
    started: float = field(default_factory=lambda: asyncio.get_running_loop().time())


async def _run_site(
    plan: Plan,
    workdir: Path,
    sims: _Sims,
    broker: EmbeddedBroker,
    logins: SiteLogins,
    opts: _Run,
) -> int:
    stop = asyncio.Event()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_ready(url: str) -> None:
        if not ready.done():
            ready.set_result(url)

    tasks: list[asyncio.Task[None]] = []
    agg = _aggregator_settings(plan, workdir, broker, logins, opts.telemetry_url)
    if agg.telemetry.url is not None:
        print(f"demo: telemetry -> {agg.telemetry.url} (bucket {agg.telemetry.bucket})")
    admin, viewer = await asyncio.to_thread(_keys, agg.database_url)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(run_aggregator(agg, stop=stop, on_ready=on_ready), name="aggregator")
        try:
            url = await asyncio.wait_for(asyncio.shield(ready), READY_S)
            _print_api(url, admin)
            await _mqtt_up(url)
            edge = _edge_settings(plan, workdir, broker, logins, sims)
            tg.create_task(run_agent(edge, stop=stop), name="edge")
            tasks = [
                tg.create_task(s.serve(), name=f"scanner {n}") for n, s in sims.scanners.items()
            ]
            probe = _Probe(url, edge.outbox.path, viewer)
            print(_legend(plan), flush=True)
            code = await _watch(plan, sims, probe, opts)
            if code == 0 and opts.check and opts.stay_up:
                await _stay_up(url, opts)
            return code
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
    raise AssertionError("unreachable")


def _interactive() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # stdin closed
        return False


async def _stay_up(url: str, opts: _Run) -> None:
    """A person at a terminal gets to try the API on the checked ledger until Ctrl-C."""
    print(f"demo: the API stays up at {url.rstrip('/')} until Ctrl-C", flush=True)
    await opts.quit.wait()
    print("demo: stopped")


def _noise_reads(plan: Plan) -> tuple[int, int]:
    """(garbage, double) reads the scenario adds on purpose: a double repeats the read before."""
    garbage = double = 0
    for scans in plan.scans.values():
        previous = None
        for scan in scans:
            if scan.noise and previous is not None and scan.barcode == previous.barcode:
                double += 1
            elif scan.noise:
                garbage += 1
            previous = scan
    return garbage, double


def _legend(plan: Plan) -> str:
    garbage, double = _noise_reads(plan)
    return (
        "demo: live line: txns = stock transactions the edge made from scans, RFID loads and"
        " shelf changes, posted = acknowledged by the aggregator, outbox = not yet; ledger"
        " movements = the double-entry postings the txns became (a count posts only its"
        " variance, so movements and txns differ); balances = (item, location, lot) rows\n"
        f"demo: rejected reads = deliberate noise: the scenario sends {garbage} garbage"
        f" read(s) (bad check digit, unreadable) that the edge keeps in rejected_readings, and"
        f" {double} double scan(s) that it drops as duplicates"
    )


def _keys(database_url: str) -> tuple[str, str]:
    """An admin key for the person trying the demo and a viewer key for the live probe."""
    admin = key_admin.create(database_url, "demo-admin", Role.ADMIN, actor="demo")
    viewer = key_admin.create(database_url, "demo-probe", Role.VIEWER, actor="demo")
    return admin.token, viewer.token


def _print_api(url: str, admin: str) -> None:
    api, bearer = url.rstrip("/"), f'-H "Authorization: Bearer {admin}"'
    print(
        f"demo: API {api}  (docs at {api}/docs: 'Authorize' with the key below)\n"
        f"demo: admin API key, made for this run: {admin}\n"
        f"demo:   curl {bearer} {api}/stock\n"
        f"demo:   curl {bearer} '{api}/transactions?status=pending'   (waiting in review)\n"
        f"demo:   curl -X POST {bearer} {api}/transactions/<txn id>/approve"
        "   (or /void: a transaction waiting in review)\n"
        f"demo:   curl {bearer} {api}/audit   (every write attempt)",
        flush=True,
    )


async def _mqtt_up(url: str) -> None:
    """Wait (bounded) until the aggregator is on the broker, so the first txns find it there."""
    probe = _Probe(url, Path("/nonexistent"), key=None)
    deadline = asyncio.get_running_loop().time() + READY_S
    while asyncio.get_running_loop().time() < deadline:
        health = await asyncio.to_thread(probe.health)
        if isinstance(health, dict) and health.get("mqtt"):
            return
        await asyncio.sleep(0.2)
    print("demo: the aggregator is not on the broker yet; going on (the edge will retry)")


def _aggregator_settings(
    plan: Plan,
    workdir: Path,
    broker: EmbeddedBroker,
    logins: SiteLogins,
    telemetry_url: str | None,
) -> AggregatorSettings:
    settings = AggregatorSettings(
        site=plan.scenario.site,
        database_url=f"sqlite+aiosqlite:///{workdir / 'ledger.sqlite'}",
        mqtt=AggregatorMqtt(
            host=broker.host,
            port=broker.port,
            username=AGGREGATOR_USER,
            password=SecretStr(logins.password(AGGREGATOR_USER)),
            protocol="3.1.1" if broker.kind == "amqtt" else "5",  # amqtt has no MQTT 5
        ),
        known_edges=[EDGE],
        api=ApiSettings(host=HOST, port=0),  # bound by uvicorn: no race for a picked port
    )
    if telemetry_url is None:  # the environment may still name a server
        return settings
    telemetry = settings.telemetry.model_copy(update={"url": telemetry_url})
    return settings.model_copy(update={"telemetry": telemetry})


def _edge_settings(
    plan: Plan,
    workdir: Path,
    broker: EmbeddedBroker,
    logins: SiteLogins,
    sims: _Sims,
) -> EdgeSettings:
    devices = [
        DeviceConfig(
            id=a.id, profile=a.profile, tcp=f"{HOST}:{sims.scanners[a.id].port}", location=a.home
        )
        for a in plan.scenario.scanners
    ]
    devices += [
        DeviceConfig(
            id=a.id,
            profile=a.profile,
            tcp=f"{HOST}:{sims.portals[a.id][0].port}",
            portal=PORTAL_PROFILE,
            location=a.door,
        )
        for a in plan.scenario.portals
    ]
    devices += [
        DeviceConfig(
            id=a.id,
            profile=plan.shelves[a.id].profile,
            tcp=f"{HOST}:{sims.shelves[a.id].port}",
            shelf=SHELF_PROFILE,
            lanes=lane_configs(plan.scenario, a.id),
        )
        for a in plan.scenario.shelves
    ]
    return EdgeSettings(
        site=plan.scenario.site,
        edge=EDGE,
        mqtt=EdgeMqtt(
            host=broker.host,
            port=broker.port,
            username=EDGE,
            password=SecretStr(logins.password(EDGE)),
        ),
        outbox=OutboxSettings(path=workdir / "outbox.sqlite"),
        devices=devices,
    )


@dataclass(frozen=True, slots=True)
class _EdgeCounts:
    made: int
    pending: int
    rejected_txns: int
    rejected_reads: int


@dataclass(frozen=True, slots=True)
class _Snapshot:
    edge: _EdgeCounts | None
    stock: list[dict[str, Any]] | None
    movements: int | None
    dead_letters: int | None


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


class _Probe:
    """Reads the edge's outbox file and the aggregator's API; None where they do not answer."""

    def __init__(self, api_url: str, outbox: Path, key: str | None) -> None:
        self._api = api_url.rstrip("/")
        self._outbox = outbox
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._movements = 0
        self._after = 0

    async def snapshot(self) -> _Snapshot:
        edge = await asyncio.to_thread(self._edge_counts)
        stock = await asyncio.to_thread(self.get, f"/stock?limit={PAGE_ROWS_MAX}")
        dead = await asyncio.to_thread(self.get, f"/dead-letters?limit={PAGE_ROWS_MAX}")
        return _Snapshot(
            edge,
            stock if isinstance(stock, list) else None,
            await asyncio.to_thread(self._count_movements),
            len(dead["items"]) if isinstance(dead, dict) else None,
        )

    def get(self, path: str) -> Any:
        try:
            request = urllib.request.Request(self._api + path, headers=self._headers)  # noqa: S310 (our loopback API)
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
                return json.load(response)
        except (OSError, ValueError):
            return None

    def health(self) -> Any:
        """GET /health: its body says what is down, also on the 503 of a degraded aggregator."""
        url = self._api + "/health"
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
                return _json_or_none(response.read())
        except urllib.error.HTTPError as e:
            with e:
                return _json_or_none(e.read())
        except OSError:
            return None

    def _count_movements(self) -> int | None:
        while True:
            page = self.get(f"/movements?after={self._after}&limit={PAGE_ROWS_MAX}")
            if not isinstance(page, dict):
                return None
            self._movements += len(page["items"])
            if page["items"]:
                self._after = int(page["items"][-1]["id"])
            if page.get("next") is None:
                return self._movements

    def _edge_counts(self) -> _EdgeCounts | None:
        """Read-only look into the edge's outbox file (SQLite WAL allows a concurrent reader)."""
        uri = f"file:{self._outbox}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=HTTP_TIMEOUT_S)) as db:
                return _EdgeCounts(
                    *(
                        int(db.execute(sql).fetchone()[0])
                        for sql in (
                            "SELECT coalesce(max(next_seq), 0) FROM meta",
                            "SELECT count(*) FROM outbox",
                            "SELECT count(*) FROM rejected_txns",
                            "SELECT count(*) FROM rejected_readings",
                        )
                    )
                )
        except sqlite3.Error:
            return None


async def _watch(plan: Plan, sims: _Sims, probe: _Probe, opts: _Run) -> int:
    loop = asyncio.get_running_loop()
    gtins = {i.sku: i.gtin for i in plan.scenario.items}
    flagged = (
        f"; {len(plan.flagged)} misplaced item(s) flagged by a shelf wait in review, unposted"
        if plan.flagged
        else ""
    )
    next_summary = 0.0
    last_diff: list[str] | None = None
    agreed = 0
    while not opts.quit.is_set():
        elapsed = loop.time() - opts.started
        if opts.duration_s is not None and elapsed >= opts.duration_s:
            return _timed_out(opts, last_diff)
        snap = await probe.snapshot()
        emitted = sims.emitted()
        if elapsed >= next_summary:
            print(_summary(elapsed, sims.progress(), snap), flush=True)
            next_summary = elapsed + SUMMARY_S
        if (
            opts.check
            and emitted
            and snap.edge is not None
            and snap.edge.pending == 0
            and snap.stock is not None
        ):
            diff = differences(plan.truth, snap.stock, gtins, plan.flagged)
            agreed = agreed + 1 if not diff else 0
            if diff and diff != last_diff:
                print("demo: ledger differs from ground truth:\n  " + "\n  ".join(diff))
            last_diff = diff
            if agreed >= 2:  # the same answer twice, a poll apart: nothing was still in flight
                print(
                    f"demo: CHECK OK: ledger == ground truth ({len(plan.truth)} balances){flagged}"
                )
                return 0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(opts.quit.wait(), POLL_S)
    print("demo: stopped")
    return 1 if opts.check else 0


def _timed_out(opts: _Run, last_diff: list[str] | None) -> int:
    if not opts.check:
        print(f"demo: {opts.duration_s} s are up")
        return 0
    if last_diff is None:
        print("demo: CHECK FAILED: the scenario was not fully emitted and posted in time")
    elif not last_diff:
        print("demo: CHECK OK: ledger == ground truth at the last look")
        return 0
    else:
        print("demo: CHECK FAILED: ledger differs from ground truth:\n  " + "\n  ".join(last_diff))
    return 1


def _summary(elapsed: float, progress: str, snap: _Snapshot) -> str:
    def n(value: int | None) -> str:
        return "?" if value is None else str(value)

    edge = "edge: not up yet"
    if snap.edge is not None:
        e = snap.edge
        edge = (
            f"edge: {e.made - e.pending - e.rejected_txns} txns posted, outbox {e.pending}, "
            f"rejected {e.rejected_txns} txns + {e.rejected_reads} reads (noise)"
        )
    balances = None if snap.stock is None else len(snap.stock)
    return (
        f"[{elapsed:6.1f}s] {progress} | {edge} | ledger: {n(snap.movements)} "
        f"movements, {n(balances)} balances, dead letters {n(snap.dead_letters)}"
    )


@contextlib.contextmanager
def _on_signals(quit_: asyncio.Event) -> Iterator[None]:
    """Ctrl-C / SIGTERM ask the demo to stop cleanly (the edge drains, the broker stops)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, quit_.set)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
