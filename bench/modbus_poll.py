"""Polling cost of `stockwire edge` reading load-cell shelves over Modbus TCP.

A simulator process serves `--devices` shelves (our ShelfServer, pymodbus, one TCP port each) of
the generic 4-channel weighing module, one lane per channel, with a pick or a put on every lane
every few seconds (the shelf physics). `stockwire edge` (its own process) polls every shelf at
`--hz` through the pymodbus source and runs the weight recognizer; mosquitto and `stockwire
aggregator` take its transactions. After the warm-up, for `--seconds`, this prints the edge's
CPU seconds per 1,000 polls (a poll = one shelf's read cycle), its RSS, the polls it made per
second against the target, and the simulator's own CPU per 1,000 requests and RSS next to them;
a bare sleeping python's RSS is the baseline, measured in the same run.

    python bench/modbus_poll.py [--devices 8] [--hz 10] [--seconds 60] [--warmup-s 5]
"""

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import aggregator_process, cpu_s, figure, process, rss_mb
from simulators.mosquitto import Mosquitto

SITE = "bench"
EDGE = "bench-modbus"
PROFILE = "generic-rs485-4ch"
CHANNELS = 4
UNIT = 1
REQUESTS_PER_POLL = 1  # the module's four INT32 channels are one read of 8 registers
CHANGE_EVERY_S = 4.0  # per lane: a pick or a put this often
INITIAL_PIECES = 40
UNIT_WEIGHTS_G = (12.0, 48.5, 250.0, 1200.0)
START_WAIT_S = 60.0
BASELINE_CODE = "import asyncio; asyncio.run(asyncio.sleep(3600))"


# --- the simulator process (`--serve N`) -----------------------------------------------------


async def serve(devices: int, seconds: float) -> None:
    """Serve `devices` shelves; print their ports, then their request counts on each stdin line."""
    from device_profiles.loader import load_profile_of
    from device_profiles.weighing import WeighingProfile
    from simulators.shelf.lanes import CellSpec, LaneSpec, Pieces
    from simulators.shelf.server import ShelfServer
    from simulators.shelf.world import ShelfWorld

    profile = load_profile_of(PROFILE, WeighingProfile)
    servers = []
    for d in range(devices):
        lanes = [
            LaneSpec(
                f"lane-{c}",
                f"ITEM-{c}",
                UNIT_WEIGHTS_G[c - 1],
                (CellSpec(UNIT, c),),
                initial_pieces=INITIAL_PIECES,
            )
            for c in range(1, CHANNELS + 1)
        ]
        changes = [
            Pieces(t, f"lane-{c}", -1 if k % 2 == 0 else 1)
            for k, t in enumerate(_times(seconds))
            for c in range(1, CHANNELS + 1)
        ]
        servers.append(ShelfServer(profile, ShelfWorld(lanes, changes, seed=d)))
    ports = [await s.start_tcp("127.0.0.1", 0) for s in servers]
    print(json.dumps({"ports": ports}), flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        if line.strip() == "stats":
            print(json.dumps({"requests": sum(s.stats.requests for s in servers)}), flush=True)
    for s in servers:
        await s.close()


def _times(seconds: float) -> list[float]:
    count = int(seconds / CHANGE_EVERY_S) + 1
    return [CHANGE_EVERY_S * (k + 1) for k in range(count)]


# --- the bench ------------------------------------------------------------------------------


def edge_config(work: Path, mqtt_port: int, ports: list[int], hz: float) -> Path:
    shelf = work / "bench-shelf.toml"
    shelf.write_text(
        f'kind = "shelf"\nname = "bench-shelf"\npoll_interval_ms = {round(1000 / hz)}\n'
    )
    lines = [
        f'site = "{SITE}"',
        f'edge = "{EDGE}"',
        "[mqtt]",
        f"port = {mqtt_port}",
        "[outbox]",
        f'path = "{work / "outbox.sqlite"}"',
    ]
    for d, port in enumerate(ports):
        lines += [
            "[[devices]]",
            f'id = "shelf-{d}"',
            f'profile = "{PROFILE}"',
            f'tcp = "127.0.0.1:{port}"',
            f'shelf = "{shelf}"',
        ]
        for c in range(1, CHANNELS + 1):
            lines += [
                "[[devices.lanes]]",
                f'id = "lane-{c}"',
                f'location = "S{d}-L{c}"',
                f'sku = "ITEM-{c}"',
                f"unit_weight_g = {UNIT_WEIGHTS_G[c - 1]}",
                f"cells = [{{ unit = {UNIT}, channel = {c} }}]",
            ]
    config = work / "edge.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def ask(sim: subprocess.Popen[str], question: str) -> dict[str, int]:
    assert sim.stdin is not None
    assert sim.stdout is not None
    sim.stdin.write(question + "\n")
    sim.stdin.flush()
    answer: dict[str, int] = json.loads(sim.stdout.readline())
    return answer


def ask_ports(sim: subprocess.Popen[str]) -> list[int]:
    assert sim.stdout is not None
    line = sim.stdout.readline()
    if not line:
        raise RuntimeError(f"the simulator exited with {sim.wait()}")
    return [int(p) for p in json.loads(line)["ports"]]


def run(args: argparse.Namespace) -> None:
    total_s = args.warmup_s + args.seconds + 30
    with tempfile.TemporaryDirectory(prefix="stockwire-modbus-poll-") as tmp:
        work = Path(tmp)
        sim = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(args.devices), "--seconds", str(total_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            ports = ask_ports(sim)
            report(args, measure(work, sim, ports, args))
        finally:
            assert sim.stdin is not None
            sim.stdin.close()
            sim.wait(timeout=30)


@dataclass(frozen=True, slots=True)
class Window:
    seconds: float
    requests: int
    edge_cpu_s: float
    sim_cpu_s: float
    edge_rss_mb: float
    sim_rss_mb: float
    baseline_rss_mb: float


def measure(
    work: Path, sim: subprocess.Popen[str], ports: list[int], args: argparse.Namespace
) -> Window:
    with (
        Mosquitto(work / "broker") as broker,
        aggregator_process(work, SITE, [EDGE], broker.port),
        process([sys.executable, "-c", BASELINE_CODE], work / "baseline.log") as baseline,
    ):
        config = edge_config(work, broker.port, ports, args.hz)
        edge_args = [sys.executable, "-m", "stockwire", "--log-level", "WARNING", "edge"]
        with process([*edge_args, "--config", str(config)], work / "edge.log") as edge:
            _wait_polling(sim, edge)
            time.sleep(args.warmup_s)
            start = _Mark.take(sim, edge.pid)
            time.sleep(args.seconds)
            end = _Mark.take(sim, edge.pid)
            if edge.poll() is not None:
                raise RuntimeError(f"edge exited with {edge.returncode} (see edge.log)")
            return Window(
                end.t - start.t,
                end.requests - start.requests,
                end.edge_cpu_s - start.edge_cpu_s,
                end.sim_cpu_s - start.sim_cpu_s,
                rss_mb(edge.pid),
                rss_mb(sim.pid),
                rss_mb(baseline.pid),
            )


@dataclass(frozen=True, slots=True)
class _Mark:
    t: float
    requests: int
    edge_cpu_s: float
    sim_cpu_s: float

    @classmethod
    def take(cls, sim: subprocess.Popen[str], edge_pid: int) -> "_Mark":
        requests = ask(sim, "stats")["requests"]
        return cls(time.monotonic(), requests, cpu_s(edge_pid), cpu_s(sim.pid))


def _wait_polling(sim: subprocess.Popen[str], edge: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_WAIT_S
    while ask(sim, "stats")["requests"] == 0:
        if edge.poll() is not None:
            raise RuntimeError(f"edge exited with {edge.returncode} (see edge.log)")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the edge made no request in {START_WAIT_S} s")
        time.sleep(0.2)


def report(args: argparse.Namespace, w: Window) -> None:
    polls = w.requests / REQUESTS_PER_POLL
    target = args.devices * args.hz
    print(
        f"modbus_poll: {args.devices} shelves x {CHANNELS} lanes ({PROFILE}, Modbus TCP) "
        f"at {args.hz:g} Hz, {w.seconds:.1f} s measured after {args.warmup_s:g} s warm-up"
    )
    figure("polls/s (target devices x hz)", f"{polls / w.seconds:,.1f}", f"target {target:g}")
    figure("edge CPU s / 1,000 polls", f"{w.edge_cpu_s / polls * 1000:.3f}")
    figure("edge CPU (% of one core)", f"{w.edge_cpu_s / w.seconds * 100:.1f}")
    figure("edge RSS MB", f"{w.edge_rss_mb:.1f}", f"baseline python {w.baseline_rss_mb:.1f}")
    figure("simulator CPU s / 1,000 requests", f"{w.sim_cpu_s / w.requests * 1000:.3f}")
    figure("simulator RSS MB", f"{w.sim_rss_mb:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=8)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=5.0)
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.seconds))
    else:
        run(args)


if __name__ == "__main__":
    main()
